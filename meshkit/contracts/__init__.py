"""ODCS data contracts: loading, the columns the platform derives everything from, validation."""
