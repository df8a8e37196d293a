"""Reports built from the results store: metrics, failure tags, tables and plots."""
