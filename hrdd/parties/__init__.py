"""Restricted-party screening: list loading, name normalisation, blocking index, matching, false positives."""
