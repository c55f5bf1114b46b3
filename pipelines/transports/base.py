"""The event-bus interface every transport implements (local log, Event Hubs over AMQP, Kafka surface).

Vocabulary follows Event Hubs: a topic (event hub) has numbered partitions; each event has an offset
(its sequence number within the partition), a partition key, an enqueued time and application
properties; consumer groups record how far they have read with `commit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event as read back from the bus.

    `offset` is the per-partition sequence number (0-based, contiguous); `timestamp_ms` the enqueued
    time in epoch milliseconds; `properties` the application properties; `body` the payload bytes,
    left undecoded so readers pay for JSON parsing only where they need it.
    """

    partition: int
    offset: int
    key: str
    timestamp_ms: int
    properties: dict[str, str] = field(hash=False)
    body: bytes


class EventTransport(Protocol):
    """A partitioned, ordered-per-key event bus with consumer-group offsets."""

    def publish(self, records: Iterable[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, int]]:
        """Append `(key, body, properties)` records durably, in order; return `(partition, offset)` each.

        Records with the same key land in the same partition, so per-key order is kept.
        """
        ...

    def end_offsets(self) -> dict[int, int]:
        """The next offset to be written, per partition (so `[0, end)` is everything published)."""
        ...

    def read(self, partition: int, start: int, end: int, max_batch: int = 5000) -> Iterator[list[EventRecord]]:
        """Events of one partition with offsets in `[start, end)`, in order, in lists of <= `max_batch`."""
        ...

    def committed(self, group: str) -> dict[int, int]:
        """The consumer group's next offset to read, per partition (0 when it never committed)."""
        ...

    def commit(self, group: str, offsets: Mapping[int, int]) -> None:
        """Record durably that `group` has processed everything before `offsets[partition]`."""
        ...

    def close(self) -> None:
        """Release connections, files and locks; the transport is unusable afterwards."""
        ...
