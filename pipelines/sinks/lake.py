"""The lake zones through Beam's filesystems, so the same code writes a local folder or gs://.

The base is `settings.lake_uri` (e.g. `gs://`: one bucket per zone, `<lake_bucket_prefix>-<zone>`) or,
when unset, the workspace's lake folder laid out the same way (`lake_layout` is the one place that
decides). Layout: `<bucket-prefix>-raw/<domain>/<product>/ingest_date=YYYY-MM-DD/` holds events as
received and, under `_dead_letters/`, rejected events with their reasons; `<bucket-prefix>-curated/...`
holds masked, Hive-partitioned Parquet. File names derive from their content, so a retried bundle
overwrites its own file instead of adding a duplicate.

The raw zone is gzip JSON lines rather than Avro: a change-feed item is schemaless JSON whose shape
is only judged later (invalid events must be kept byte for byte, which a typed Avro schema could not
hold), JSON lines replay with `meshkit run --from-file` and read with any tool, and gzip of a whole
file is deterministic here (mtime=0), which the overwrite-on-retry naming relies on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from meshkit.config import Settings
from monitoring.lineage.naming import DatasetName, gcs_dataset, lake_zone_dataset


@dataclass(frozen=True)
class LakeLayout:
    """Where each zone of one product lives: `base` is a local folder or `gs://` (then buckets follow)."""

    base: str
    bucket_prefix: str
    domain: str
    product: str

    def zone(self, zone: str) -> str:
        bucket = f"{self.bucket_prefix}-{zone}"
        # a bare scheme (`gs://`) means one bucket per zone; Beam's join would drop a slash of it
        root = self.base + bucket if self.base.endswith("://") else FileSystems.join(self.base, bucket)
        return FileSystems.join(root, self.domain, self.product)

    def partition(self, zone: str, ingest_date: str, *sub: str) -> str:
        return FileSystems.join(self.zone(zone), *sub, f"ingest_date={ingest_date}")


def lake_base(settings: Settings) -> str:
    """`settings.lake_uri` (e.g. `gs://`), else the local lake folder."""
    return settings.lake_uri or str(settings.lake_dir)


def lake_layout(settings: Settings, product_ref: str) -> LakeLayout:
    """The zones of product `<domain>/<product>` under the configured lake base."""
    domain, product = product_ref.split("/")
    return LakeLayout(lake_base(settings), settings.lake_bucket_prefix, domain, product)


def zone_dataset(settings: Settings, zone: str, domain: str, product: str, *sub: str) -> DatasetName:
    """A product's zone (or a folder in it, e.g. `_dead_letters`) as an OpenLineage dataset."""
    bucket, base = settings.bucket(zone), lake_base(settings)
    if base.startswith("gs://"):
        return gcs_dataset(bucket, "/".join((domain, product, *sub)))
    found = lake_zone_dataset(Path(base), bucket, domain, product)
    return DatasetName(found.namespace, "/".join((found.name, *sub)))


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
