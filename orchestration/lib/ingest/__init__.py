"""Incremental, idempotent ingestion from the marketplace DB and the support API into raw.*."""
