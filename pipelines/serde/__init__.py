"""Serialisation of change events on the bus: Avro with a schema registry (docs/avro.md)."""
