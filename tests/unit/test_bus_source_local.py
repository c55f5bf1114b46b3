"""The bus sources over the local event log: bounded `ReadFromBus` / `ReadFromEventLog` and unbounded
`StreamFromBus` in real Beam pipelines (the in-process FnApiRunner the local runner uses), plus the
streaming DoFn's watermark and restriction handling driven directly."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.sdf_utils import RestrictionTrackerView, ThreadsafeRestrictionTracker
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipelines.events import RAW_SCHEMA
from pipelines.runners.local import local_runner
from pipelines.sources.bus import PartitionRange, ReadFromBus, ReadFromEventLog, bus_ranges
from pipelines.sources.streaming import StreamFromBus, _StreamPartition
from pipelines.transports.factory import TransportSpec, open_transport
from pipelines.transports.local_log import LocalEventLog

TOPIC = "customers.users"
GROUP = "meshkit-pipeline"


def _events(n: int, keys: int, seed: int, start: int = 0) -> list[tuple[str, bytes, dict[str, str]]]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        key = f"user-{rng.randrange(keys)}"
        out.append((key, json.dumps({"id": key, "seq": i}).encode(), {"lsn": str(i)}))
    return out


def _rows(batch: pa.RecordBatch) -> list[tuple[int, int, str, bytes]]:
    """(partition, offset, key, body) of a raw batch; asserts the batch is one partition in offset order."""
    assert batch.schema == RAW_SCHEMA
    parts, offsets = batch.column("partition").to_pylist(), batch.column("offset").to_pylist()
    assert len(set(parts)) == 1 and offsets == sorted(offsets)
    keys, bodies = batch.column("partition_key").to_pylist(), batch.column("body").to_pylist()
    return list(zip(parts, offsets, keys, bodies, strict=True))


# Streaming output is unbounded, so `assert_that` (a GroupByKey in the global window) refuses it: the
# in-process runner lets this DoFn record what arrives, in arrival order.
RECORDED: list[tuple[pa.RecordBatch, Timestamp]] = []


class Recorder(beam.DoFn):
    def process(self, batch: pa.RecordBatch, ts: Timestamp = beam.DoFn.TimestampParam) -> Iterator[int]:  # type: ignore[assignment]
        RECORDED.append((batch, ts))
        yield batch.num_rows


def _pipeline() -> beam.Pipeline:
    return beam.Pipeline(runner=local_runner(), options=PipelineOptions(flags=[]))


def _spec(root: Path, partitions: int) -> TransportSpec:
    return TransportSpec("local", TOPIC, partitions, (("root", str(root)),))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LocalEventLog]:
    with LocalEventLog(tmp_path, TOPIC, 4) as log:
        yield log


def test_read_from_bus_replays_exactly_from_committed_to_end(tmp_path: Path, log: LocalEventLog) -> None:
    placed = log.publish(_events(1200, 60, seed=11))
    log.commit(GROUP, {0: 5, 2: 40})
    ranges, ends = bus_ranges(log, GROUP)
    log.publish(_events(50, 60, seed=12, start=1200))  # after the run's start: not in this replay
    committed = log.committed(GROUP)
    events = _events(1200, 60, seed=11)
    expected = [
        (p, o, key, body) for (key, body, _), (p, o) in zip(events, placed, strict=True) if committed[p] <= o < ends[p]
    ]
    with _pipeline() as p:
        rows = p | ReadFromBus(_spec(tmp_path, 4), ranges, batch_size=100) | beam.FlatMap(_rows)
        assert_that(rows, equal_to(expected))
    assert len(expected) == 1200 - 45


def test_per_key_order_holds_within_batches_and_the_event_log_wrapper_reads_the_same(
    tmp_path: Path, log: LocalEventLog
) -> None:
    log.publish(_events(800, 7, seed=13))
    ranges = [PartitionRange(p, 0, e) for p, e in log.end_offsets().items()]

    def key_order_kept(batch: pa.RecordBatch) -> list[bool]:
        seen: dict[str, int] = {}
        ok = True
        for key, body in zip(batch.column("partition_key").to_pylist(), batch.column("body").to_pylist(), strict=True):
            seq = json.loads(body)["seq"]
            ok = ok and seen.get(key, -1) < seq
            seen[key] = seq
        return [ok]

    with _pipeline() as p:
        batches = p | ReadFromEventLog(tmp_path, TOPIC, 4, ranges, batch_size=64)
        assert_that(batches | beam.FlatMap(key_order_kept) | beam.Distinct(), equal_to([True]), label="order")
        count = batches | beam.Map(lambda b: b.num_rows) | beam.CombineGlobally(sum)
        assert_that(count, equal_to([800]), label="count")


def test_stream_from_bus_reads_events_published_before_and_during_the_run(tmp_path: Path, log: LocalEventLog) -> None:
    before = _events(300, 30, seed=21)
    during = _events(200, 30, seed=22, start=300)
    placed = log.publish(before)
    log.commit(GROUP, {1: 10})
    expected = [b for (_, b, _), (p, o) in zip(before, placed, strict=True) if p != 1 or o >= 10]
    expected += [b for _, b, _ in during]

    def publish_during_the_run() -> None:
        for chunk in range(0, len(during), 50):
            time.sleep(0.3)
            log.publish(during[chunk : chunk + 50])

    p = _pipeline()
    _ = (
        p
        | StreamFromBus(_spec(tmp_path, 4), GROUP, batch_size=40, poll_seconds=0.1, idle_stop_seconds=1.5)
        | beam.ParDo(Recorder())
    )
    RECORDED.clear()
    publisher = threading.Thread(target=publish_during_the_run)
    publisher.start()
    try:
        result = p.run()
        result.wait_until_finish()
    finally:
        publisher.join()
    assert sorted(b for batch in RECORDED for r in _rows(batch[0]) for b in [r[3]]) == sorted(expected)
    for batch, ts in RECORDED:  # each batch stamped at its newest enqueue time
        assert ts == Timestamp(micros=max(batch.column("enqueued_ms").to_pylist()) * 1000)
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
    assert counters["partition_ownership_changes"] >= 4
    assert log.committed(GROUP) == {0: 0, 1: 10, 2: 0, 3: 0}  # committing is the runner's job


def test_the_watermark_follows_enqueue_time_then_wall_time_when_idle(
    tmp_path: Path, log: LocalEventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipelines.sources.streaming.IDLE_WATERMARK_ALLOWANCE_S", 0.0)
    log.publish(_events(100, 10, seed=31))
    dofn = _StreamPartition(_spec(tmp_path, 4), GROUP, 1000, 0.5, None, 30.0, open_transport)
    dofn.setup()
    try:
        assert dofn.initial_restriction(0) == OffsetRange(0, 2**63 - 1)
        tracker = ThreadsafeRestrictionTracker(OffsetRestrictionTracker(OffsetRange(0, 2**63 - 1)))
        watermark = ManualWatermarkEstimator(None)
        (value,) = dofn.process(0, RestrictionTrackerView(tracker), watermark)
        newest = Timestamp(micros=max(value.value.column("enqueued_ms").to_pylist()) * 1000)
        assert value.timestamp == newest
        # caught up: the watermark moves on to wall time (minus the allowance) and the rest is deferred
        assert newest <= watermark.current_watermark() <= Timestamp.now()
        deferred = tracker.deferred_status()
        assert deferred is not None
        residual, delay = deferred
        assert residual.start == value.value.num_rows and residual.stop == 2**63 - 1
        assert 400_000 < delay.micros <= 500_000  # poll_seconds
    finally:
        dofn.teardown()
