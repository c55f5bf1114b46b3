"""The local event log: durable, partitioned, ordered per key, and honest after a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from meshkit.errors import ConfigError, NameError_
from pipelines.transports import local_log
from pipelines.transports.base import EventRecord, EventTransport
from pipelines.transports.local_log import LocalEventLog, TopicLockedError, partition_for
from pipelines.transports.segments import LogCorruptionError


def _records(n: int, keys: int = 50) -> list[tuple[str, bytes, dict[str, str]]]:
    return [(f"key-{i % keys}", f'{{"n":{i}}}'.encode(), {"lsn": str(i), "source": "test"}) for i in range(n)]


def _read_all(log: LocalEventLog, max_batch: int = 5000) -> list[EventRecord]:
    out: list[EventRecord] = []
    for partition, end in log.end_offsets().items():
        for batch in log.read(partition, 0, end, max_batch=max_batch):
            assert 0 < len(batch) <= max_batch
            out.extend(batch)
    return out


def _segments(root: Path, topic: str, partition: int) -> list[Path]:
    return sorted((root / topic / str(partition)).glob("*.log"))


def test_publish_read_round_trip_keeps_per_key_order(tmp_path: Path) -> None:
    records = _records(1000)
    transport: EventTransport = LocalEventLog(tmp_path, "users", partitions=4)  # mypy checks the protocol
    transport.close()
    with LocalEventLog(tmp_path, "users", partitions=4) as log:
        positions = log.publish(records)
        got = _read_all(log, max_batch=64)
    assert len(got) == len(records)
    by_position = {(r.partition, r.offset): r for r in got}
    for (key, body, props), position in zip(records, positions, strict=True):
        record = by_position[position]
        assert (record.key, record.body, record.properties) == (key, body, props)
        assert record.timestamp_ms > 0
    for key in {k for k, _, _ in records}:
        sent = [b for k, b, _ in records if k == key]
        received = sorted((r for r in got if r.key == key), key=lambda r: r.offset)
        assert [r.body for r in received] == sent
        assert len({r.partition for r in received}) == 1


def test_partition_of_a_key_is_stable_across_calls_and_instances(tmp_path: Path) -> None:
    # pinned: a change here would move keys to other partitions in existing logs
    assert [partition_for(k, 8) for k in ("user-1", "user-2", "a282fa2d", "")] == [0, 0, 1, 4]
    with LocalEventLog(tmp_path, "t", partitions=8) as log:
        first = log.publish([("user-1", b"a", {}), ("a282fa2d", b"b", {})])
    with LocalEventLog(tmp_path, "t", partitions=8) as log:
        second = log.publish([("a282fa2d", b"c", {}), ("user-1", b"d", {})])
    assert first == [(0, 0), (1, 0)]
    assert second == [(1, 1), (0, 1)]


def test_partition_hash_does_not_depend_on_python_hash() -> None:
    # blake2b of the UTF-8 key, first 8 bytes big-endian, modulo the count
    import hashlib

    for key in ("user-1", "ção", "x" * 200):
        expected = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % 8
        assert partition_for(key, 8) == expected


def test_offsets_and_commits_survive_reopen(tmp_path: Path) -> None:
    with LocalEventLog(tmp_path, "orders", partitions=3) as log:
        log.publish(_records(300))
        ends = log.end_offsets()
        assert log.committed("pipeline") == {0: 0, 1: 0, 2: 0}
        log.commit("pipeline", {0: ends[0], 2: 5})
        log.commit("pipeline", {1: 1})  # merges with what was committed before
    with LocalEventLog(tmp_path, "orders", partitions=3) as reopened:
        assert reopened.end_offsets() == ends
        assert reopened.committed("pipeline") == {0: ends[0], 1: 1, 2: 5}
        assert reopened.committed("$Default") == {0: 0, 1: 0, 2: 0}
        more = reopened.publish(_records(3))
        assert all(offset == ends[p] + sum(1 for q, _ in more[:i] if q == p) for i, (p, offset) in enumerate(more))
    assert not list((tmp_path / "orders" / "consumers").glob(".*tmp"))


def test_commit_rejects_offsets_beyond_the_end_and_bad_groups(tmp_path: Path) -> None:
    with LocalEventLog(tmp_path, "t", partitions=2) as log:
        log.publish(_records(4, keys=1))
        partition = partition_for("key-0", 2)
        with pytest.raises(ValueError, match=r"valid offsets are 0\.\.4"):
            log.commit("g", {partition: 5})
        with pytest.raises(ValueError, match=r"partitions 0\.\.1"):
            log.commit("g", {7: 0})
        with pytest.raises(NameError_, match="consumer group"):
            log.commit("../escape", {partition: 1})


@pytest.mark.parametrize("garbage", ["partial", "random", "bad-crc"])
def test_torn_last_record_is_truncated_on_open(tmp_path: Path, garbage: str) -> None:
    with LocalEventLog(tmp_path, "t", partitions=1) as log:
        log.publish(_records(10))
    segment = _segments(tmp_path, "t", 0)[-1]
    good = segment.read_bytes()
    frame_len = int.from_bytes(good[:4], "little") + 8
    tail = {
        "partial": good[: frame_len - 3],  # a record cut short by a kill
        "random": b"\x13\x37" * 7,
        "bad-crc": good[:8] + bytes([good[8] ^ 0xFF]) + good[9:frame_len],
    }[garbage]
    segment.write_bytes(good + tail)
    with LocalEventLog(tmp_path, "t", partitions=1) as log:
        assert log.end_offsets() == {0: 10}
        assert segment.read_bytes() == good
        assert [r.offset for r in _read_all(log)] == list(range(10))
        assert log.publish([("k", b"after", {})]) == [(0, 10)]
        assert _read_all(log)[-1].body == b"after"


def test_reader_never_returns_a_torn_record_while_a_writer_holds_the_topic(tmp_path: Path) -> None:
    writer = LocalEventLog(tmp_path, "t", partitions=1)
    writer.publish(_records(5))
    segment = _segments(tmp_path, "t", 0)[-1]
    with segment.open("ab") as handle:
        handle.write(segment.read_bytes()[:20])  # a half-written record from the live writer
    reader = LocalEventLog(tmp_path, "t", partitions=1)
    assert reader.end_offsets() == {0: 5}
    assert len(_read_all(reader)) == 5
    writer.close()
    reader.close()


def test_reader_instance_sees_appends_of_another_instance(tmp_path: Path) -> None:
    reader = LocalEventLog(tmp_path, "t", partitions=2, segment_bytes=300)
    with LocalEventLog(tmp_path, "t", partitions=2, segment_bytes=300) as writer:
        writer.publish(_records(40))
        assert reader.end_offsets() == writer.end_offsets()
        writer.publish(_records(40))
        assert sum(reader.end_offsets().values()) == 80
        assert len(_read_all(reader)) == 80
    reader.close()


def test_one_writer_per_topic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_log, "_LOCK_WAIT_S", 0.05)
    first = LocalEventLog(tmp_path, "t", partitions=1)
    first.publish([("k", b"1", {})])
    second = LocalEventLog(tmp_path, "t", partitions=1)
    with pytest.raises(TopicLockedError, match="another process"):
        second.publish([("k", b"2", {})])
    first.close()
    assert second.publish([("k", b"2", {})]) == [(0, 1)]
    second.close()


def test_segments_roll_and_reads_span_them(tmp_path: Path) -> None:
    with LocalEventLog(tmp_path, "t", partitions=1, segment_bytes=1000) as log:
        for chunk in range(5):
            log.publish(_records(20)[chunk * 4 : chunk * 4 + 4] * 5)
        segments = _segments(tmp_path, "t", 0)
        assert len(segments) > 3
        bases = [int(p.stem) for p in segments]
        assert bases == sorted(bases) and bases[0] == 0
        middle = [r.offset for batch in log.read(0, 17, 73, max_batch=10) for r in batch]
        assert middle == list(range(17, 73))
    with LocalEventLog(tmp_path, "t", partitions=1, segment_bytes=1000) as reopened:
        assert reopened.end_offsets() == {0: 100}
        assert [r.offset for r in _read_all(reopened)] == list(range(100))


def test_read_range_is_validated(tmp_path: Path) -> None:
    with LocalEventLog(tmp_path, "t", partitions=1) as log:
        log.publish(_records(3))
        assert list(log.read(0, 3, 3)) == []
        with pytest.raises(ValueError, match=r"available offsets are \[0, 3\)"):
            list(log.read(0, 0, 4))
        with pytest.raises(ValueError, match=r"partitions 0\.\.0"):
            list(log.read(1, 0, 0))


def _flip(segment: Path, at: int) -> None:
    data = bytearray(segment.read_bytes())
    data[at] ^= 0xFF
    segment.write_bytes(bytes(data))


def test_damaged_record_followed_by_valid_ones_is_an_error_not_a_truncation(tmp_path: Path) -> None:
    with LocalEventLog(tmp_path, "t", partitions=1) as log:
        log.publish(_records(10))
    segment = _segments(tmp_path, "t", 0)[-1]
    size = segment.stat().st_size
    _flip(segment, 40)  # inside the first record's payload
    with pytest.raises(LogCorruptionError, match=r"record 0 .* is damaged and valid records follow"):
        LocalEventLog(tmp_path, "t", partitions=1)
    assert segment.stat().st_size == size  # nothing was cut


def test_reader_that_trusted_an_end_offset_gets_an_error_for_damaged_records(tmp_path: Path) -> None:
    with LocalEventLog(tmp_path, "t", partitions=1) as log:
        log.publish(_records(10))
        _flip(_segments(tmp_path, "t", 0)[-1], 40)
        with pytest.raises(LogCorruptionError, match="record 0 is damaged"):
            list(log.read(0, 0, 10))


def test_partition_count_mismatch_names_topic_and_both_counts(tmp_path: Path) -> None:
    LocalEventLog(tmp_path, "payments.transactions", partitions=8).close()
    with pytest.raises(ConfigError) as err:
        LocalEventLog(tmp_path, "payments.transactions", partitions=4)
    message = str(err.value)
    assert "payments.transactions" in message and "8 partitions" in message and "opened with 4" in message


@pytest.mark.parametrize("topic", ["", "Users", "a/b", "../etc", ".hidden", "a b", "users\n", "x" * 129, "é"])
def test_invalid_topic_names_are_rejected_before_touching_disk(tmp_path: Path, topic: str) -> None:
    with pytest.raises(NameError_, match="invalid topic name"):
        LocalEventLog(tmp_path, topic)
    assert list(tmp_path.iterdir()) == []


def test_fifty_thousand_records_publish_and_read(tmp_path: Path) -> None:
    body = b'{"id":"' + b"x" * 280 + b'"}'  # ~300 bytes, like a change-feed item
    records = [(f"customer-{i % 5000}", body, {"lsn": str(i)}) for i in range(50_000)]
    with LocalEventLog(tmp_path, "bulk") as log:
        started = time.perf_counter()
        for i in range(0, len(records), 5000):
            log.publish(records[i : i + 5000])
        published = time.perf_counter() - started
        started = time.perf_counter()
        count = sum(len(batch) for p, end in log.end_offsets().items() for batch in log.read(p, 0, end))
        read = time.perf_counter() - started
    assert count == 50_000
    print(f"\nlocal log, 50k x {len(body)} B: publish {50_000 / published:,.0f}/s, read {50_000 / read:,.0f}/s")
