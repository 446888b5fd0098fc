"""What the CRM/ERP adapter plugins share: configuration, signatures, field maps, dedup, enrichment, outbox."""
