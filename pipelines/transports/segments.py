"""The segment files of the local event log: how a segment is named, and how its records are framed and read.

A segment is named by the offset of its first record (20 digits, `<base offset>.log`). A record on disk
is `length:u32 crc32:u32` followed by `length` payload bytes:
`offset:i64 timestamp_ms:i64 key_len:u16 props_len:u32 body_len:u32 key props(JSON) body`, all
little-endian, the CRC over the payload. A process killed mid-write leaves a torn last record; it is
detected by length/CRC (`scan_valid`) and truncated by `LocalEventLog` when it recovers.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from meshkit.errors import TerminalError
from pipelines.transports.base import EventRecord

PREFIX = struct.Struct("<II")  # length, crc32 of the payload
HEADER = struct.Struct("<qqHII")  # offset, timestamp_ms, key_len, props_len, body_len
SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")
_CHUNK = 1 << 20
_decode_json = json.JSONDecoder().decode


class LogCorruptionError(TerminalError):
    """A segment holds bytes that are not a valid record where a complete record must be."""


def segment_path(directory: Path, base: int) -> Path:
    """The segment of a partition's folder whose first record has offset `base`."""
    return directory / f"{base:020d}.log"


def segment_bases(directory: Path) -> list[int]:
    """Base offsets of the segments in a partition's folder, in order."""
    names = (entry.name for entry in directory.iterdir())
    return sorted(int(m.group(1)) for m in map(SEGMENT_NAME.match, names) if m)


def _frame_end(buf: bytes, at: int, offset: int) -> int | None:
    """End of the complete, CRC-valid record of `offset` starting at byte `at`; None if there is none."""
    if at + 8 > len(buf):
        return None
    length, crc = PREFIX.unpack_from(buf, at)
    stop = at + 8 + length
    if length < HEADER.size or stop > len(buf) or zlib.crc32(memoryview(buf)[at + 8 : stop]) != crc:
        return None
    return stop if HEADER.unpack_from(buf, at + 8)[0] == offset else None


def scan_valid(handle: BinaryIO, base: int, pos: int) -> tuple[int, int, bool]:
    """Walk valid records from byte `pos` (offset `base`): (records, end byte, damaged).

    `damaged` says the first bad record is followed by a valid one: that is corruption inside the
    log, not a torn last write, and cutting there would drop records that consumers may have read.
    """
    handle.seek(pos)
    buf = handle.read()
    at, count = 0, 0
    while (stop := _frame_end(buf, at, base + count)) is not None:
        at, count = stop, count + 1
    if at + 8 > len(buf):
        return count, pos + at, False
    after = at + 8 + PREFIX.unpack_from(buf, at)[0]
    return count, pos + at, _frame_end(buf, after, base + count + 1) is not None


def read_records(
    handle: BinaryIO, topic: str, partition: int, base: int, start: int, end: int
) -> Iterator[EventRecord]:
    """Decode records of one segment from `start` up to `end` (exclusive), reading in 1 MiB chunks."""
    buf, at, expected = b"", 0, base
    unpack_prefix, unpack_header, crc32, hsize = PREFIX.unpack_from, HEADER.unpack_from, zlib.crc32, HEADER.size
    while expected < end:
        more = handle.read(_CHUNK)
        if not more:
            return  # the rest is in the next segment
        buf, at = buf[at:] + more, 0
        size, view = len(buf), memoryview(buf)
        while expected < end and at + 8 <= size:
            length, crc = unpack_prefix(buf, at)
            stop = at + 8 + length
            if stop > size:
                break  # record continues in the next chunk
            if expected >= start:
                offset, ts, klen, plen, blen = unpack_header(buf, at + 8)
                if offset != expected or crc32(view[at + 8 : stop]) != crc:
                    raise LogCorruptionError(
                        f"topic {topic!r} partition {partition}: record {expected} is damaged",
                        hint="Its CRC or offset is wrong; restore the segment or replay from the source.",
                    )
                k = at + 8 + hsize
                props = _decode_json(buf[k + klen : k + klen + plen].decode("utf-8")) if plen else {}
                yield EventRecord(
                    partition, offset, buf[k : k + klen].decode("utf-8"), ts, props, buf[stop - blen : stop]
                )
            at, expected = stop, expected + 1
