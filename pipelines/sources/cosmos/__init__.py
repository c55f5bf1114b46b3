"""Cosmos DB change-feed source: feed ranges, pages, backfill snapshots."""
