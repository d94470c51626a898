"""HTTP API, event consumer and scheduler entrypoints."""
