"""What one pipeline run did: the figures every run prints, stores, and the review reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunSummary:
    """Figures of one product run. Conservation for change-feed products: events_in ==
    rows_written['changelog'] + dead_letters + duplicates_dropped + replayed."""

    product: str  # "<domain>/<product>"
    run_id: str  # UUID of the run (also the OpenLineage runId)
    started_at: str  # ISO-8601 UTC
    ended_at: str  # ISO-8601 UTC
    status: str  # "completed" | "failed"
    events_in: int
    duplicates_dropped: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)  # output name -> rows
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> location (path or URI)
    freshness_seconds: float | None = None  # now - newest source timestamp written, at run end
    max_source_lag_seconds: float | None = None  # largest (write time - source timestamp) in the run
    duration_seconds: float = 0.0
    error: str | None = None
    replayed: int = 0  # events whose (key, LSN) the changelog already held (re-deliveries across runs)
    throughput_eps: float | None = None  # events in / run duration
    merge_seconds: float | None = None  # total time in the warehouse changelog insert + current-state MERGE
    lag_by_partition: dict[str, int] = field(default_factory=dict)  # events waiting per bus partition at start
    stage: str = "pipeline"  # "pipeline" or "relay" (source change feed -> bus)
    request_units: float | None = None  # relay: Cosmos DB request units spent reading the change feed
    retries: int = 0  # calls retried (throttling, transient errors)
    ownership_changes: int = 0  # relay: feed-range leases acquired, stolen or lost by this process

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        return cls(**data)
