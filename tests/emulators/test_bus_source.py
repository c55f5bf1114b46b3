"""The Python-native bus sources over a real Kafka-protocol broker (Tansu), in real Beam pipelines
(the in-process FnApiRunner the local runner uses): bounded replay and streaming with the watchdog."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from pipelines.runners.local import local_runner
from pipelines.sources.bus import ReadFromBus, bus_ranges
from pipelines.sources.streaming import StreamFromBus
from pipelines.transports.base import EventRecord, EventTransport
from pipelines.transports.factory import TransportSpec, open_transport

if TYPE_CHECKING:
    from kafka_service import KafkaBroker

pytestmark = pytest.mark.emulator
pytest_plugins = ("kafka_service",)  # the session broker fixture `kafka_broker`
GROUP = "meshkit-pipeline"

# Streaming output is unbounded, so `assert_that` (a GroupByKey in the global window) refuses it: the
# in-process runner lets this DoFn record what arrives, in arrival order.
RECORDED: list[tuple[pa.RecordBatch, Timestamp]] = []


class Recorder(beam.DoFn):
    def process(self, batch: pa.RecordBatch, ts: Timestamp = beam.DoFn.TimestampParam) -> Iterator[int]:  # type: ignore[assignment]
        RECORDED.append((batch, ts))
        yield batch.num_rows


def _events(n: int, keys: int, seed: int, start: int = 0) -> list[tuple[str, bytes, dict[str, str]]]:
    rng = random.Random(seed)
    return [
        (key, json.dumps({"id": key, "seq": i}).encode(), {"lsn": str(i)})
        for i in range(start, start + n)
        for key in [f"user-{rng.randrange(keys)}"]
    ]


def _pipeline() -> beam.Pipeline:
    return beam.Pipeline(runner=local_runner(), options=PipelineOptions(flags=[]))


def _rows(batch: pa.RecordBatch) -> list[tuple[int, int, str, bytes]]:
    parts, offsets = batch.column("partition").to_pylist(), batch.column("offset").to_pylist()
    assert len(set(parts)) == 1 and offsets == sorted(offsets)
    keys, bodies = batch.column("partition_key").to_pylist(), batch.column("body").to_pylist()
    return list(zip(parts, offsets, keys, bodies, strict=True))


def _key_order_kept(batch: pa.RecordBatch) -> list[bool]:
    last: dict[str, int] = {}
    ok = True
    for _, _, key, body in _rows(batch):
        seq = json.loads(body)["seq"]
        ok, last[key] = ok and last.get(key, -1) < seq, seq
    return [ok]


def _check_stream(expected: dict[tuple[int, int], bytes], start: dict[int, int]) -> None:
    """Every expected event arrived once, each partition's batches in offset order, stamped at enqueue time."""
    got: dict[tuple[int, int], bytes] = {}
    next_offset = dict(start)
    for batch, ts in RECORDED:
        rows = _rows(batch)
        partition = rows[0][0]
        assert rows[0][1] >= next_offset[partition], f"partition {partition} went back to offset {rows[0][1]}"
        next_offset[partition] = rows[-1][1] + 1
        assert ts == Timestamp(micros=max(batch.column("enqueued_ms").to_pylist()) * 1000)
        for p, o, _, body in rows:
            assert (p, o) not in got
            got[(p, o)] = body
    assert got == expected


def _counters(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    found = result.metrics().query(MetricsFilter().with_namespace("bus"))["counters"]
    return {c.key.metric.name: c.committed for c in found}


@pytest.fixture
def topic() -> str:
    return f"bus-{uuid.uuid4().hex[:10]}"


def test_read_from_bus_over_kafka_replays_exactly_from_committed_to_end(kafka_broker: KafkaBroker, topic: str) -> None:
    spec = kafka_broker.spec(topic, 4)
    events = _events(2000, 80, seed=41)
    with closing(open_transport(spec)) as transport:
        placed = transport.publish(events)
        transport.commit(GROUP, {0: 7, 3: 100})
        committed = transport.committed(GROUP)
        ranges, ends = bus_ranges(transport, GROUP)
        transport.publish(_events(100, 80, seed=42, start=2000))  # after the run's start: not replayed
    expected = [
        (p, o, key, body) for (key, body, _), (p, o) in zip(events, placed, strict=True) if committed[p] <= o < ends[p]
    ]
    assert len(expected) == 2000 - 107
    with _pipeline() as p:
        batches = p | ReadFromBus(spec, ranges, batch_size=150)
        assert_that(batches | beam.FlatMap(_rows), equal_to(expected), label="exact")
        assert_that(batches | beam.FlatMap(_key_order_kept) | beam.Distinct(), equal_to([True]), label="order")


def test_stream_from_bus_over_kafka_reads_events_published_before_and_during_the_run(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    spec = kafka_broker.spec(topic, 4)
    before, during = _events(1500, 60, seed=51), _events(600, 60, seed=52, start=1500)
    expected: dict[tuple[int, int], bytes] = {}
    with closing(open_transport(spec)) as transport:
        for (_, body, _), place in zip(before, transport.publish(before), strict=True):
            expected[place] = body
        transport.commit(GROUP, {2: 20})
    start = {0: 0, 1: 0, 2: 20, 3: 0}
    expected = {place: body for place, body in expected.items() if place[1] >= start[place[0]]}
    publisher = open_transport(spec)

    def publish_during_the_run() -> None:
        time.sleep(1.0)
        for chunk in range(0, len(during), 100):
            sent = during[chunk : chunk + 100]
            for (_, body, _), place in zip(sent, publisher.publish(sent), strict=True):
                expected[place] = body
            time.sleep(0.3)

    p = _pipeline()
    _ = p | StreamFromBus(spec, GROUP, batch_size=200, poll_seconds=0.2, idle_stop_seconds=4.0) | beam.ParDo(Recorder())
    RECORDED.clear()
    thread = threading.Thread(target=publish_during_the_run)
    thread.start()
    try:
        result = p.run()
        result.wait_until_finish()
    finally:
        thread.join()
        publisher.close()
    assert len(expected) == 1500 - 20 + 600
    _check_stream(expected, start)
    assert _counters(result)["partition_ownership_changes"] >= 4
    assert _counters(result).get("consumer_restarts", 0) == 0


class SilentTransport:
    """Test double of the external client's known failure: the first transport opened for reading
    stops returning events after `SILENT_AFTER` reads, while events keep waiting on the broker."""

    SILENT_AFTER = 3
    silenced = threading.Event()

    def __init__(self, inner: EventTransport) -> None:
        self.inner, self.reads = inner, 0
        self.goes_silent = not SilentTransport.silenced.is_set()

    def read(self, partition: int, start: int, end: int, max_batch: int = 5000) -> Iterator[list[EventRecord]]:
        self.reads += 1
        if self.goes_silent and self.reads > self.SILENT_AFTER:
            SilentTransport.silenced.set()
            return iter(())
        return self.inner.read(partition, start, end, max_batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def silent_opener(spec: TransportSpec) -> EventTransport:
    return SilentTransport(open_transport(spec))


def test_the_watchdog_reopens_a_consumer_that_goes_silent_while_events_wait(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    spec = kafka_broker.spec(topic, 1)
    events = _events(1000, 20, seed=61)
    with closing(open_transport(spec)) as transport:
        expected = {place: body for (_, body, _), place in zip(events, transport.publish(events), strict=True)}
    SilentTransport.silenced.clear()
    p = _pipeline()
    _ = (
        p
        | StreamFromBus(spec, GROUP, batch_size=100, poll_seconds=0.2, idle_stop_seconds=2.0, watchdog_seconds=1.0,
                        opener=silent_opener)
        | beam.ParDo(Recorder())
    )  # fmt: skip
    RECORDED.clear()
    started = time.monotonic()
    result = p.run()
    result.wait_until_finish()
    assert SilentTransport.silenced.is_set()
    _check_stream(expected, {0: 0})
    assert _counters(result)["consumer_restarts"] == 1
    assert time.monotonic() - started < 30
