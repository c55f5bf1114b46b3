"""Contracts in and out: import a draft contract from a BigQuery table, a Cosmos DB container sample, a
PostgreSQL table or an Avro schema; export one as JSON Schema, Avro, BigQuery DDL or dbt sources.

`importers` and `exporters` are pure over clients and contracts; `product` reads and writes product
folders for the CLI. See docs/interop.md.
"""
