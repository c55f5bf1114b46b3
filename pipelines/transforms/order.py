"""Order events per key by LSN and drop duplicate deliveries (at-least-once in, exactly-once out)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

DUPLICATE_SCHEMA = pa.schema(
    [
        pa.field("_key", pa.string(), nullable=False),
        pa.field("_lsn", pa.int64(), nullable=False),
        pa.field("_partition", pa.int32(), nullable=False),
        pa.field("_offset", pa.int64(), nullable=False),
    ]
)


def shard_of(key: str, shards: int) -> int:
    """Stable across processes and runs (unlike `hash()`), so a key always lands in one shard."""
    return zlib.crc32(key.encode("utf-8")) % shards


def split_by_shard(batch: pa.RecordBatch, shards: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(shard, sub-batch) for every shard present in `batch`: all events of a key meet in one shard."""
    if batch.num_rows == 0:
        return
    ids = pa.array([shard_of(k, shards) for k in batch.column("_key").to_pylist()], pa.int32())
    for shard in pc.unique(ids).to_pylist():
        yield shard, batch.filter(pc.equal(ids, shard))


def order_and_deduplicate(batches: Iterable[pa.RecordBatch]) -> tuple[pa.Table, pa.Table]:
    """(events sorted by key then LSN with one row per (key, LSN), the duplicate deliveries dropped)."""
    table = pa.Table.from_batches(list(batches)).combine_chunks()
    if table.num_rows == 0:
        return table, DUPLICATE_SCHEMA.empty_table()
    table = table.sort_by(
        [("_key", "ascending"), ("_lsn", "ascending"), ("_partition", "ascending"), ("_offset", "ascending")]
    )
    keys, lsns = table.column("_key"), table.column("_lsn")
    same = pc.and_(pc.equal(keys[1:], keys[:-1]), pc.equal(lsns[1:], lsns[:-1]))
    is_dup = pa.concat_arrays([pa.array([False]), same.combine_chunks()])
    duplicates = table.filter(is_dup).select([f.name for f in DUPLICATE_SCHEMA]).cast(DUPLICATE_SCHEMA)
    return table.filter(pc.invert(is_dup)), duplicates
