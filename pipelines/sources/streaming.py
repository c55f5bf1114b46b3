"""Unbounded read of the bus: a splittable DoFn over partitions with offset restrictions.

Each partition is one element whose restriction is `[committed offset, sys.maxsize)`. The DoFn reads
batches, claims their offsets, and emits raw Arrow batches timestamped at their newest enqueue time;
the watermark follows enqueue time (or wall time minus an allowance while the partition is idle).
When there is nothing to read it defers the rest of the restriction for `poll_seconds`.

Event Hubs clients are known to stop receiving silently while events wait; a watchdog notices that
the partition's end offset is past the reader's position yet reads return nothing, and reopens the
transport (`bus/consumer_restarts`). Every partition restriction a DoFn instance starts to process
counts as an ownership change (`bus/partition_ownership_changes`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.runners.sdf_utils import RestrictionTrackerView
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp

from meshkit.errors import TransientError
from pipelines.sources.bus import record_batch
from pipelines.transports.base import EventRecord, EventTransport
from pipelines.transports.factory import TransportSpec, open_transport

log = logging.getLogger(__name__)
Opener = Callable[[TransportSpec], EventTransport]
IDLE_WATERMARK_ALLOWANCE_S = 2.0  # producers' clocks and the broker's may differ by this much
BUNDLE_SECONDS = 5.0  # checkpoint at least this often so downstream sees data while we keep reading
# DoFn parameter markers (Beam reads them from `process`'s defaults); the DoFn is its own restriction provider
_RESTRICTION: Any = beam.DoFn.RestrictionParam()
_WATERMARK: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _StreamPartition(beam.DoFn, RestrictionProvider):
    """Reads one partition's restriction in batches; see the module docstring.

    It is its own restriction provider: a partition starts at `group`'s committed offset, without end.
    """

    def __init__(
        self,
        spec: TransportSpec,
        group: str,
        batch_size: int,
        poll_seconds: float,
        idle_stop_seconds: float | None,
        watchdog_seconds: float,
        opener: Opener,
    ) -> None:
        self.spec, self.group, self.opener = spec, group, opener
        self.batch_size, self.poll_seconds = batch_size, poll_seconds
        self.idle_stop_seconds, self.watchdog_seconds = idle_stop_seconds, watchdog_seconds
        self.restarts = Metrics.counter("bus", "consumer_restarts")
        self.ownership_changes = Metrics.counter("bus", "partition_ownership_changes")
        self._committed: dict[int, int] | None = None
        self._transport: EventTransport | None = None
        self._owned: set[int] = set()
        self._idle_since: dict[int, float] = {}
        self._silent_since: dict[int, float] = {}
        self._ends: dict[int, int] = {}

    # -- restriction provider --------------------------------------------------------------------
    def initial_restriction(self, element: int) -> OffsetRange:
        if self._committed is None:
            transport = self.opener(self.spec)
            try:
                self._committed = transport.committed(self.group)
            finally:
                transport.close()
        return OffsetRange(self._committed.get(element, 0), sys.maxsize)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: int, restriction: OffsetRange) -> int:
        return 1  # unknown backlog; the size only weighs splits, which an unbounded read does not use

    # -- reading ---------------------------------------------------------------------------------
    def setup(self) -> None:
        self._committed, self._transport, self._owned = None, None, set()
        self._idle_since, self._silent_since, self._ends = {}, {}, {}

    def teardown(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _open(self) -> EventTransport:
        if self._transport is None:
            self._transport = self.opener(self.spec)
        return self._transport

    def _restart(self, partition: int, position: int, end: int) -> None:
        log.warning(
            "bus %s partition %d: no events for %.0f s while offsets [%d, %d) wait; reopening the consumer",
            self.spec.topic, partition, self.watchdog_seconds, position, end,
        )  # fmt: skip
        self.restarts.inc()
        self.teardown()
        self._silent_since.pop(partition, None)

    def _next_batch(self, partition: int, position: int, end: int) -> list[EventRecord]:
        try:
            reader = self._open().read(partition, position, min(end, position + self.batch_size), self.batch_size)
            return next(iter(reader), [])
        except TransientError as exc:
            log.warning("bus %s partition %d: read failed: %s", self.spec.topic, partition, exc)
            return []

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        partition: int,
        tracker: RestrictionTrackerView = _RESTRICTION,
        watermark: ManualWatermarkEstimator = _WATERMARK,
    ) -> Iterator[TimestampedValue]:
        yield from self._stream(partition, tracker, watermark)

    def _stream(
        self, partition: int, tracker: RestrictionTrackerView, watermark: ManualWatermarkEstimator
    ) -> Iterator[TimestampedValue]:
        if partition not in self._owned:
            self._owned.add(partition)
            self.ownership_changes.inc()
        position = tracker.current_restriction().start
        bundle_end = time.monotonic() + BUNDLE_SECONDS
        while True:
            now = time.monotonic()
            end = self._ends.get(partition, 0)
            if position >= end:  # only ask the broker when what we knew is read
                end = self._ends[partition] = self._open().end_offsets()[partition]
            if position >= end:
                self._silent_since.pop(partition, None)
                idle_since = self._idle_since.setdefault(partition, now)
                _advance(watermark, Timestamp.now() - IDLE_WATERMARK_ALLOWANCE_S)
                if self.idle_stop_seconds is not None and now - idle_since >= self.idle_stop_seconds:
                    self._idle_since.pop(partition, None)
                    tracker.try_claim(tracker.current_restriction().stop - 1)  # ends the restriction
                    return
                tracker.defer_remainder(Duration(seconds=self.poll_seconds))
                return
            self._idle_since.pop(partition, None)
            records = self._next_batch(partition, position, end)
            if not records:
                silent_since = self._silent_since.setdefault(partition, now)
                if now - silent_since >= self.watchdog_seconds:
                    self._restart(partition, position, end)
                tracker.defer_remainder(Duration(seconds=min(self.poll_seconds, 0.2)))
                return
            self._silent_since.pop(partition, None)
            claimed = _claim(tracker, records)
            if claimed:
                newest = max(r.timestamp_ms for r in claimed)
                yield TimestampedValue(record_batch(claimed), Timestamp(micros=newest * 1000))
                # later events of a partition are enqueued no earlier than the ones just emitted
                _advance(watermark, Timestamp(micros=newest * 1000))
            if len(claimed) < len(records):
                return  # the runner split the restriction; the rest belongs to someone else
            position = claimed[-1].offset + 1
            if time.monotonic() >= bundle_end:
                tracker.defer_remainder()
                return


def _claim(tracker: RestrictionTrackerView, records: list[EventRecord]) -> list[EventRecord]:
    for index, record in enumerate(records):
        if not tracker.try_claim(record.offset):
            return records[:index]
    return records


def _advance(watermark: ManualWatermarkEstimator, to: Timestamp) -> None:
    current = watermark.current_watermark()
    if current is None or to > current:
        watermark.set_watermark(to)


class StreamFromBus(beam.PTransform):
    """Unbounded read of every partition of a bus topic from `group`'s committed offsets.

    Emits raw Arrow batches (with `partition` and `offset` columns, for the runner's commits) as
    values timestamped at their newest enqueue time. `idle_stop_seconds` ends a partition's read after
    that long without new events (tests and `--until-idle` runs); `opener` opens the transport on
    workers (tests wrap it).
    """

    def __init__(
        self,
        spec: TransportSpec,
        group: str,
        batch_size: int,
        poll_seconds: float = 1.0,
        idle_stop_seconds: float | None = None,
        watchdog_seconds: float = 30.0,
        opener: Opener = open_transport,
    ) -> None:
        super().__init__()
        self.partitions = list(range(spec.partitions))
        self.read = _StreamPartition(spec, group, batch_size, poll_seconds, idle_stop_seconds, watchdog_seconds, opener)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[pa.RecordBatch]:
        return (
            pbegin
            | "Partitions" >> beam.Create(self.partitions)
            | "Reshuffle" >> beam.Reshuffle()
            | "StreamPartition" >> beam.ParDo(self.read)
        )
