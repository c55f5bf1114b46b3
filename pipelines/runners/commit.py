"""Streaming runs commit the consumer group's offsets per window, and only after every sink of that
window has written.

The raw batches carry each event's partition and offset. Per window, the highest offset read from
each partition joins (CoGroupByKey on one key) the row counts every sink emits for the same window; a
CoGroupByKey fires when the watermark passes the window's end, which it can only do once every
upstream stage, the sinks included, has finished that window. Then the group's offsets move to the
highest offset + 1, never backwards. A crash before that leaves the offsets where they were: the
next run re-reads the window, and the idempotent sinks (names by content, MERGE on key + LSN) absorb it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from pipelines.transports.factory import TransportSpec, open_transport

_ONE_KEY = 0


class _HighestOffsets(beam.DoFn):
    def process(self, batch: pa.RecordBatch) -> Iterator[tuple[int, int]]:
        if batch.num_rows == 0:
            return
        table = pa.table({"p": batch.column("partition"), "o": batch.column("offset")})
        for row in table.group_by("p").aggregate([("o", "max")]).to_pylist():
            yield int(row["p"]), int(row["o_max"])


class _Commit(beam.DoFn):
    def __init__(self, spec: TransportSpec, group: str) -> None:
        self.spec, self.group = spec, group
        self.commits = Metrics.counter("bus", "offset_commits")

    def setup(self) -> None:
        self.transport = open_transport(self.spec)
        self.done: dict[int, int] = {}

    def process(self, joined: tuple[int, dict[str, Iterable[Any]]]) -> Iterator[dict[int, int]]:
        _, groups = joined
        highest: dict[int, int] = {}
        for partition, offset in groups["offsets"]:
            highest[int(partition)] = max(highest.get(int(partition), -1), int(offset))
        ahead = {p: o + 1 for p, o in highest.items() if o + 1 > self.done.get(p, 0)}
        if ahead:
            self.transport.commit(self.group, ahead)
            self.done.update(ahead)
            self.commits.inc()
            yield ahead

    def teardown(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.close()


class CommitAfterSinks(beam.PTransform):
    """`raw | CommitAfterSinks(spec, group, written)`: commit each window's offsets once `written`
    (the sinks' outputs for that window) are complete. Outputs the offsets committed per window."""

    def __init__(self, spec: TransportSpec, group: str, written: list[beam.PCollection]) -> None:
        super().__init__()
        self.spec, self.group, self.written = spec, group, written

    def expand(self, raw: beam.PCollection) -> beam.PCollection:
        offsets = (
            raw
            | "HighestOffsets" >> beam.ParDo(_HighestOffsets())
            | "PerPartition" >> beam.CombinePerKey(max)
            | "KeyOffsets" >> beam.Map(lambda kv: (_ONE_KEY, kv))
        )
        written = tuple(self.written) | "AllSinks" >> beam.Flatten() | "KeyWritten" >> beam.Map(lambda n: (_ONE_KEY, n))
        return (
            {"offsets": offsets, "written": written}
            | "AfterSinks" >> beam.CoGroupByKey()
            | "Commit" >> beam.ParDo(_Commit(self.spec, self.group))
        )
