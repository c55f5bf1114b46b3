"""The demo's second source: the customers/users product run from PostgreSQL instead of Cosmos DB, by
switching its contract's `sourceServer` to `app-postgres` and nothing else.

A throwaway local cluster (`LocalPostgres`) gets the users table (scripts/postgres-users-schema.sql) and
a seeded mix of inserts, updates (some of the key) and deletes from the project's simulator; half of it
before the relay first starts (it reaches the bus as the initial snapshot), the rest after (streamed by
logical replication). A copy of the product under the workspace, pointed at the cluster, is relayed and
run; its current-state table is then compared with the PostgreSQL table, masked as the contract says.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshkit.config import Settings, load_settings
from meshkit.contracts.model import Column, Contract
from meshkit.errors import TerminalError
from meshkit.products.model import DataProduct
from meshkit.secrets import POSTGRES_DSN_ENV, POSTGRES_PASSWORD_ENV, POSTGRES_USER_ENV
from monitoring.lineage.emitter import job_name
from pipelines.sources.relay_run import RELAY_STAGE

if TYPE_CHECKING:
    from pipelines.sources.postgres.relay import PgRelayReport

log = logging.getLogger(__name__)

PRODUCT = "customers/users"
SERVER = "app-postgres"
SCHEMA_SQL = Path("scripts") / "postgres-users-schema.sql"
DEMO_DIR = "postgres-demo"
NOTE_SHARE = 0.25  # of inserts that carry a large note, when the table has a notes column
KEY_UPDATE_SHARE = 0.15  # of updates that also change the key (Debezium: a delete and a create downstream)


@dataclass(frozen=True)
class PostgresDemoResult:
    """What the PostgreSQL run did, and whether its current state matched the source table."""

    rows_in_postgres: int
    snapshot_rows: int  # read by the relay's initial snapshot
    changes_relayed: int  # streamed from the replication slot after the snapshot
    relay_runs: int
    events_in: int  # read by the pipeline from the bus
    rows_in_current: int
    equal: bool
    differences: tuple[str, ...]  # a few examples when not equal
    warehouse_path: Path
    seconds: float


# seeded changes on the source table ----------------------------------------------------------------


def simulated_operations(contract: Contract, events: int, seed: int) -> list[dict[str, Any]]:
    """The simulator's change-feed items (all versions and deletes, delivered cleanly) as dicts."""
    import orjson

    from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

    config = SimulationConfig(
        events=events, seed=seed, mode="allVersionsAndDeletes", duplicate_rate=0, out_of_order_rate=0, malformed_rate=0
    )
    return [orjson.loads(item) for item in ChangeFeedSimulator(contract, config).generate().items]


class SourceWriter:
    """Applies simulated changes to the product's table as an application would (one statement each),
    plus key updates and, with `note_bytes`, large (TOASTed) values in a `notes` column, from one seed."""

    def __init__(
        self,
        connect: Callable[[], Any],
        contract: Contract,
        seed: int,
        *,
        table: str = "users",
        note_bytes: int | None = None,
    ) -> None:
        self.connect, self.rng, self.note_bytes = connect, random.Random(seed), note_bytes  # noqa: S311 - seeded data
        self.fields = {c.name: c.source_field for c in contract.source_columns}  # column -> document field
        self.key = contract.primary_key[0]
        self.table = table
        self.renamed: dict[str, str] = {}  # simulated id -> current key after key updates

    def apply(self, ops: list[dict[str, Any]]) -> None:
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            for op in ops:
                self._one(cur, op)

    def _one(self, cur: Any, op: dict[str, Any]) -> None:
        from psycopg2 import sql

        table, key = sql.Identifier(self.table), sql.Identifier(self.key)
        meta = op["metadata"]
        if meta["operationType"] == "delete":
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE {} = %s").format(table, key), (self.renamed.pop(meta["id"], meta["id"]),)
            )
            return
        doc = op["current"]
        values = [doc.get(field) for field in self.fields.values()]
        current = self.renamed.get(doc["id"], doc["id"])
        if meta["operationType"] == "create":
            names = [*self.fields, *(["notes"] if self.note_bytes else [])]
            note = self._note() if self.rng.random() < NOTE_SHARE and self.note_bytes else None
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING").format(
                    table,
                    sql.SQL(", ").join(map(sql.Identifier, names)),
                    sql.SQL(", ").join(sql.Placeholder() * len(names)),
                    key,
                ),
                (*values, *([note] if self.note_bytes else [])),
            )
            return
        others = [name for name in self.fields if name != self.key]  # notes untouched: a TOASTed value stays
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in others)
        by_name = dict(zip(self.fields, values, strict=True))
        cur.execute(
            sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(table, sets, key),
            (*(by_name[name] for name in others), current),
        )
        if self.rng.random() < KEY_UPDATE_SHARE:
            new_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            cur.execute(sql.SQL("UPDATE {} SET {} = %s WHERE {} = %s").format(table, key, key), (new_id, current))
            self.renamed[doc["id"]] = new_id

    def _note(self) -> str:
        return "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz ", k=self.note_bytes or 0))


# the product switched to PostgreSQL -------------------------------------------------------------------


def switch_to_postgres(contract: dict[str, Any], *, host: str, port: int, database: str) -> None:
    """Point the contract document's PostgreSQL server at a database and make it the product's source."""
    server = next(s for s in contract["servers"] if s["server"] == SERVER)
    server.update(host=host, port=port, database=database)
    chosen = next(p for p in contract["customProperties"] if p["property"] == "sourceServer")
    chosen["value"] = SERVER


def _project_copy(settings: Settings, base: Path, port: int, database: str) -> Settings:
    """The users product under `base/root`, switched to the local cluster, with its own workspace."""
    import yaml

    root = base / "root"
    ref = Path(*PRODUCT.split("/"))
    shutil.copytree(settings.domains_dir / ref, root / "domains" / ref)
    path = root / "domains" / ref / "datacontract.yaml"
    contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    switch_to_postgres(contract, host="127.0.0.1", port=port, database=database)
    path.write_text(yaml.safe_dump(contract, sort_keys=False, allow_unicode=True), encoding="utf-8")
    # the local profile with nothing inherited: the copy must not reach the user's bus or warehouse
    return load_settings(root, overrides={"workspace": str(base / "workspace")}, environ={})


@contextlib.contextmanager
def _credentials(dsn: str) -> Iterator[None]:
    """The relay reads its connection from the environment: point it at the cluster for this run only."""
    names = (POSTGRES_DSN_ENV, POSTGRES_USER_ENV, POSTGRES_PASSWORD_ENV)
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ[POSTGRES_DSN_ENV] = dsn
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# the comparison -------------------------------------------------------------------------------------


def _masked(column: Column, value: Any, hash_value: Callable[[Any], str]) -> Any:
    from pipelines.transforms.mask import partial_for

    if value is None or column.masking == "none":
        return value
    if column.masking == "hash":
        return hash_value(value)
    if column.masking == "partial":
        return partial_for(column)(value)
    return None  # redact


def _comparable(value: Any) -> Any:
    """One form for values PostgreSQL and the warehouse type apart (char(n) padding, numeric scale);
    aware timestamps compare equal across time zones as they are."""
    if isinstance(value, str):
        return value.rstrip()
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def compare_current_state(
    source_rows: list[dict[str, Any]], current_rows: list[dict[str, Any]], contract: Contract, key: bytes
) -> tuple[str, ...]:
    """Differences between the source table and the current-state table (empty when equal): the same
    keys, and per row every column's value as the contract masks it."""
    from pipelines.transforms.mask import hmac_masker

    hash_value = hmac_masker(key)
    pk = contract.primary_key[0]
    source = {str(row[pk]): row for row in source_rows}
    current = {str(row[pk]): row for row in current_rows}
    differences = [f"key {k} only in PostgreSQL" for k in sorted(source.keys() - current.keys())[:3]]
    differences += [f"key {k} only in the warehouse" for k in sorted(current.keys() - source.keys())[:3]]
    for k in sorted(source.keys() & current.keys()):
        for column in contract.source_columns:
            expected = _comparable(_masked(column, source[k][column.name], hash_value))
            actual = _comparable(current[k].get(column.name))
            if expected != actual:
                differences.append(f"{k}.{column.name}: warehouse {actual!r}, PostgreSQL {expected!r}")
        if len(differences) >= 6:
            break
    return tuple(differences)


def _table_rows(connect: Callable[[], Any], table: str) -> list[dict[str, Any]]:
    from psycopg2 import sql

    with contextlib.closing(connect()) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# the run --------------------------------------------------------------------------------------------


def run_users_from_postgres(settings: Settings, *, events: int, seed: int) -> PostgresDemoResult | None:
    """customers/users from a local PostgreSQL through the relay and the pipeline, checked against the
    table; None (the reason logged) when PostgreSQL is not installed here. The cluster is always stopped."""
    from pipelines.sources.postgres.local_server import LocalPostgres, available

    reason = available()
    if reason is not None:
        log.info("the PostgreSQL part of the demo is skipped: %s", reason)
        return None
    base = settings.workspace_dir / DEMO_DIR
    shutil.rmtree(base, ignore_errors=True)  # a new cluster each run: old slots and snapshot state are void
    base.mkdir(parents=True)
    clock = time.monotonic()
    server = LocalPostgres()
    try:
        try:
            server.start()
        except Exception as exc:
            raise TerminalError(
                f"the local PostgreSQL cluster for the demo did not start: {str(exc).strip()[-600:]}",
                hint="Check the PostgreSQL installation, or run `meshkit demo --no-postgres` to skip this part.",
            ) from exc
        return _run(settings, server, base, events, seed, clock)
    finally:
        server.stop()


def _run(settings: Settings, server: Any, base: Path, events: int, seed: int, clock: float) -> PostgresDemoResult:
    from meshkit.products.discovery import find_product
    from meshkit.secrets import masking_key
    from pipelines.runners.local import run_product
    from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables
    from pipelines.sources.postgres.source import postgres_source

    server.execute((settings.root / SCHEMA_SQL).read_text(encoding="utf-8"))
    copy = _project_copy(settings, base, server.port, server.execute("SELECT current_database()")[0][0])
    product = find_product(copy.domains_dir, PRODUCT)
    table_name = postgres_source(product).table
    writer = SourceWriter(server.connect, product.contract, seed, table=table_name)
    ops = simulated_operations(product.contract, events, seed)
    half = len(ops) // 2
    with _credentials(server.dsn()):
        writer.apply(ops[:half])
        reports = [_relay(copy, product)]  # creates the slot and publishes the table as a snapshot
        writer.apply(ops[half:])
        reports.append(_relay(copy, product))  # streams what changed since
        source_spec = postgres_source(product)
        if _slot_holds_changes(server, source_spec.slot, source_spec.publication):
            raise TerminalError(
                f"the relay stopped before the last change in replication slot {source_spec.slot}",
                hint="This is a bug in the PostgreSQL relay's catch-up point; run `meshkit demo --no-postgres` "
                "to skip this part.",
            )
    summary = run_product(copy, product, parent=(job_name(product, RELAY_STAGE), reports[-1][1]))
    table = DuckDBWarehouse(copy.warehouse_path).read(WarehouseTables.of(product.domain, product.name), "current")
    current = table.to_pylist()
    source = _table_rows(server.connect, table_name)
    differences = compare_current_state(source, current, product.contract, masking_key(copy))
    return PostgresDemoResult(
        rows_in_postgres=len(source),
        snapshot_rows=sum(report.snapshot_rows for report, _ in reports),
        changes_relayed=sum(report.changes for report, _ in reports),
        relay_runs=len(reports),
        events_in=summary.events_in,
        rows_in_current=len(current),
        equal=not differences and summary.dead_letters == 0,
        differences=differences,
        warehouse_path=copy.warehouse_path,
        seconds=round(time.monotonic() - clock, 1),
    )


def _relay(settings: Settings, product: DataProduct) -> tuple[PgRelayReport, str]:
    """One relay run until it has published everything committed before it started."""
    from pipelines.sources.postgres.relay import PgRelayOptions
    from pipelines.sources.postgres.service import run_pg_relay

    report, summary = run_pg_relay(settings, product, PgRelayOptions(until_caught_up=True, poll_seconds=0.05))
    return report, summary.run_id


def _wait_for_wal(server: Any) -> None:
    """Flush the WAL written so far (the cluster commits asynchronously), so a peek at the slot sees every
    committed change: a commit that assigned a transaction id, with synchronous_commit on, flushes all before it."""
    server.execute("SET synchronous_commit = on; SELECT txid_current()")


def _slot_holds_changes(server: Any, slot: str, publication: str) -> bool:
    """Whether the slot would stream anything now (peeked, not consumed), once the relay released it."""
    _wait_for_wal(server)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = server.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        if not rows or rows[0][0] is None:
            break
        time.sleep(0.02)
    pending = server.execute(
        "SELECT count(*) FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
        "'publication_names', %s) WHERE get_byte(data, 0) IN (73, 85, 68)",  # I(nsert), U(pdate), D(elete)
        (slot, publication),
    )
    return bool(pending[0][0])
