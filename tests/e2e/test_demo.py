"""The demo on a small seeded input: the mesh end to end, checked for meaning."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from meshkit.config import Settings, load_settings
from meshkit.contracts.model import Contract
from meshkit.products.discovery import find_product
from meshkit.secrets import masking_key
from pipelines.demo import DemoResult, run_demo
from pipelines.transforms.mask import hmac_hex, partial_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EVENTS, SEED = 600, 11
CDC = ("customers/users", "payments/transactions")
TABLES = {"customers/users": "customers.users", "payments/transactions": "payments.transactions"}


@dataclass(frozen=True)
class Mesh:
    settings: Settings
    first: DemoResult
    second: DemoResult
    state_after_first: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Mesh:
    """The demo twice over one workspace, with the same seed (so the second run re-delivers everything)."""
    workspace = tmp_path_factory.mktemp("mesh")
    settings = load_settings(ROOT, overrides={"workspace": str(workspace)}, environ={})
    first = run_demo(settings, events=EVENTS, seed=SEED)
    state = current_state(settings)
    second = run_demo(settings, events=EVENTS, seed=SEED)
    return Mesh(settings, first, second, state)


def query(settings: Settings, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.sql(sql).to_arrow_table().to_pylist()
    finally:
        con.close()


def current_state(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    tables = {**TABLES, "risk/customer-exposure": "risk.customer_exposure"}
    out = {}
    for ref, table in tables.items():
        contract = find_product(settings.domains_dir, ref).contract
        cols = ", ".join(c.name for c in contract.columns)
        out[ref] = query(settings, f"SELECT {cols} FROM {table}_current ORDER BY 1")
    return out


def expected_row(contract: Contract, row: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The simulator's final row as the warehouse must hold it: masked per contract, derived added."""
    out = {}
    for column in contract.columns:
        if column.derived:
            continue
        value = row.get(column.name)
        if value is not None and column.masking == "hash":
            value = hmac_hex(key, value)
        elif value is not None and column.masking == "partial":
            value = partial_for(column)(value)
        elif column.masking == "redact":
            value = None
        out[column.name] = value
    if "amount" in row:  # payments/transactions derives amount_band from amount
        amount = row["amount"]
        out["amount_band"] = "small" if amount < Decimal(100) else "medium" if amount < Decimal(5000) else "large"
    return out


@pytest.mark.parametrize("ref", CDC)
def test_current_state_equals_the_source(mesh: Mesh, ref: str) -> None:
    settings, first = mesh.settings, mesh.first
    feed = first.feeds[ref]
    contract = find_product(settings.domains_dir, ref).contract
    key = masking_key(settings)
    rows = {r["_key"]: r for r in query(settings, f"SELECT * FROM {TABLES[ref]}_current")}
    assert set(rows) == set(feed.final_state), "deleted keys must be absent, every live key present"
    assert feed.stats.operations.get("delete", 0) > 0 or ref != "customers/users"
    for pk, source_row in feed.final_state.items():
        expected = expected_row(contract, source_row, key)
        actual = {name: rows[pk][name] for name in expected}
        assert actual == expected, pk


@pytest.mark.parametrize("ref", CDC)
def test_every_event_is_accounted_for(mesh: Mesh, ref: str) -> None:
    settings, first = mesh.settings, mesh.first
    run = next(s for s in first.summaries if s.product == ref)
    table = TABLES[ref]
    changelog = query(settings, f"SELECT count(*) AS n FROM {table}_changelog WHERE _run_id = '{run.run_id}'")[0]["n"]
    duplicates = query(settings, f"SELECT count(*) AS n FROM {table}_duplicates WHERE run_id = '{run.run_id}'")[0]["n"]
    dlq_dir = settings.lake_dir / f"{settings.lake_bucket_prefix}-raw" / ref / "_dead_letters"
    dead_letters = [
        json.loads(line) for p in dlq_dir.rglob("*.jsonl.gz") for line in gzip.decompress(p.read_bytes()).splitlines()
    ]
    dead = sum(1 for d in dead_letters if d["run_id"] == run.run_id)
    published = first.published[ref]
    assert published == len(first.feeds[ref].items)
    assert run.events_in == published
    assert published == changelog + dead + duplicates
    assert dead == sum(first.feeds[ref].stats.malformed.values()) == run.dead_letters
    assert sum(run.dead_letters_by_reason.values()) == dead


@pytest.mark.parametrize("ref", CDC)
def test_changelog_has_no_duplicate_key_and_lsn(mesh: Mesh, ref: str) -> None:
    settings = mesh.settings
    dupes = query(
        settings, f"SELECT _key, _lsn, count(*) AS n FROM {TABLES[ref]}_changelog GROUP BY ALL HAVING count(*) > 1"
    )
    assert dupes == []


def test_no_personal_value_outside_the_raw_zone(mesh: Mesh) -> None:
    settings, first = mesh.settings, mesh.first
    personal = set().union(*(first.feeds[ref].personal_values for ref in CDC))
    assert len(personal) > 100
    leaks: list[str] = []
    raw_zone = f"{settings.lake_bucket_prefix}-raw"
    for path in settings.workspace_dir.rglob("*"):
        rel = path.relative_to(settings.workspace_dir)
        if not path.is_file() or rel.parts[0] in {"eventlog", "secrets"} or raw_zone in rel.parts:
            continue  # the bus and the raw zone hold events as received, by design
        if path.suffix == ".parquet":
            values = {str(v) for col in pq.read_table(path).columns for v in col.to_pylist() if v is not None}
            leaks += [f"{rel}: {v}" for v in values & personal]
        elif path.suffix == ".duckdb":
            for t in query(settings, "SELECT table_schema, table_name FROM information_schema.tables"):
                for row in query(settings, f'SELECT * FROM "{t["table_schema"]}"."{t["table_name"]}"'):
                    leaks += [f"{t['table_name']}: {v}" for v in row.values() if str(v) in personal]
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
            leaks += [f"{rel}: {v}" for v in personal if v in text]
    assert leaks == []


def test_a_complete_lineage_event_for_every_run(mesh: Mesh) -> None:
    settings, first, second = mesh.settings, mesh.first, mesh.second
    events = [json.loads(line) for line in settings.lineage_path.read_text().splitlines()]
    completed = {(e["run"]["runId"], e["job"]["name"]) for e in events if e["eventType"] == "COMPLETE"}
    for summary in [*first.summaries, *second.summaries]:
        domain, product = summary.product.split("/")
        assert (summary.run_id, f"{domain}.{product}.pipeline") in completed


def test_running_the_demo_twice_gives_the_same_current_state(mesh: Mesh) -> None:
    settings, second = mesh.settings, mesh.second
    assert current_state(settings) == mesh.state_after_first
    for summary in second.summaries:
        if summary.product in CDC:
            assert summary.rows_written.get("changelog", 0) == 0, "a re-delivery must not add changelog rows"
            assert summary.events_in == summary.replayed + summary.dead_letters + summary.duplicates_dropped


@pytest.mark.parametrize("ref", CDC)
def test_the_curated_zone_holds_each_change_once_after_a_replay(mesh: Mesh, ref: str) -> None:
    settings = mesh.settings
    curated = settings.lake_dir / f"{settings.lake_bucket_prefix}-curated" / ref
    pairs = [
        pair
        for path in curated.rglob("*.parquet")
        for pair in zip(*pq.read_table(path, columns=["_key", "_lsn"]).to_pydict().values(), strict=True)
    ]
    changelog = query(settings, f"SELECT count(*) AS n FROM {TABLES[ref]}_changelog")[0]["n"]
    assert len(pairs) == len(set(pairs)) == changelog


def test_refined_product_joins_its_inputs(mesh: Mesh) -> None:
    settings = mesh.settings
    exposure = query(settings, "SELECT * FROM risk.customer_exposure_current")
    transactions = query(settings, "SELECT customer_id FROM payments.transactions_current")
    assert exposure and sum(r["transaction_count"] for r in exposure) == len(transactions)
    users = {r["user_id"] for r in query(settings, "SELECT user_id FROM customers.users_current")}
    known = [r for r in exposure if r["customer_id"] in users]
    assert known and all(r["segment"] is not None for r in known)


@pytest.mark.parametrize("ref", CDC)
def test_the_relay_records_its_own_figures(mesh: Mesh, ref: str) -> None:
    from monitoring.metrics.store import MetricsStore

    relays = MetricsStore(mesh.settings.metrics_path).runs(ref, stage="relay")
    assert len(relays) == 2  # one per demo run
    newest = relays[0]
    assert newest.events_in == newest.rows_written["bus"] == mesh.second.published[ref]
    assert newest.request_units and newest.request_units >= newest.events_in  # at least 1 RU per item read
