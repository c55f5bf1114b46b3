"""Contract tests: the contract's checks compiled to SQL and run where the data lives (docs/testing.md)."""
