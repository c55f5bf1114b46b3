"""BigQueryWarehouse against local-bigquery through the real google-cloud-bigquery client; Beam's real
WriteToBigQuery into it; and one product run end to end on gs:// + BigQuery equal to a DuckDB run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing import test_pipeline
from bigquery_service import BigQueryEmulator
from gcs_service import GcsEmulator

from meshkit.config import Settings, load_settings
from meshkit.products.discovery import find_product
from pipelines.sinks.bigquery import BigQueryWarehouse
from pipelines.sinks.factory import warehouse_for
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables

pytestmark = pytest.mark.emulator
pytest_plugins = ("gcs_service", "bigquery_service")  # the session fixtures `gcs` and `bigquery`
ROOT = Path(__file__).resolve().parents[2]
T = WarehouseTables.of("customers", "users")


def changes(rows: list[tuple[str, int, str, str | None]]) -> pa.Table:
    """The same batches as tests/unit/test_warehouse.py, plus a timestamp and a decimal column."""
    return pa.table(
        {
            "name": pa.array([r[3] for r in rows], pa.string()),
            "balance": pa.array([Decimal(r[1]) / 4 if r[3] else None for r in rows], pa.decimal128(18, 2)),
            "_key": pa.array([r[0] for r in rows], pa.string()),
            "_lsn": pa.array([r[1] for r in rows], pa.int64()),
            "_op": [r[2] for r in rows],
            "_source_ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * len(rows), pa.timestamp("us", tz="UTC")),
            "_partition": pa.array([0] * len(rows), pa.int32()),
            "_offset": pa.array(list(range(len(rows))), pa.int64()),
        }
    )


@pytest.fixture
def warehouse(bigquery: BigQueryEmulator) -> BigQueryWarehouse:
    project = bigquery.project()
    return BigQueryWarehouse(
        bigquery.client(project), location="southamerica-east1", read_client=bigquery.storage_read_client()
    )


def current(wh: BigQueryWarehouse | DuckDBWarehouse) -> dict[str, tuple[str | None, int]]:
    t = wh.read(T, "current").to_pydict()
    return {k: (n, lsn) for k, n, lsn in zip(t["_key"], t["name"], t["_lsn"], strict=True)}


def deleted_images(wh: BigQueryWarehouse | DuckDBWarehouse) -> dict[tuple[str, int], str | None]:
    log = wh.read(T, "changelog").to_pydict()
    return {
        (k, lsn): name
        for k, lsn, op, name in zip(log["_key"], log["_lsn"], log["_op"], log["name"], strict=True)
        if op == "delete"
    }


def test_merge_applies_updates_and_deletes(warehouse: BigQueryWarehouse) -> None:
    r = warehouse.apply_changes(
        T, changes([("a", 1, "create", "A1"), ("a", 2, "update", "A2"), ("b", 1, "create", "B1")])
    )
    assert (r.changelog_rows, r.replayed) == (3, 0)
    assert current(warehouse) == {"a": ("A2", 2), "b": ("B1", 1)}
    warehouse.apply_changes(T, changes([("b", 5, "delete", None)]))
    assert current(warehouse) == {"a": ("A2", 2)}
    assert warehouse.client.get_dataset(f"{warehouse.project}.customers").location == "southamerica-east1"
    table = warehouse.client.get_table(warehouse.table_id(T, "changelog"))
    assert {f.name: f.field_type for f in table.schema}["balance"] in ("NUMERIC", "DECIMAL")


def test_replay_leaves_the_tables_unchanged_and_late_events_never_regress(warehouse: BigQueryWarehouse) -> None:
    first = changes(
        [("a", 1, "create", "A1"), ("a", 3, "update", "A3"), ("b", 1, "create", "B1"), ("b", 2, "delete", None)]
    )
    warehouse.apply_changes(T, first)
    before = (warehouse.read(T, "changelog").sort_by("_key"), warehouse.read(T, "current"))
    again = warehouse.apply_changes(T, first)
    assert (again.changelog_rows, again.replayed) == (0, 4)
    assert warehouse.read(T, "changelog").sort_by("_key").equals(before[0])
    assert warehouse.read(T, "current").equals(before[1])
    assert warehouse.unseen(T, first).num_rows == 0
    late = warehouse.apply_changes(T, changes([("a", 2, "update", "A2-late"), ("b", 1, "create", "B1")]))
    assert late.changelog_rows == 1
    assert current(warehouse) == {"a": ("A3", 3)}  # deleted b stays deleted, a keeps its newest version
    log = warehouse.read(T, "changelog")
    pairs = list(zip(log.column("_key").to_pylist(), log.column("_lsn").to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs)) == 5


def test_a_delete_carries_the_image_it_deleted(warehouse: BigQueryWarehouse) -> None:
    warehouse.apply_changes(T, changes([("a", 1, "create", "A1"), ("a", 2, "update", "A2"), ("b", 1, "create", "B1")]))
    warehouse.apply_changes(T, changes([("a", 7, "delete", None)]))  # image from an earlier batch
    warehouse.apply_changes(T, changes([("c", 1, "create", "C1"), ("c", 2, "delete", None)]))  # same batch
    assert deleted_images(warehouse) == {("a", 7): "A2", ("c", 2): "C1"}
    assert set(current(warehouse)) == {"b"}
    again = warehouse.apply_changes(T, changes([("a", 7, "delete", None)]))
    assert again.replayed == 1
    assert deleted_images(warehouse)[("a", 7)] == "A2"


def test_same_batches_same_tables_as_duckdb(warehouse: BigQueryWarehouse, tmp_path: Path) -> None:
    """Conservation and parity: every batch in is a changelog row or a replay, and both warehouses end equal."""
    duck = DuckDBWarehouse(tmp_path / "w.duckdb")
    batches = [
        changes([("a", 1, "create", "A1"), ("b", 1, "create", "B1"), ("c", 1, "create", "C1")]),
        changes([("a", 2, "update", "A2"), ("b", 4, "delete", None), ("a", 1, "create", "A1")]),
        changes([("c", 3, "update", "C3"), ("b", 2, "update", "B2-late"), ("d", 1, "create", "D1")]),
    ]
    events_in = written = replayed = 0
    for batch in batches:
        got, want = warehouse.apply_changes(T, batch), duck.apply_changes(T, batch)
        assert got == want
        events_in, written, replayed = events_in + batch.num_rows, written + got.changelog_rows, replayed + got.replayed
    assert events_in == written + replayed == 9
    assert warehouse.count(T, "changelog") == written == duck.count(T, "changelog")
    assert current(warehouse) == current(duck)
    assert deleted_images(warehouse) == deleted_images(duck)
    assert warehouse.append(T, "duplicates", pa.table({"_key": ["a"], "run_id": ["r"]})) == 1
    assert warehouse.count(T, "duplicates") == 1
    assert not warehouse.exists(T, "dead_letters")


def test_a_new_nullable_column_is_added_without_losing_rows(warehouse: BigQueryWarehouse) -> None:
    warehouse.apply_changes(T, changes([("a", 1, "create", "A1")]))
    wider = changes([("b", 1, "create", "B1")]).append_column("tier", pa.array(["gold"], pa.string()))
    warehouse.apply_changes(T, wider)
    rows = {r["_key"]: r.get("tier") for r in warehouse.read(T, "current").to_pylist()}
    assert rows == {"a": None, "b": "gold"}


def test_replace_swaps_a_snapshot(warehouse: BigQueryWarehouse) -> None:
    warehouse.replace(T, "snapshot", pa.table({"id": [1, 2]}))
    warehouse.replace(T, "snapshot", pa.table({"id": [3]}))
    assert warehouse.read(T, "snapshot").column("id").to_pylist() == [3]


# --- Beam's own BigQuery sink ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["FILE_LOADS", "STREAMING_INSERTS"])
def test_beam_write_to_bigquery(
    method: str, bigquery: BigQueryEmulator, gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beam's own `WriteToBigQuery` into the emulator. FILE_LOADS: Beam writes files to gs:// (the GCS
    emulator) and runs load jobs that read them; STREAMING_INSERTS: `insertAll` with Beam's insert ids.
    Beam's clients honour no emulator variable: its apitools client gets the emulator's base URL
    (design.md) and its google-cloud-bigquery client (made eagerly, with credential discovery) is one
    on the emulator."""
    from types import SimpleNamespace

    from apache_beam.io.gcp import bigquery_tools
    from apache_beam.io.gcp.internal.clients.bigquery import bigquery_v2_client

    project = bigquery.project()
    monkeypatch.setattr(bigquery_v2_client.BigqueryV2, "BASE_URL", f"{bigquery.endpoint}/bigquery/v2/")
    monkeypatch.setattr(bigquery_tools, "gcp_bigquery", SimpleNamespace(Client=lambda **_: bigquery.client(project)))
    client = bigquery.client(project)
    client.create_dataset("beam")
    prefix = gcs.bucket_prefix(("temp",))
    rows = [{"id": i, "name": f"n{i}"} for i in range(5)]
    options = beam.options.pipeline_options.PipelineOptions(project=project, temp_location=f"gs://{prefix}-temp/tmp")
    started = time.monotonic()
    with test_pipeline.TestPipeline(runner="FnApiRunner", options=options) as p:
        _ = (
            p
            | beam.Create(rows)
            | beam.io.WriteToBigQuery(
                f"{project}:beam.people",
                schema="id:INTEGER,name:STRING",
                method=method,
                custom_gcs_temp_location=f"gs://{prefix}-temp/bq",
                create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
                write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
            )
        )
    elapsed = time.monotonic() - started
    got = sorted((r["id"], r["name"]) for r in client.query_and_wait("SELECT id, name FROM beam.people"))
    assert got == [(r["id"], r["name"]) for r in rows]
    assert elapsed < 30, f"WriteToBigQuery took {elapsed:.1f} s"


# --- one product end to end on the GCP sinks ------------------------------------------------------------


def _publish_and_run(settings: Settings, events: int, seed: int, now: datetime) -> Any:
    from pipelines.demo import simulate_and_publish
    from pipelines.runners.local import run_product

    product = find_product(settings.domains_dir, "customers/users")
    simulate_and_publish(settings, product, events, seed, None, now=now)
    return run_product(settings, product)


def test_a_product_run_on_gcs_and_bigquery_equals_the_local_run(
    bigquery: BigQueryEmulator, gcs: GcsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "emulator-test-masking-key-0123456789abcdef")
    now = datetime.now(UTC)
    local = load_settings(ROOT, overrides={"workspace": str(tmp_path / "local")}, environ={})
    prefix = gcs.bucket_prefix()
    project = bigquery.project()
    cloud = load_settings(
        ROOT,
        overrides={
            "workspace": str(tmp_path / "cloud"),
            "lake_uri": "gs://",
            "lake_bucket_prefix": prefix,
            "warehouse": "bigquery",
            "gcp_project": project,
        },
        environ={},
    )
    started = time.monotonic()
    cloud_summary = _publish_and_run(cloud, 300, 5, now)
    cloud_seconds = time.monotonic() - started
    local_summary = _publish_and_run(local, 300, 5, now)

    assert cloud_summary.events_in == local_summary.events_in >= 300  # the simulator re-delivers some
    assert cloud_summary.dead_letters == local_summary.dead_letters
    assert cloud_summary.outputs["current"] == f"bigquery://{project}.customers.users_current"
    assert cloud_summary.outputs["curated"].startswith(f"gs://{prefix}-curated/customers/users")
    contract = find_product(ROOT / "domains", "customers/users").contract
    columns = [c.name for c in contract.columns] + ["_key", "_lsn"]
    tables = WarehouseTables.of("customers", contract.table_name)
    bq = warehouse_for(cloud)
    assert isinstance(bq, BigQueryWarehouse)
    in_bigquery = _rows(bq.read(tables, "current"), columns)
    in_duckdb = _rows(warehouse_for(local).read(tables, "current"), columns)
    assert len(in_bigquery) == cloud_summary.rows_written["current"] > 0
    assert in_bigquery == in_duckdb  # masked values equal too: same key, same HMAC
    assert bq.count(tables, "changelog") == warehouse_for(local).count(tables, "changelog")
    blobs = [b.name for b in gcs.client().list_blobs(f"{prefix}-curated")]
    assert blobs and all(b.startswith("customers/users/ingest_date=") and b.endswith(".parquet") for b in blobs)
    assert any(b.name.endswith(".jsonl.gz") for b in gcs.client().list_blobs(f"{prefix}-raw"))
    print(f"cloud-sink run: {cloud_seconds:.1f} s")


def _rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows as comparable values (BigQuery and DuckDB may hand back timestamps with different zones)."""
    out = []
    for row in table.select(columns).to_pylist():
        out.append(tuple(v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in row.values()))
    return sorted(out, key=lambda r: str(r[-2]))
