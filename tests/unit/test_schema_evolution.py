"""Schema evolution: additive contract changes reach the tables with no data loss; breaking ones are
refused before anything is written, naming the column."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from meshkit.config import Settings, load_settings
from meshkit.contracts.bigquery import arrow_schema, bigquery_schema
from meshkit.contracts.model import load_contract
from pipelines.sinks.evolution import (
    SchemaEvolutionError,
    bigquery_schema_fields,
    check_evolution,
    plan_evolution,
)
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables

ROOT = Path(__file__).resolve().parents[2]
T = WarehouseTables.of("customers", "users")


def schema(*fields: pa.Field) -> pa.Schema:
    return pa.schema(fields)


def one_change(before: pa.Field | None, after: pa.Field | None) -> tuple[str, bool] | None:
    plan = plan_evolution(schema(*[before] if before else []), schema(*[after] if after else []))
    assert len(plan.changes) <= 1, plan.changes
    return (plan.changes[0].kind, plan.changes[0].breaking) if plan.changes else None


F = pa.field
RULES = [
    (F("a", pa.int64()), F("a", pa.int64()), None),
    (None, F("a", pa.string()), ("added", False)),
    (None, F("a", pa.string(), nullable=False), ("required", True)),
    (F("a", pa.string()), None, ("removed", True)),
    (F("a", pa.string(), nullable=False), F("a", pa.string()), ("relaxed", False)),
    (F("a", pa.string()), F("a", pa.string(), nullable=False), ("required", True)),
    (F("a", pa.int64()), F("a", pa.decimal128(38, 9)), ("widened", False)),
    (F("a", pa.int64()), F("a", pa.float64()), ("widened", False)),
    (F("a", pa.int64()), F("a", pa.decimal128(18, 2)), ("type", True)),  # 16 integer digits < INT64's 19
    (F("a", pa.decimal128(18, 2)), F("a", pa.decimal128(20, 2)), ("widened", False)),
    (F("a", pa.decimal128(18, 2)), F("a", pa.decimal256(40, 4)), ("widened", False)),
    (F("a", pa.decimal128(18, 2)), F("a", pa.decimal128(18, 4)), ("type", True)),  # fewer integer digits
    (F("a", pa.decimal128(18, 2)), F("a", pa.decimal128(18, 0)), ("type", True)),  # scale narrowed
    (F("a", pa.decimal128(18, 2)), F("a", pa.int64()), ("type", True)),
    (F("a", pa.decimal256(40, 2)), F("a", pa.decimal128(38, 2)), ("type", True)),
    (F("a", pa.decimal128(18, 2)), F("a", pa.float64()), ("widened", False)),
    (F("a", pa.float64()), F("a", pa.decimal128(38, 9)), ("type", True)),
    (F("a", pa.string()), F("a", pa.int64()), ("type", True)),
    (F("a", pa.int64()), F("a", pa.string()), ("type", True)),
    (F("a", pa.int32()), F("a", pa.int64()), None),  # both INT64
    (F("a", pa.timestamp("us", tz="UTC")), F("a", pa.timestamp("us")), ("type", True)),
    (F("a", pa.date32()), F("a", pa.timestamp("us", tz="UTC")), ("type", True)),
    (F("a", pa.list_(pa.string())), F("a", pa.string()), ("type", True)),
    (F("a", pa.string()), F("a", pa.null()), None),  # an all-NULL batch column fits any type
]


@pytest.mark.parametrize(("before", "after", "expected"), RULES)
def test_evolution_rules(before: pa.Field | None, after: pa.Field | None, expected: tuple[str, bool] | None) -> None:
    assert one_change(before, after) == expected


def test_nested_records_evolve_field_by_field() -> None:
    old = schema(F("addr", pa.struct([F("city", pa.string())])))
    plan = plan_evolution(old, schema(F("addr", pa.struct([F("city", pa.string()), F("zip", pa.string())]))))
    assert [(c.column, c.kind, c.breaking) for c in plan.changes] == [("addr.zip", "added", False)]
    plan = plan_evolution(old, schema(F("addr", pa.struct([F("zip", pa.string())]))))
    assert {(c.column, c.kind) for c in plan.breaking} == {("addr.city", "removed")}


def test_the_error_names_product_table_column_change_and_fix() -> None:
    plan = plan_evolution(
        schema(F("amount", pa.decimal128(18, 2)), F("phone", pa.string())),
        schema(F("amount", pa.int64())),
        product="payments/transactions",
        table="payments.transactions_current",
    )
    with pytest.raises(SchemaEvolutionError) as caught:
        plan.raise_if_breaking()
    message = caught.value.message
    assert "product payments/transactions: table payments.transactions_current" in message
    assert "column `amount` changed type NUMERIC(18, 2) NULLABLE -> INT64 NULLABLE" in message
    assert "column `phone` was removed" in message
    assert "new major version of the contract with a new table" in message
    assert {c.column for c in caught.value.changes} == {"amount", "phone"}


def test_a_live_bigquery_table_is_compared_through_the_same_mapping(tmp_path: Path) -> None:
    from google.cloud.bigquery import SchemaField

    users = load_contract(ROOT / "domains/customers/users/datacontract.yaml")
    live = bigquery_schema_fields(users, kind="current", policy_taxonomy="projects/p/locations/l/taxonomies/1")
    assert live[9] == SchemaField(
        "credit_limit", "NUMERIC", mode="REQUIRED", description="Credit limit (BRL)", precision=18, scale=2
    )
    wanted = [*bigquery_schema(users, policy_taxonomy=None, kind="current")]
    wanted.insert(5, {"name": "nickname", "type": "STRING", "mode": "NULLABLE"})
    plan = plan_evolution(live, wanted, product="customers/users", table="users_current")
    assert plan.added == ("nickname",) and not plan.breaking
    updated = bigquery_schema_fields(plan)
    assert [f.name for f in updated] == [f.name for f in live] + ["nickname"]  # additions go last
    assert updated[2].policy_tags == live[2].policy_tags  # existing fields are kept as they are
    # the same live schema against an Arrow schema from the contract: nothing to do
    assert not plan_evolution(live, arrow_schema(users, "current")).changes
    narrowed = [dict(f, type="INT64") if f["name"] == "credit_limit" else f for f in wanted]
    with pytest.raises(SchemaEvolutionError, match="column `credit_limit` changed type NUMERIC"):
        bigquery_schema_fields(plan_evolution(live, narrowed))


# -- DuckDB: the local warehouse applies plans through real apply_changes -------------------------------------------


def batch(
    rows: list[dict[str, Any]],
    extra: dict[str, pa.DataType] | None = None,
    drop: tuple[str, ...] = (),
    key: str = "user_id",
    types: dict[str, pa.DataType] | None = None,
) -> pa.Table:
    """Change events shaped as the pipeline writes them: key column non-nullable, then the meta columns."""
    columns: dict[str, pa.DataType] = {
        "user_id": pa.string(),
        "name": pa.string(),
        "credit_limit": pa.decimal128(18, 2),
        **(extra or {}),
        **(types or {}),
    }
    fields = [F(n, t, nullable=n != key) for n, t in columns.items() if n not in drop]
    fields += [
        F("_key", pa.string(), nullable=False),
        F("_lsn", pa.int64(), nullable=False),
        F("_op", pa.string(), nullable=False),
        F("_partition", pa.int32(), nullable=False),
        F("_offset", pa.int64(), nullable=False),
    ]
    full = [{"_partition": 0, "_offset": i, "_op": "create", **r} for i, r in enumerate(rows)]
    for r in full:
        r["_key"] = r[key]
    return pa.Table.from_pylist(full, schema=pa.schema(fields))


def snapshot(wh: DuckDBWarehouse) -> dict[str, Any]:
    return {
        kind: (wh.table_schema(T, kind), wh.read(T, kind).sort_by("_lsn").to_pylist())
        for kind in ("changelog", "current")
    }


ROW1 = {"user_id": "u1", "name": "Ana", "credit_limit": Decimal("10.50"), "_lsn": 1}


def test_adding_a_nullable_column_keeps_old_rows_as_null(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.apply_changes(T, batch([ROW1]))
    result = wh.apply_changes(
        T,
        batch(
            [{"user_id": "u2", "name": "Bia", "credit_limit": Decimal(1), "nickname": "bibi", "_lsn": 2}],
            extra={"nickname": pa.string()},
        ),
    )
    assert result.changelog_rows == 1
    for kind in ("changelog", "current"):
        rows = {r["user_id"]: r for r in wh.read(T, kind).to_pylist()}
        assert rows["u1"]["nickname"] is None and rows["u2"]["nickname"] == "bibi", kind
        assert rows["u1"]["name"] == "Ana"  # existing data untouched
    # a later batch without the new column's values still lines up by name
    wh.apply_changes(T, batch([{**ROW1, "name": "Ana Maria", "_lsn": 3}], extra={"nickname": pa.string()}))
    assert {r["user_id"]: r["name"] for r in wh.read(T, "current").to_pylist()} == {"u1": "Ana Maria", "u2": "Bia"}


def test_a_widened_type_is_applied(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.apply_changes(T, batch([ROW1]))
    wide = {"credit_limit": pa.decimal128(20, 2)}
    wh.apply_changes(
        T, batch([{**ROW1, "user_id": "u2", "credit_limit": Decimal("123456789012345678.25"), "_lsn": 2}], types=wide)
    )
    assert wh.table_schema(T, "current").field("credit_limit").type == pa.decimal128(20, 2)


BREAKING = {
    "removed": ({"drop": ("name",)}, "column `name` was removed"),
    "money narrowed": ({"types": {"credit_limit": pa.int64()}}, "column `credit_limit` changed type NUMERIC(18, 2)"),
    "string to int": ({"types": {"name": pa.int64()}}, "column `name` changed type STRING NULLABLE -> INT64"),
    "key changed": ({"key": "name"}, "primary key changed (user_id -> name)"),
}


@pytest.mark.parametrize("case", sorted(BREAKING))
def test_breaking_batches_are_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.apply_changes(T, batch([ROW1]))
    before = snapshot(wh)
    shape, message = BREAKING[case]
    row = {"user_id": "u2", "name": 7 if case == "string to int" else "Bia", "credit_limit": 5, "_lsn": 2}
    if case == "removed":
        row.pop("name")
    with pytest.raises(SchemaEvolutionError, match="Nothing was written") as caught:
        wh.apply_changes(T, batch([row], **shape))
    assert message in caught.value.message
    assert snapshot(wh) == before


# -- pre-flight: the contract against the existing tables --------------------------------------------------------


def workspace(tmp_path: Path) -> tuple[Settings, Path]:
    root = tmp_path / "root"
    shutil.copytree(ROOT / "domains" / "customers" / "users", root / "domains" / "customers" / "users")
    settings = load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    return settings, root / "domains" / "customers" / "users" / "datacontract.yaml"


def users_row(lsn: int, **values: Any) -> dict[str, Any]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = {
        "user_id": f"u{lsn}",
        "full_name": "A***",
        "cpf": "ab12",
        "email": "cd34",
        "phone": None,
        "birth_date": "1990-**-**",
        "state": "SP",
        "segment": "retail",
        "kyc_status": "approved",
        "credit_limit": Decimal("100.00"),
        "created_at": now,
        "updated_at": now,
        "_lsn": lsn,
        "_op": "create",
        "_source_ts": now,
        "_partition": 0,
        "_offset": lsn,
        "_ingested_at": now,
        "_run_id": "r",
    }
    row["_key"] = row["user_id"]
    return {**row, **values}


def edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change({p["name"]: p for p in data["schema"][0]["properties"]}, data["schema"][0]["properties"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def seed(settings: Settings, contract_path: Path) -> DuckDBWarehouse:
    contract = load_contract(contract_path)
    events = pa.Table.from_pylist([users_row(1), users_row(2)], schema=arrow_schema(contract, "changelog"))
    wh = DuckDBWarehouse(settings.warehouse_path)
    wh.apply_changes(T, events)
    return wh


def test_preflight_passes_an_unchanged_contract_and_an_added_nullable_column(tmp_path: Path) -> None:
    settings, path = workspace(tmp_path)
    assert check_evolution(settings, "customers/users") == []  # no warehouse yet
    seed(settings, path)
    assert all(not p.changes for p in check_evolution(settings, "customers/users"))
    edit(path, lambda _, props: props.append({"name": "nickname", "logicalType": "string", "required": False}))
    plans = check_evolution(settings, "customers/users")
    assert [p.added for p in plans] == [("nickname",), ("nickname",)]


PREFLIGHT = {
    "removed": (lambda by, props: props.remove(by["segment"]), "column `segment` was removed"),
    "narrowed": (
        lambda by, _: by["credit_limit"].update(logicalType="integer", physicalType="INT64"),
        "column `credit_limit` changed type NUMERIC(18, 2)",
    ),
    "string to int": (
        lambda by, _: by["state"].update(logicalType="integer", physicalType="INT64"),
        "column `state` changed type STRING NULLABLE -> INT64",
    ),
    "key": (
        lambda by, _: (by["user_id"].update(primaryKey=False), by["email"].update(primaryKey=True)),
        "primary key changed (user_id -> email)",
    ),
    "required": (lambda by, _: by["phone"].update(required=True), "column `phone` became required"),
}


@pytest.mark.parametrize("case", sorted(PREFLIGHT))
def test_preflight_refuses_breaking_contract_changes(tmp_path: Path, case: str) -> None:
    settings, path = workspace(tmp_path)
    wh = seed(settings, path)
    before = snapshot(wh)
    change, message = PREFLIGHT[case]
    edit(path, change)
    with pytest.raises(SchemaEvolutionError) as caught:
        check_evolution(settings, "customers/users")
    assert message in caught.value.message
    assert "customers/users" in caught.value.message
    assert snapshot(wh) == before


# -- curated Parquet: files of both shapes read together by name ---------------------------------------------------


def test_old_and_new_parquet_files_union_by_name(tmp_path: Path) -> None:
    pq.write_table(pa.table({"user_id": ["u1"], "name": ["Ana"]}), tmp_path / "part-old.parquet")
    pq.write_table(pa.table({"user_id": ["u2"], "name": ["Bia"], "nickname": ["bibi"]}), tmp_path / "part-new.parquet")
    with duckdb.connect() as con:
        rows = con.sql(
            f"SELECT user_id, nickname FROM read_parquet('{tmp_path}/*.parquet', union_by_name = true) ORDER BY user_id"
        ).fetchall()
    assert rows == [("u1", None), ("u2", "bibi")]


def test_a_warehouse_that_cannot_check_is_a_named_no_op(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Unchecked:
        pass

    settings, _ = workspace(tmp_path)
    with caplog.at_level("WARNING"):
        assert check_evolution(settings, "customers/users", warehouse=Unchecked()) == []
    assert "schema pre-flight skipped: Unchecked has no check_contract" in caplog.text
