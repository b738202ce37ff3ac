"""Core logic: catalog, overrides, render, store, supervise. Imports schemas and backends."""
