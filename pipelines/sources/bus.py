"""Beam sources that hand the pipeline raw Arrow batches (`pipelines.events.RAW_SCHEMA`).

`ReadFromEventLog` replays the local event log from the consumer group's committed offsets to the end
offsets seen at start (bounded); the runner commits the end offsets only after the sinks have written.
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


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition to read in this run."""

    partition: int
    start: int
    end: int


class _ReadPartition(beam.DoFn):
    def __init__(self, log_root: str, topic: str, partitions: int, batch_size: int) -> None:
        self.log_root, self.topic, self.partitions, self.batch_size = log_root, topic, partitions, batch_size

    def process(self, rng: PartitionRange) -> Iterator[pa.RecordBatch]:
        from pipelines.transports.local_log import LocalEventLog

        log = LocalEventLog(Path(self.log_root), self.topic, self.partitions)
        for records in log.read(rng.partition, rng.start, rng.end, max_batch=self.batch_size):
            if records:
                yield raw_batch(
                    [r.body for r in records],
                    rng.partition,
                    offsets=[r.offset for r in records],
                    enqueued_ms=[r.timestamp_ms for r in records],
                    keys=[r.key for r in records],
                )


class ReadFromEventLog(beam.PTransform):
    """Bounded read of the given partition ranges of a local event-log topic."""

    def __init__(
        self, log_root: Path, topic: str, partitions: int, ranges: list[PartitionRange], batch_size: int
    ) -> None:
        super().__init__()
        self.args = (str(log_root), topic, partitions, batch_size)
        self.ranges = [r for r in ranges if r.end > r.start]

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "PartitionRanges" >> beam.Create(self.ranges)
            | "Reshuffle" >> beam.Reshuffle()
            | "ReadPartition" >> beam.ParDo(_ReadPartition(*self.args))
        )


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
