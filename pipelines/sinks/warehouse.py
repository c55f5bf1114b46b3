"""The warehouse on the local profile: a DuckDB file standing in for BigQuery.

Per product, in schema `<domain>`: `<table>_changelog` (every change once per key and LSN),
`<table>_current` (one row per live key, kept by MERGE on key + LSN), `<table>_dead_letters` and
`<table>_duplicates` (audit rows without payload: dead-letter bodies stay in the raw zone).

Tables are created from the first batch's shape (its non-nullable columns, the key and the pipeline's
own, become NOT NULL); later batches go through `plan_evolution` first: new columns are added (old rows
read NULL), breaking changes raise `SchemaEvolutionError` before any row is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from meshkit.contracts.bigquery import TableKind, arrow_schema
from meshkit.names import sql_identifier
from pipelines.sinks.evolution import (
    ColumnChange,
    EvolutionPlan,
    api_fields,
    inferred_key,
    plan_evolution,
)

if TYPE_CHECKING:
    from meshkit.contracts.model import Contract

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path.resolve()), threading.Lock())


@dataclass(frozen=True)
class WarehouseTables:
    """Fully qualified, validated table names of one product."""

    schema: str
    table: str

    @classmethod
    def of(cls, domain: str, table: str) -> WarehouseTables:
        return cls(sql_identifier(domain), sql_identifier(table))

    def name(self, kind: str) -> str:
        return f'"{self.schema}"."{self.table}_{kind}"'


@dataclass(frozen=True)
class MergeResult:
    changelog_rows: int
    replayed: int


class DuckDBWarehouse:
    """Idempotent writes: re-running any batch leaves the tables as they were."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _lock_for(self.path):
            con = duckdb.connect(str(self.path))
            try:
                yield con
            finally:
                con.close()

    def _ensure(self, con: duckdb.DuckDBPyConnection, t: WarehouseTables, kind: str, data: pa.Table) -> None:
        """Create the table from the batch's shape, or evolve it (see `_plan` and `_evolve`)."""
        self._evolve(con, t, kind, data.schema, self._plan(con, t, kind, data.schema))

    def _plan(
        self, con: duckdb.DuckDBPyConnection, t: WarehouseTables, kind: str, wanted: pa.Schema
    ) -> EvolutionPlan | None:
        """None when the table does not exist yet; raises `SchemaEvolutionError` on a breaking change.
        Modes are not compared: a batch does not carry the contract's REQUIRED (see `check_contract`)."""
        current = self._table_schema(con, t, kind)
        if current is None:
            return None
        have, want = api_fields(current), api_fields(wanted)
        plan = plan_evolution(
            have,
            want,
            product=f"{t.schema}/{t.table}",  # domain/table: a batch does not name its product
            table=t.name(kind),
            modes=False,
            current_key=inferred_key(have),
            wanted_key=inferred_key(want),
        )
        plan.raise_if_breaking()
        return plan

    def _evolve(
        self,
        con: duckdb.DuckDBPyConnection,
        t: WarehouseTables,
        kind: str,
        wanted: pa.Schema,
        plan: EvolutionPlan | None,
    ) -> None:
        """CREATE the table (NOT NULL where the batch's field is non-nullable), or ADD its new columns and
        widen its widened ones. DuckDB spells the types: each comes from the batch's Arrow type."""
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{t.schema}"')
        types = _duckdb_types(con, wanted)
        if plan is None:
            columns = ", ".join(f'"{f.name}" {types[f.name]}{"" if f.nullable else " NOT NULL"}' for f in wanted)
            con.execute(f"CREATE TABLE IF NOT EXISTS {t.name(kind)} ({columns})")
            return
        for name in plan.added:
            con.execute(f'ALTER TABLE {t.name(kind)} ADD COLUMN "{name}" {types[name]}')
        for name in plan.widened:
            con.execute(f'ALTER TABLE {t.name(kind)} ALTER COLUMN "{name}" SET DATA TYPE {types[name]}')

    def _table_schema(self, con: duckdb.DuckDBPyConnection, t: WarehouseTables, kind: str) -> pa.Schema | None:
        rows = con.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [t.schema, f"{t.table}_{kind}"],
        ).fetchall()
        if not rows:
            return None
        shape = con.sql(f"SELECT * FROM {t.name(kind)} LIMIT 0").to_arrow_table().schema
        nullable = {name: flag == "YES" for name, flag in rows}
        return pa.schema([f.with_nullable(nullable[f.name]) for f in shape])

    def table_schema(self, t: WarehouseTables, kind: str) -> pa.Schema | None:
        """The Arrow schema of one of the product's tables (NOT NULL columns non-nullable), None if absent."""
        with self.connect() as con:
            return self._table_schema(con, t, kind)

    def check_contract(self, product: str, contract: Contract) -> list[EvolutionPlan]:
        """Pre-flight (`evolution.check_evolution`): the existing changelog and current tables against the
        contract's derived schemas, types and key; and each column the contract requires must hold no
        NULL in the current table (BigQuery refuses NULLABLE -> REQUIRED; here the data decides)."""
        t = WarehouseTables.of(product.split("/", maxsplit=1)[0], contract.table_name)
        plans = []
        with self.connect() as con:
            kinds: tuple[TableKind, ...] = ("changelog", "current")
            for kind in kinds:
                current = self._table_schema(con, t, kind)
                if current is None:
                    continue
                snapshot = "_key" not in current.names  # refined products replace a plain snapshot table
                wanted = arrow_schema(contract, "contract" if snapshot else kind)
                have = api_fields(current)
                plan = plan_evolution(
                    have,
                    wanted,
                    product=product,
                    table=t.name(kind),
                    modes=False,
                    current_key=inferred_key(have),
                    wanted_key=contract.primary_key,
                )
                if kind == "current":
                    plan = self._required_holding_nulls(con, t, kind, plan, wanted, current)
                plan.raise_if_breaking()
                plans.append(plan)
        return plans

    def _required_holding_nulls(
        self,
        con: duckdb.DuckDBPyConnection,
        t: WarehouseTables,
        kind: str,
        plan: EvolutionPlan,
        wanted: pa.Schema,
        current: pa.Schema,
    ) -> EvolutionPlan:
        required = [f.name for f in wanted if not f.nullable and f.name in current.names and f.name[:1] != "_"]
        if not required:
            return plan
        counts = ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in required)
        row = con.execute(f"SELECT {counts} FROM {t.name(kind)}").fetchone() or ()
        extra = tuple(
            ColumnChange(name, "required", f"NULLABLE ({nulls:,} NULL rows)", "REQUIRED", breaking=True)
            for name, nulls in zip(required, row, strict=True)
            if nulls
        )
        return EvolutionPlan(plan.product, plan.table, plan.changes + extra, plan.current_fields, plan.wanted_fields)

    def apply_changes(self, t: WarehouseTables, events: pa.Table) -> MergeResult:
        """Append new (key, LSN) rows to the changelog, then bring affected keys of the current table to
        their newest changelog row: deletes remove the row, older or replayed events never regress it."""
        if events.num_rows == 0:
            return MergeResult(0, 0)
        changelog, current = t.name("changelog"), t.name("current")
        data_columns = [n for n in events.column_names if n not in ("_op", "_partition", "_offset", "_run_id")]
        with self.connect() as con:
            # both tables are checked before anything changes: a refused batch leaves them as they were
            current_shape = events.select(data_columns).schema
            plans = {
                "changelog": self._plan(con, t, "changelog", events.schema),
                "current": self._plan(con, t, "current", current_shape),
            }
            con.register("_batch", events)
            con.execute("BEGIN TRANSACTION")
            try:
                self._evolve(con, t, "changelog", events.schema, plans["changelog"])
                self._evolve(con, t, "current", current_shape, plans["current"])
                names = ", ".join(f'"{c}"' for c in events.column_names)
                row = con.execute(
                    f"INSERT INTO {changelog} ({names}) SELECT {names} FROM _batch b "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {changelog} c WHERE c._key = b._key AND c._lsn = b._lsn)"
                ).fetchone()
                inserted = int(row[0]) if row else 0  # DuckDB answers an INSERT with its row count
                self._attach_previous_images(con, t, [c for c in data_columns if not c.startswith("_")])
                cols = ", ".join(f'"{c}"' for c in data_columns)
                updates = ", ".join(f'"{c}" = s."{c}"' for c in data_columns)
                values = ", ".join(f's."{c}"' for c in data_columns)
                con.execute(
                    f"""
                    MERGE INTO {current} AS t
                    USING (
                        SELECT * FROM {changelog}
                        WHERE _key IN (SELECT DISTINCT _key FROM _batch)
                        QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC) = 1
                    ) AS s
                    ON t._key = s._key
                    WHEN MATCHED AND s._op = 'delete' THEN DELETE
                    WHEN MATCHED AND s._lsn > t._lsn THEN UPDATE SET {updates}
                    WHEN NOT MATCHED AND s._op <> 'delete' THEN INSERT ({cols}) VALUES ({values})
                    """
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("_batch")
        return MergeResult(inserted, events.num_rows - inserted)

    def _attach_previous_images(self, con: duckdb.DuckDBPyConnection, t: WarehouseTables, columns: list[str]) -> None:
        """A delete from the all-versions-and-deletes feed carries its key only; give its changelog row
        the image it deleted: the newest earlier non-delete changelog row of the key (it may be in this
        same batch), else the current-state row (history pruned from the changelog). Runs before the
        MERGE removes that row; idempotent (only null columns are filled)."""
        if not columns:
            return
        changelog, current = t.name("changelog"), t.name("current")
        fill = ", ".join(f'"{c}" = COALESCE(d."{c}", p."{c}")' for c in columns)
        picked = ", ".join(f'x."{c}"' for c in columns)
        for source, older in ((changelog, "x._lsn < b._lsn AND x._op <> 'delete'"), (current, "x._lsn < b._lsn")):
            con.execute(
                f"""
                UPDATE {changelog} AS d SET {fill}
                FROM (
                    SELECT b._key AS _dkey, b._lsn AS _dlsn, {picked}
                    FROM _batch b JOIN {source} x ON x._key = b._key AND {older}
                    WHERE b._op = 'delete'
                    QUALIFY row_number() OVER (PARTITION BY b._key, b._lsn ORDER BY x._lsn DESC) = 1
                ) AS p
                WHERE d._key = p._dkey AND d._lsn = p._dlsn AND d._op = 'delete'
                """
            )

    def unseen(self, t: WarehouseTables, events: pa.Table) -> pa.Table:
        """The events whose (key, LSN) the changelog does not hold yet: what a replay must still write."""
        if events.num_rows == 0 or not self.exists(t, "changelog"):
            return events
        probe = pa.table(
            {"_row": pa.array(range(events.num_rows), pa.int64()), "_key": events["_key"], "_lsn": events["_lsn"]}
        )
        with self.connect() as con:
            con.register("_probe", probe)
            seen = con.execute(
                f"SELECT p._row FROM _probe p WHERE EXISTS "
                f"(SELECT 1 FROM {t.name('changelog')} c WHERE c._key = p._key AND c._lsn = p._lsn)"
            ).fetchall()
            con.unregister("_probe")
        if not seen:
            return events
        keep = pc.invert(pc.is_in(probe["_row"], value_set=pa.array([r[0] for r in seen], pa.int64())))
        return events.filter(keep)

    def append(self, t: WarehouseTables, kind: str, rows: pa.Table) -> int:
        """Append audit rows (dead letters, duplicates)."""
        if rows.num_rows == 0:
            return 0
        with self.connect() as con:
            self._ensure(con, t, kind, rows)
            con.register("_rows", rows)
            names = ", ".join(f'"{c}"' for c in rows.column_names)
            con.execute(f"INSERT INTO {t.name(kind)} ({names}) SELECT {names} FROM _rows")
            con.unregister("_rows")
        return rows.num_rows

    def replace(self, t: WarehouseTables, kind: str, rows: pa.Table) -> int:
        """Replace a table atomically with `rows` (refined products' snapshots)."""
        with self.connect() as con:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{t.schema}"')
            con.register("_rows", rows)
            con.execute(f"CREATE OR REPLACE TABLE {t.name(kind)} AS SELECT * FROM _rows")
            con.unregister("_rows")
        return rows.num_rows

    def read(self, t: WarehouseTables, kind: str) -> pa.Table:
        with self.connect() as con:
            return con.sql(f"SELECT * FROM {t.name(kind)}").to_arrow_table()

    def count(self, t: WarehouseTables, kind: str) -> int:
        """Rows in one of the product's tables (0 when it does not exist yet)."""
        if not self.exists(t, kind):
            return 0
        with self.connect() as con:
            return _count(con, t.name(kind))

    def exists(self, t: WarehouseTables, kind: str) -> bool:
        with self.connect() as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [t.schema, f"{t.table}_{kind}"],
            ).fetchone()
        return bool(found and found[0])


def _duckdb_types(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> dict[str, str]:
    """DuckDB's own spelling of each Arrow type (so no second type mapping lives here)."""
    con.register("_shape", schema.empty_table())
    try:
        return {str(r[0]): str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM _shape").fetchall()}
    finally:
        con.unregister("_shape")


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
