"""A durable, partitioned, append-only event log on local disk: the `local` profile's Event Hubs.

Layout under `<root>/<topic>/` (Kafka-like, so it is easy to inspect and to reason about):

    topic.json                       {"format", "topic", "partitions"}, written once at creation
    <partition>/<base offset>.log    segments, named by the offset of their first record (20 digits)
    consumers/<group>.json           committed offsets of a consumer group (atomic replace)
    writer.lock                      flock held by the one process that appends

The segments' record format is in `segments.py`. A process killed mid-write leaves a torn last record;
it is truncated when a writer (or an opener, if no writer is active) recovers.
Other processes may read while one process appends: readers stop at the first incomplete record.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import time
import zlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from meshkit.errors import ConfigError, NameError_, TransientError
from pipelines.transports.base import EventRecord
from pipelines.transports.segments import (
    HEADER,
    PREFIX,
    LogCorruptionError,
    read_records,
    scan_valid,
    segment_bases,
    segment_path,
)

FORMAT = "meshkit-local-log/1"
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
_TOPIC = re.compile(r"[a-z0-9][a-z0-9.-]{0,127}")
_GROUP = re.compile(r"[A-Za-z0-9$][A-Za-z0-9._$-]{0,127}")  # `$Default` is Event Hubs' default group
_LOCK_WAIT_S = 5.0
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class TopicLockedError(TransientError):
    """Another process is appending to the topic; only one writer per topic is allowed."""


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: str, partitions: int) -> int:
    """Stable partition of a key (BLAKE2b, not `hash()`, so it is the same in every process)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def validate_topic(topic: str) -> str:
    """Return `topic` if it is safe as a folder name, else raise with the rule it broke."""
    if not _TOPIC.fullmatch(topic):
        raise NameError_(
            f"invalid topic name {topic!r}",
            hint="Use 1-128 characters of lower-case letters, digits, '-' and '.', starting with a letter "
            "or digit (e.g. `payments.transactions`).",
        )
    return topic


@dataclass
class _Partition:
    """What is known about one partition's segments: bases, next offset, valid bytes in the last one."""

    path: Path
    bases: list[int] = field(default_factory=list)
    end: int = 0
    tail_bytes: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file + fsync + os.replace + directory fsync: readers see the old or the new file, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


class LocalEventLog:
    """One topic of the local event log; implements `EventTransport`.

    `publish` batches: one write, flush and fsync per touched segment per call. Appending takes an
    exclusive `flock` on the topic's `writer.lock` (held until `close`); reading needs no lock.
    """

    def __init__(
        self, root: Path, topic: str, partitions: int = 8, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> None:
        if partitions < 1 or segment_bytes < 1:
            raise ConfigError(f"topic {topic!r}: partitions ({partitions}) and segment_bytes must be positive")
        self.topic = validate_topic(topic)
        self.partitions = partitions
        self.segment_bytes = segment_bytes
        self.path = Path(root) / topic
        self._open_meta()
        self._parts = [_Partition(self.path / str(p)) for p in range(partitions)]
        self._lock_fd: int | None = None
        self._files: dict[int, BinaryIO] = {}
        for part in self._parts:
            part.path.mkdir(exist_ok=True)
        if self._try_lock():
            try:
                self._recover()
            finally:
                self._unlock()
        else:
            for index in range(partitions):
                self._refresh(index)

    def _open_meta(self) -> None:
        meta_path = self.path / "topic.json"
        if not meta_path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            meta = {"format": FORMAT, "topic": self.topic, "partitions": self.partitions}
            _write_atomic(meta_path, json.dumps(meta, indent=2).encode())
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{meta_path}: log format {meta.get('format')!r} is not {FORMAT!r}")
        if int(meta["partitions"]) != self.partitions:
            raise ConfigError(
                f"topic {self.topic!r} at {self.path} has {meta['partitions']} partitions, "
                f"but was opened with {self.partitions}",
                hint="Open it with the stored partition count, or use a new topic: a different count "
                "would move keys to other partitions and break per-key order.",
            )

    def _try_lock(self) -> bool:
        fd = os.open(self.path / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _become_writer(self) -> None:
        deadline = time.monotonic() + _LOCK_WAIT_S
        while not self._try_lock():
            if time.monotonic() > deadline:
                # Retrying later is safe: nothing has been written by this call yet.
                raise TopicLockedError(
                    f"topic {self.topic!r} at {self.path} is being written by another process",
                    hint="Stop the other writer (one relay per topic), then retry.",
                )
            time.sleep(0.01)
        self._recover()

    def close(self) -> None:
        """Close segment files and release the writer lock."""
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._unlock()

    def __enter__(self) -> LocalEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _segment(self, partition: int, base: int) -> Path:
        return segment_path(self._parts[partition].path, base)

    def _list_bases(self, partition: int) -> list[int]:
        return segment_bases(self._parts[partition].path)

    def _recover(self) -> None:
        """As the writer: find each partition's end and cut a torn last record off its last segment."""
        for index, part in enumerate(self._parts):
            part.bases = self._list_bases(index) or [0]
            last = self._segment(index, part.bases[-1])
            last.touch(exist_ok=True)
            with last.open("r+b") as handle:
                count, valid, damaged = scan_valid(handle, part.bases[-1], 0)
                if damaged:
                    raise LogCorruptionError(
                        f"topic {self.topic!r} partition {index}: record {part.bases[-1] + count} in {last} is "
                        "damaged and valid records follow it",
                        hint="Restore the segment from a backup, or move the topic folder aside and replay from the "
                        "source; the log is not truncated automatically because readers may have consumed them.",
                    )
                if handle.seek(0, os.SEEK_END) != valid:
                    handle.truncate(valid)
                    handle.flush()
                    os.fsync(handle.fileno())
            part.end, part.tail_bytes = part.bases[-1] + count, valid

    def _refresh(self, partition: int) -> None:
        """As a reader: pick up what another process appended since we last looked."""
        if self._lock_fd is not None:
            return  # we are the only writer, our state is exact
        part = self._parts[partition]
        bases = self._list_bases(partition)
        if not bases:
            return
        if bases[-1] != (part.bases[-1] if part.bases else None):
            part.bases, part.end, part.tail_bytes = bases, bases[-1], 0
        path = self._segment(partition, bases[-1])
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size > part.tail_bytes:
                count, part.tail_bytes, _ = scan_valid(handle, part.end, part.tail_bytes)
                part.end += count

    def publish(self, records: Iterable[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, int]]:
        """Append records in order; one write + flush + fsync per touched segment per call."""
        if self._lock_fd is None:
            self._become_writer()
        now_ms = time.time_ns() // 1_000_000
        pending: dict[int, list[bytes]] = {}
        result: list[tuple[int, int]] = []
        next_offset = [p.end for p in self._parts]
        pack_header, pack_prefix, crc32 = HEADER.pack, PREFIX.pack, zlib.crc32
        for key, body, properties in records:
            partition = partition_for(key, self.partitions)
            offset = next_offset[partition]
            next_offset[partition] = offset + 1
            key_bytes = key.encode("utf-8")
            if len(key_bytes) > 0xFFFF:
                raise ValueError(f"topic {self.topic!r}: partition key longer than 65535 bytes")
            props = _encode_json(properties).encode("utf-8") if properties else b""
            payload = b"".join(
                (pack_header(offset, now_ms, len(key_bytes), len(props), len(body)), key_bytes, props, body)
            )
            pending.setdefault(partition, []).append(pack_prefix(len(payload), crc32(payload)) + payload)
            result.append((partition, offset))
        for partition, frames in pending.items():
            self._append(partition, frames)
        return result

    def _append(self, partition: int, frames: list[bytes]) -> None:
        part = self._parts[partition]
        chunk: list[bytes] = []
        size = part.tail_bytes
        for frame in frames:
            if size and size + len(frame) > self.segment_bytes:
                self._write(partition, chunk)
                self._roll(partition)
                chunk, size = [], 0
            chunk.append(frame)
            size += len(frame)
        self._write(partition, chunk)

    def _write(self, partition: int, frames: list[bytes]) -> None:
        if not frames:
            return
        part = self._parts[partition]
        handle = self._files.get(partition)
        if handle is None:
            handle = self._files[partition] = self._segment(partition, part.bases[-1]).open("ab")
        data = b"".join(frames)
        try:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            # Cut what may have reached the file so the next append starts on a record boundary.
            handle.truncate(part.tail_bytes)
            raise
        part.end += len(frames)
        part.tail_bytes += len(data)

    def _roll(self, partition: int) -> None:
        part = self._parts[partition]
        handle = self._files.pop(partition, None)
        if handle is not None:
            handle.close()
        self._segment(partition, part.end).touch()
        _fsync_dir(part.path)
        part.bases.append(part.end)
        part.tail_bytes = 0

    def end_offsets(self) -> dict[int, int]:
        """The next offset per partition, including what another writer process appended."""
        for index in range(self.partitions):
            self._refresh(index)
        return {index: part.end for index, part in enumerate(self._parts)}

    def read(self, partition: int, start: int, end: int, max_batch: int = 5000) -> Iterator[list[EventRecord]]:
        """Events with offsets in `[start, end)`; bodies are sliced, never decoded."""
        self._check_partition(partition)
        part = self._parts[partition]
        if end > part.end:
            self._refresh(partition)
        if not 0 <= start <= end <= part.end or max_batch < 1:
            raise ValueError(
                f"topic {self.topic!r} partition {partition}: cannot read [{start}, {end}) with "
                f"max_batch={max_batch}; available offsets are [0, {part.end})"
            )
        bases = list(part.bases)
        batch: list[EventRecord] = []
        first = bisect_right(bases, start) - 1
        for index in range(max(first, 0), len(bases)):
            if start >= end:
                break
            with self._segment(partition, bases[index]).open("rb") as handle:
                for record in read_records(handle, self.topic, partition, bases[index], start, end):
                    batch.append(record)
                    start = record.offset + 1
                    if len(batch) >= max_batch:
                        yield batch
                        batch = []
        if start < end:
            raise LogCorruptionError(
                f"topic {self.topic!r} partition {partition}: offsets [{start}, {end}) are missing",
                hint="A segment file was removed or truncated; restore it or replay from the source.",
            )
        if batch:
            yield batch

    def committed(self, group: str) -> dict[int, int]:
        """Next offset to read per partition for `group`; 0 where it never committed."""
        path = self._group_path(group)
        stored = json.loads(path.read_text())["offsets"] if path.exists() else {}
        return {index: int(stored.get(str(index), 0)) for index in range(self.partitions)}

    def commit(self, group: str, offsets: Mapping[int, int]) -> None:
        """Merge `offsets` into the group's committed offsets, atomically and durably."""
        current = self.committed(group)
        ends = self.end_offsets()
        for partition, offset in offsets.items():
            self._check_partition(partition)
            if not 0 <= offset <= ends[partition]:
                raise ValueError(
                    f"topic {self.topic!r} group {group!r}: cannot commit offset {offset} for partition "
                    f"{partition}; valid offsets are 0..{ends[partition]}"
                )
            current[partition] = offset
        path = self._group_path(group)
        path.parent.mkdir(exist_ok=True)
        body = {"group": group, "offsets": {str(p): o for p, o in sorted(current.items())}}
        _write_atomic(path, json.dumps(body, indent=1).encode())

    def _group_path(self, group: str) -> Path:
        if not _GROUP.fullmatch(group):
            raise NameError_(
                f"invalid consumer group name {group!r}",
                hint="Use letters, digits, '.', '_', '-' or '$' (e.g. `$Default` or `curated-writer`).",
            )
        return self.path / "consumers" / f"{group}.json"

    def _check_partition(self, partition: int) -> None:
        if not 0 <= partition < self.partitions:
            raise ValueError(f"topic {self.topic!r} has partitions 0..{self.partitions - 1}; got partition {partition}")
