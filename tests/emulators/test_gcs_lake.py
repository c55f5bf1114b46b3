"""The lake on gs:// (gcp-storage-emulator) through Beam's filesystems: raw, curated, dead letters,
read back with the real google-cloud-storage client; a retried bundle overwrites, never duplicates."""

from __future__ import annotations

import gzip
import io
import json
import time

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from gcs_service import GcsEmulator

from meshkit.config import load_settings
from pipelines.events import raw_batch
from pipelines.sinks.lake import LakeLayout, lake_layout, write_dead_letters, write_parquet, write_raw, zone_dataset
from pipelines.transforms.decode import dead_letter_batch

pytestmark = pytest.mark.emulator
pytest_plugins = ("gcs_service",)  # the session fixture `gcs`
DATE = "2026-11-26"


def objects(emulator: GcsEmulator, bucket: str) -> dict[str, bytes]:
    return {b.name: b.download_as_bytes() for b in emulator.client().list_blobs(bucket)}


def changes(keys: list[str]) -> pa.Table:
    return pa.table(
        {
            "name": [f"n-{k}" for k in keys],
            "_key": keys,
            "_lsn": pa.array(range(1, len(keys) + 1), pa.int64()),
        }
    )


def test_settings_route_the_lake_to_gcs(repo_root) -> None:
    settings = load_settings(repo_root, overrides={"lake_uri": "gs://", "lake_bucket_prefix": "acme-lake"}, environ={})
    layout = lake_layout(settings, "customers/users")
    assert layout.partition("curated", DATE) == f"gs://acme-lake-curated/customers/users/ingest_date={DATE}"
    dead = zone_dataset(settings, "raw", "customers", "users", "_dead_letters")
    assert (dead.namespace, dead.name) == ("gs://acme-lake-raw", "customers/users/_dead_letters")


def test_raw_curated_and_dead_letters_land_in_their_buckets(gcs: GcsEmulator) -> None:
    prefix = gcs.bucket_prefix()
    layout = LakeLayout("gs://", prefix, "customers", "users")
    bodies = [json.dumps({"id": str(i), "note": "line\nbreak"}, indent=1).encode() for i in range(3)]
    raw_path = write_raw(layout, raw_batch(bodies, partition=2, offsets=[10, 11, 12]), DATE)
    curated_path = write_parquet(layout, "curated", changes(["a", "b"]), DATE)
    dead = dead_letter_batch(
        [{"partition": 2, "offset": 13, "enqueued_ms": 0, "reason_code": "json", "reason": "not JSON", "body": b"{"}]
    )
    dead_path = write_dead_letters(layout, dead, DATE, "run-1")

    assert (
        raw_path
        == f"gs://{prefix}-raw/customers/users/ingest_date={DATE}/part-p0002-o000000000010-000000000012.jsonl.gz"
    )
    raw = objects(gcs, f"{prefix}-raw")
    lines = gzip.decompress(raw[raw_path.split("/", 3)[3]]).splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(b) for b in bodies]  # same JSON, one per line
    assert dead_path.startswith(f"gs://{prefix}-raw/customers/users/_dead_letters/ingest_date={DATE}/dl-")
    letter = json.loads(gzip.decompress(raw[dead_path.split("/", 3)[3]]))
    assert (letter["reason_code"], letter["body"], letter["run_id"]) == ("json", "{", "run-1")

    with FileSystems.open(curated_path) as handle:  # read back through Beam as well
        table = pq.read_table(io.BytesIO(handle.read()))
    assert table.column("_key").to_pylist() == ["a", "b"]
    assert list(objects(gcs, f"{prefix}-curated")) == [curated_path.split("/", 3)[3]]


def test_a_retried_bundle_overwrites_its_files(gcs: GcsEmulator) -> None:
    prefix = gcs.bucket_prefix()
    layout = LakeLayout("gs://", prefix, "customers", "users")
    batch = raw_batch([b'{"id": "1"}', b'{"id": "2"}'], partition=0, offsets=[5, 6])
    first = (write_raw(layout, batch, DATE), write_parquet(layout, "curated", changes(["a", "b"]), DATE))
    before = {**objects(gcs, f"{prefix}-raw"), **objects(gcs, f"{prefix}-curated")}
    again = (write_raw(layout, batch, DATE), write_parquet(layout, "curated", changes(["a", "b"]), DATE))
    after = {**objects(gcs, f"{prefix}-raw"), **objects(gcs, f"{prefix}-curated")}
    assert first == again
    assert after == before  # same names, same bytes: nothing added
    assert len(after) == 2


def test_a_beam_pipeline_writes_the_raw_zone_on_gcs(gcs: GcsEmulator) -> None:
    """Beam's gs:// filesystem inside a running pipeline, with no wait for Google credentials."""
    prefix = gcs.bucket_prefix()
    layout = LakeLayout("gs://", prefix, "customers", "users")
    batches = [raw_batch([b'{"id": "%d"}' % i], partition=p, offsets=[i]) for p, i in ((0, 1), (1, 2), (0, 3))]
    started = time.monotonic()
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
        written = p | beam.Create(batches) | beam.Map(lambda b: write_raw(layout, b, DATE).rsplit("/", 1)[1])
        assert_that(
            written,
            equal_to(
                [
                    "part-p0000-o000000000001-000000000001.jsonl.gz",
                    "part-p0001-o000000000002-000000000002.jsonl.gz",
                    "part-p0000-o000000000003-000000000003.jsonl.gz",
                ]
            ),
        )
    assert time.monotonic() - started < 15  # ~25 s when Beam searches for credentials first
    assert len(objects(gcs, f"{prefix}-raw")) == 3
