"""Built-in hrdd plugins: step checks, documents and CRM/ERP adapters, registered like third-party ones."""
