"""The lake zones through Beam's filesystems, so the same code writes a local folder or gs://.

Layout (the local profile mirrors gs://): `<bucket-prefix>-raw/<domain>/<product>/ingest_date=YYYY-MM-DD/`
holds events as received (gzip JSON lines, replayable with `meshkit run --from-file`) and, under
`_dead_letters/`, rejected events with their reasons; `<bucket-prefix>-curated/...` holds masked,
Hive-partitioned Parquet. File names derive from their content, so a retried bundle overwrites its
own file instead of adding a duplicate.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


@dataclass(frozen=True)
class LakeLayout:
    """Where each zone of one product lives: `base` is a local folder or `gs://` (then buckets follow)."""

    base: str
    bucket_prefix: str
    domain: str
    product: str

    def zone(self, zone: str) -> str:
        return FileSystems.join(self.base, f"{self.bucket_prefix}-{zone}", self.domain, self.product)

    def partition(self, zone: str, ingest_date: str, *sub: str) -> str:
        return FileSystems.join(self.zone(zone), *sub, f"ingest_date={ingest_date}")


def _write(path: str, data: bytes) -> None:
    # we compress ourselves (deterministic bytes, mtime=0); Beam would gzip `.gz` paths a second time
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(data)


def write_raw(layout: LakeLayout, raw: pa.RecordBatch, ingest_date: str) -> str:
    """Events as received, one per line. A newline inside a JSON document can only be whitespace
    between tokens, so it becomes a space: the line stays the same JSON value."""
    partitions = raw.column("partition")
    offsets = raw.column("offset").to_pylist()
    name = f"part-p{partitions[0].as_py():04d}-o{min(offsets):012d}-{max(offsets):012d}.jsonl.gz"
    lines = b"\n".join(body.replace(b"\n", b" ") for body in raw.column("body").to_pylist()) + b"\n"
    path = FileSystems.join(layout.partition("raw", ingest_date), name)
    _write(path, gzip.compress(lines, compresslevel=3, mtime=0))
    return path


def write_dead_letters(layout: LakeLayout, dead: pa.RecordBatch, ingest_date: str, run_id: str) -> str:
    """Rejected events with reason and origin, kept in the raw zone because bodies may hold personal data."""
    rows = dead.to_pylist()
    digest = hashlib.sha1(
        run_id.encode() + b"".join(f"{r['partition']}:{r['offset']};".encode() for r in rows)
    ).hexdigest()[:16]
    out = io.BytesIO()
    for r in rows:
        record = {k: v for k, v in r.items() if k != "body"}
        record["run_id"] = run_id
        record["body"] = r["body"].decode("utf-8", errors="replace")
        out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    path = FileSystems.join(layout.partition("raw", ingest_date, "_dead_letters"), f"dl-{digest}.jsonl.gz")
    _write(path, gzip.compress(out.getvalue(), mtime=0))
    return path


def write_parquet(layout: LakeLayout, zone: str, table: pa.Table, ingest_date: str) -> str:
    """Masked rows as Parquet (zstd); the name is a digest of the (key, LSN) pairs it holds."""
    digest = hashlib.sha1()
    for key, lsn in zip(table.column("_key").to_pylist(), table.column("_lsn").to_pylist(), strict=True):
        digest.update(f"{key}\x00{lsn};".encode())
    path = FileSystems.join(layout.partition(zone, ingest_date), f"part-{digest.hexdigest()[:20]}.parquet")
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    _write(path, buffer.getvalue())
    return path
