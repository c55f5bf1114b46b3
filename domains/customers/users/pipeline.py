"""Pipeline of customers/users: the standard change-feed pipeline; no domain logic beyond the contract."""

from __future__ import annotations

from pipelines.product import ChangeFeedPipeline

pipeline = ChangeFeedPipeline()
