"""The data product catalog: a static, searchable site of every product, and its export to Dataplex Catalog.

`model.build_catalog` gathers one immutable `Catalog` from the repository (contracts, descriptors,
access.yaml) and what runs left behind (metrics store, OpenLineage events); `site` renders it as
static HTML pages with a client-side search, or as JSON; `dataplex` turns it into Dataplex Catalog
entries and aspects.
"""
