"""Beam sources that hand the pipeline raw Arrow batches (`pipelines.events.RAW_SCHEMA`).

`ReadFromBus` replays partition ranges of any bus (`TransportSpec`: local log, Kafka, Event Hubs) —
usually from the consumer group's committed offsets to the end offsets seen at start (`bus_ranges`);
the runner commits the end offsets only after the sinks have written. `ReadFromEventLog` is the same
over the local log. Streaming reads are in `pipelines.sources.streaming`.
`ReadChangeFeedFile` replays a file of change-feed items (JSON lines, optionally gzip), as one partition.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
import pyarrow as pa

from pipelines.events import raw_batch
from pipelines.transports.base import EventRecord, EventTransport
from pipelines.transports.factory import TransportSpec, open_transport


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition to read in this run."""

    partition: int
    start: int
    end: int


def record_batch(records: list[EventRecord]) -> pa.RecordBatch:
    """Events of one partition as a raw batch (offsets, enqueued times and keys kept for the runner)."""
    return raw_batch(
        [r.body for r in records],
        records[0].partition,
        offsets=[r.offset for r in records],
        enqueued_ms=[r.timestamp_ms for r in records],
        keys=[r.key for r in records],
        content_types=[r.properties.get("contentType") for r in records],
    )


class _ReadPartition(beam.DoFn):
    """Reads partition ranges through one transport per DoFn instance (opened in `setup`)."""

    def __init__(self, spec: TransportSpec, batch_size: int) -> None:
        self.spec, self.batch_size = spec, batch_size
        self._transport: EventTransport | None = None

    def setup(self) -> None:
        self._transport = open_transport(self.spec)

    def process(self, rng: PartitionRange) -> Iterator[pa.RecordBatch]:
        assert self._transport is not None, "setup() opens the transport"
        for records in self._transport.read(rng.partition, rng.start, rng.end, max_batch=self.batch_size):
            if records:
                yield record_batch(records)

    def teardown(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class ReadFromBus(beam.PTransform):
    """Bounded read of partition ranges of any bus (local log, Kafka, Event Hubs): raw Arrow batches.

    One element per non-empty range, reshuffled so ranges spread over workers; the runner computes the
    ranges (committed offsets to the end offsets seen at start) and commits them after the sinks wrote.
    """

    def __init__(self, spec: TransportSpec, ranges: list[PartitionRange], batch_size: int) -> None:
        super().__init__()
        self.spec, self.batch_size = spec, batch_size
        self.ranges = [r for r in ranges if r.end > r.start]

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "PartitionRanges" >> beam.Create(self.ranges)
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadPartition" >> beam.ParDo(_ReadPartition(self.spec, self.batch_size))
        )


class ReadFromEventLog(ReadFromBus):
    """Bounded read of the given partition ranges of a local event-log topic."""

    def __init__(
        self, log_root: Path, topic: str, partitions: int, ranges: list[PartitionRange], batch_size: int
    ) -> None:
        super().__init__(TransportSpec("local", topic, partitions, (("root", str(log_root)),)), ranges, batch_size)


def bus_ranges(transport: EventTransport, group: str) -> tuple[list[PartitionRange], dict[int, int]]:
    """The bounded replay of a run: from `group`'s committed offsets to the end offsets seen now.

    Returns the ranges and the end offsets, which the runner commits once the sinks have written.
    """
    committed = transport.committed(group)
    end = transport.end_offsets()
    return [PartitionRange(p, min(committed.get(p, 0), e), e) for p, e in sorted(end.items())], end


def read_change_feed_file(path: Path, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Lines of a JSON-lines file (gzip when it ends in .gz) as raw batches of partition 0."""
    opener = gzip.open if path.suffix == ".gz" else open
    now_ms = int(time.time() * 1000)
    offsets: list[int] = []
    bodies: list[bytes] = []
    with opener(path, "rb") as handle:
        for offset, line in enumerate(handle):
            body = line.rstrip(b"\r\n")
            if not body.strip():
                continue
            offsets.append(offset)
            bodies.append(body)
            if len(bodies) >= batch_size:
                yield raw_batch(bodies, 0, offsets=offsets, enqueued_ms=[now_ms] * len(offsets))
                offsets, bodies = [], []
    if bodies:
        yield raw_batch(bodies, 0, offsets=offsets, enqueued_ms=[now_ms] * len(offsets))


class _ReadFile(beam.DoFn):
    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def process(self, path: str) -> Iterator[pa.RecordBatch]:
        yield from read_change_feed_file(Path(path), self.batch_size)


class ReadChangeFeedFile(beam.PTransform):
    """Replay a file of change-feed items (either Cosmos DB format) through the standard pipeline."""

    def __init__(self, path: Path, batch_size: int) -> None:
        super().__init__()
        self.path, self.batch_size = str(path), batch_size

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return pbegin | "File" >> beam.Create([self.path]) | "ReadLines" >> beam.ParDo(_ReadFile(self.batch_size))
