"""PostgreSQL change data capture against a real PostgreSQL 15 (`postgres_service`): pgoutput decoded from
a live slot; the server checks; snapshot + stream handover under concurrent writes; the relay as a real
process killed with SIGKILL at seeded points (snapshot and stream phases) and restarted, with the
slot's confirmed flush LSN checked against what reached the bus after every kill; the WAL-retention
warning and metric; and the current-state table against the source table (needs the pipeline's
Debezium decoding seam).

The `users` table comes from scripts/postgres-users-schema.sql plus a `notes` column for large
(TOASTed) values; the changes come from the project's simulator (seeded) plus key updates.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from conftest import ROOT
from postgres_service import PostgresServer, postgres_server  # noqa: F401

from meshkit.config import Settings, load_settings
from meshkit.products.discovery import find_product
from pipelines import demo_postgres
from pipelines.sources.postgres.pgoutput import Delete, Insert, PgOutputDecoder, Update
from pipelines.sources.postgres.replication import parse_lsn
from pipelines.transports.local_log import LocalEventLog

pytestmark = pytest.mark.emulator
PRODUCT = "customers/users"
TOPIC = "customers.users"
SCHEMA_SQL = ROOT / "scripts" / "postgres-users-schema.sql"
NOTE_BYTES = 200_000  # well past the 2 kB TOAST threshold: stored out of line
COLUMNS = ("user_id", "full_name", "cpf", "email", "phone", "birth_date", "state", "segment", "kyc_status",
           "credit_limit", "created_at", "updated_at")  # fmt: skip
CRASH_POINTS = ("after-read", "mid-publish", "after-publish", "after-checkpoint")


# a product whose contract reads the users table of one database ----------------------------------


@dataclass
class CdcCase:
    server: PostgresServer
    database: str
    slot: str
    root: Path
    workspace: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHKIT_", "PG"))}
        env.update(
            MESHKIT_WORKSPACE=str(self.workspace),
            MESHKIT_POSTGRES_USER="meshkit_cdc",
            MESHKIT_BATCH_SIZE="40",  # small batches: many read/publish/confirm steps to crash in
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def settings(self, **overrides: Any) -> Settings:
        environ = {k: v for k, v in self.env.items() if k.startswith("MESHKIT_")}
        return load_settings(self.root, overrides=overrides, environ=environ)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.server.execute(statement, params, database=self.database)

    def relay(
        self, *args: str, fault: str | None = None, timeout: float = 120, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"MESHKIT_FAULT_POINT": fault} if fault else {}), **extra}
        return subprocess.run(
            [sys.executable, "-m", "meshkit", "--root", str(self.root), "relay", PRODUCT,
             "--poll-seconds", "0.05", *args],
            env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
        )  # fmt: skip

    def slot_row(self) -> tuple[Any, ...] | None:
        rows = self.sql(
            "SELECT active_pid, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        )
        return rows[0] if rows else None

    def wait_slot_released(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            row = self.slot_row()
            if row is None or row[0] is None:
                return
            time.sleep(0.05)
        pytest.fail(f"slot {self.slot} still active after the relay exited")


def _switch_server(contract: dict[str, Any], port: int, database: str, slot: str) -> None:
    """Item 5: the users product switched to its PostgreSQL server (`sourceServer: app-postgres`),
    pointed at the throwaway cluster."""
    server = next(s for s in contract["servers"] if s["server"] == "app-postgres")
    server.update(host="127.0.0.1", port=port, database=database)
    server["customProperties"].append({"property": "slot", "value": slot})
    chosen = next(p for p in contract["customProperties"] if p["property"] == "sourceServer")
    chosen["value"] = "app-postgres"
    notes = {
        "name": "notes",
        "logicalType": "string",
        "physicalType": "STRING",
        "required": False,
        "classification": "internal",
        "description": "Free text; large values are TOASTed in PostgreSQL.",
    }
    contract["schema"][0]["properties"].append(notes)


@pytest.fixture
def case(postgres_server: PostgresServer, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CdcCase]:  # noqa: F811
    database = f"t_{uuid.uuid4().hex[:10]}"
    postgres_server.execute(f"CREATE DATABASE {database}", database="postgres")
    root = tmp_path / "root"
    shutil.copytree(ROOT / "domains" / "customers" / "users", root / "domains" / "customers" / "users")
    contract_path = root / "domains" / "customers" / "users" / "datacontract.yaml"
    contract = yaml.safe_load(contract_path.read_text())
    slot = f"meshkit_{database}"
    _switch_server(contract, postgres_server.port, database, slot)
    contract_path.write_text(yaml.safe_dump(contract, sort_keys=False, allow_unicode=True))
    c = CdcCase(postgres_server, database, slot, root, tmp_path / "ws")
    c.sql(SCHEMA_SQL.read_text())
    c.sql("ALTER TABLE users ADD COLUMN notes text; ALTER TABLE users ALTER COLUMN notes SET STORAGE EXTERNAL")
    yield c
    with contextlib.suppress(Exception):
        postgres_server.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                "WHERE slot_name LIKE %s AND active_pid IS NULL",
                                (f"%{database}%",), database="postgres")  # fmt: skip
    with contextlib.suppress(Exception):
        postgres_server.execute(f"DROP DATABASE {database} WITH (FORCE)", database="postgres")


# seeded source changes --------------------------------------------------------------------------


def simulated_operations(events: int, seed: int) -> list[dict[str, Any]]:
    return demo_postgres.simulated_operations(find_product(ROOT / "domains", PRODUCT).contract, events, seed)


class SourceWriter(demo_postgres.SourceWriter):
    """The demo's writer (pipelines/demo_postgres.py) on one case's database, with TOASTed notes."""

    def __init__(self, case: CdcCase, seed: int) -> None:
        contract = find_product(ROOT / "domains", PRODUCT).contract
        super().__init__(lambda: case.server.connect(case.database), contract, seed, note_bytes=NOTE_BYTES)


# what the table holds, what the bus holds -------------------------------------------------------


def table_state(case: CdcCase) -> dict[str, dict[str, Any]]:
    from pipelines.sources.postgres.envelope import dumps
    from pipelines.sources.postgres.replication import check_server
    from pipelines.sources.postgres.source import postgres_source
    from pipelines.sources.postgres.values import convert

    product = find_product(case.root / "domains", PRODUCT)
    source = postgres_source(product)
    with contextlib.closing(case.server.connect(case.database)) as conn:
        conn.cursor().execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3")
        table = check_server(conn, source)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(c.name + '::text' for c in table.columns)} FROM users")
            rows = cur.fetchall()
    state = {}
    for values in rows:
        row = {c.name: convert(c.type_oid, v) for c, v in zip(table.columns, values, strict=True)}
        state[row["user_id"]] = orjson.loads(dumps(row))  # the relay's own JSON form of values
    return state


def bus_events(case: CdcCase) -> list[tuple[str, dict[str, Any]]]:
    settings = case.settings()
    events: list[tuple[str, dict[str, Any]]] = []
    if not settings.eventlog_dir.exists():
        return events
    with LocalEventLog(settings.eventlog_dir, TOPIC, settings.eventlog_partitions) as log:
        for partition, end in log.end_offsets().items():
            for records in log.read(partition, 0, end):
                events.extend((r.key, orjson.loads(r.body)) for r in records)
    return events


def bus_state(events: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per key, the event with the greatest LSN (ties: the later one on the bus) decides the row."""
    latest: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for i, (key, event) in enumerate(events):
        lsn = int(event["source"]["lsn"])
        if key not in latest or (lsn, i) >= latest[key][:2]:
            latest[key] = (lsn, i, event)
    return {k: e["after"] for k, (_, _, e) in latest.items() if e["op"] in ("c", "u", "r")}


def change_keys(messages: list[tuple[int, bytes]], key: tuple[str, ...] = ("user_id",)) -> set[tuple[str, int]]:
    """(key, LSN) of every change event the relay makes of these pgoutput messages (key updates: two)."""
    decoder = PgOutputDecoder()
    seen: set[tuple[str, int]] = set()
    for lsn, payload in messages:
        msg = decoder.decode(payload)
        if isinstance(msg, Insert):
            seen.add((str(msg.new[key[0]]), lsn))
        elif isinstance(msg, Delete):
            seen.add((str(msg.old[key[0]]), lsn))
        elif isinstance(msg, Update):
            seen.add((str(msg.new[key[0]]), lsn))
            if msg.old is not None:
                seen.add((str(msg.old[key[0]]), lsn))
    return seen


def peek(case: CdcCase, slot: str, publication: str = "meshkit_customers_users") -> list[tuple[int, bytes]]:
    """What a slot would stream now, without consuming it."""
    rows = case.sql(
        "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, publication),
    )
    return [(parse_lsn(lsn), bytes(data)) for lsn, data in rows]


def streamed_on_bus(events: list[tuple[str, dict[str, Any]]]) -> set[tuple[str, int]]:
    return {(k, int(e["source"]["lsn"])) for k, e in events if e["source"]["snapshot"] == "false"}


# tests ---------------------------------------------------------------------------------------------


def test_pgoutput_decodes_a_live_slot(case: CdcCase) -> None:
    case.sql(
        "CREATE TABLE kinds (id bigint PRIMARY KEY, n numeric(18,2), f float8, b bool, d date, ts timestamp, "
        "tz timestamptz, j jsonb, u uuid, t varchar(20), x int[]); ALTER TABLE kinds REPLICA IDENTITY FULL"
    )
    case.sql("CREATE PUBLICATION kinds_pub FOR TABLE kinds")
    case.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (f"{case.slot}_k",))
    case.sql(
        "INSERT INTO kinds VALUES (1, 12.30, 0.1, true, '2000-02-29', '2026-01-15 10:00:00.5', "
        "'2026-01-15 10:00:00+03', '{\"a\": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'v', '{1,2}')"
    )
    case.sql("UPDATE kinds SET b = false, id = 2 WHERE id = 1; DELETE FROM kinds WHERE id = 2; TRUNCATE kinds")
    decoder = PgOutputDecoder()
    decoded = [decoder.decode(data) for _, data in peek(case, f"{case.slot}_k", "kinds_pub")]
    inserts = [m for m in decoded if isinstance(m, Insert)]
    updates = [m for m in decoded if isinstance(m, Update)]
    deletes = [m for m in decoded if isinstance(m, Delete)]
    assert len(inserts) == len(updates) == len(deletes) == 1
    row = inserts[0].new
    assert str(row["n"]) == "12.30" and row["f"] == 0.1 and row["b"] is True and row["x"] == "{1,2}"
    assert row["d"].isoformat() == "2000-02-29" and row["ts"].isoformat() == "2026-01-15T10:00:00.500000"
    assert row["tz"].isoformat() == "2026-01-15T07:00:00+00:00" and row["j"] == {"a": [1, 2]}
    assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and row["t"] == "v"
    assert updates[0].old_kind == "O" and updates[0].old is not None and updates[0].old["b"] is True
    assert updates[0].new["id"] == 2 and updates[0].new["b"] is False
    assert deletes[0].old_kind == "O" and deletes[0].old["id"] == 2
    assert any(type(m).__name__ == "Truncate" for m in decoded)
    case.sql("SELECT pg_drop_replication_slot(%s)", (f"{case.slot}_k",))


def test_the_relay_refuses_a_table_it_cannot_stream_loss_free(case: CdcCase) -> None:
    from pipelines.sources.postgres.replication import ServerNotReady, check_server
    from pipelines.sources.postgres.source import postgres_source

    source = postgres_source(find_product(case.root / "domains", PRODUCT))
    with contextlib.closing(case.server.connect(case.database)) as conn:
        case.sql("ALTER TABLE users REPLICA IDENTITY NOTHING")
        with pytest.raises(ServerNotReady, match="REPLICA IDENTITY NOTHING"):
            check_server(conn, source)
        case.sql("ALTER TABLE users REPLICA IDENTITY DEFAULT; ALTER TABLE users DROP CONSTRAINT users_pkey")
        with pytest.raises(ServerNotReady, match="no primary key"):
            check_server(conn, source)
        case.sql("ALTER TABLE users ADD PRIMARY KEY (user_id)")
        assert check_server(conn, source).key == ("user_id",)
        case.sql(f"CREATE ROLE plain_{case.database} LOGIN; GRANT SELECT ON users TO plain_{case.database}")
    plain = case.server.connect(case.database, user=f"plain_{case.database}")
    with contextlib.closing(plain) as conn, pytest.raises(ServerNotReady, match="no REPLICATION"):
        check_server(conn, source)
    refused = case.relay("--until-caught-up", MESHKIT_POSTGRES_USER=f"plain_{case.database}")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"role plain_{case.database} has no REPLICATION attribute" in refused.stderr


@pytest.mark.parametrize("identity", ["FULL", "DEFAULT"])
def test_snapshot_hands_over_to_the_stream_under_concurrent_writes(
    case: CdcCase, identity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under DEFAULT an UPDATE's unchanged TOASTed note is read back from the table; under FULL it comes
    from the old row in the same message."""
    case.sql(f"ALTER TABLE users REPLICA IDENTITY {identity}")
    from pipelines.sources.postgres.relay import PgRelayOptions, PostgresRelay, snapshot_state_store
    from pipelines.sources.postgres.source import connect, postgres_source
    from pipelines.transports.factory import open_transport, transport_spec

    writer = SourceWriter(case, seed=3)
    ops = simulated_operations(events=900, seed=13)
    writer.apply(ops[:500])
    settings = case.settings()
    product = find_product(case.root / "domains", PRODUCT)
    source = postgres_source(product)
    transport = open_transport(transport_spec(settings, TOPIC))
    store = snapshot_state_store(settings, product)
    monkeypatch.setenv("MESHKIT_POSTGRES_USER", "meshkit_cdc")
    relay = PostgresRelay(
        settings=settings, source=source, connect=lambda r: connect(settings, source, replication=r),
        transport=transport, store=store, options=PgRelayOptions(batch_size=20, poll_seconds=0.05),
    )  # fmt: skip
    thread = threading.Thread(target=relay.run)
    try:
        thread.start()
        writer.apply(ops[500:])  # while the snapshot is read and then streamed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and bus_state(bus_events(case)) != table_state(case):
            time.sleep(0.2)
    finally:
        relay.stop()
        thread.join(timeout=30)
        transport.close()
        store.close()
    assert relay.report.snapshot_rows > 0 and relay.report.changes > 0
    on_bus, in_table = bus_state(bus_events(case)), table_state(case)
    assert on_bus == in_table, _diff(on_bus, in_table)


def test_kill_9_at_seeded_points_loses_nothing(case: CdcCase) -> None:
    rng = random.Random(20261126)
    writer = SourceWriter(case, seed=7)
    ops = simulated_operations(events=1400, seed=17)
    chunks = [ops[500 + i * 60 : 560 + i * 60] for i in range(15)]
    writer.apply(ops[:500])  # the snapshot phase has rows to crash in
    oracle = f"{case.slot}_oracle"  # an independent slot: every change made from here on
    kills, checks = 0, 0
    # two crashes inside the snapshot (pages of 40 rows), then seeded points in the stream
    points = [("after-checkpoint", 1), ("mid-publish", 2)]
    points += [(rng.choice(CRASH_POINTS), rng.randint(1, 3)) for _ in range(12)]
    for i, (point, nth) in enumerate(points):
        result = case.relay("--until-caught-up", fault=f"{point}:{nth}")
        assert result.returncode in (0, -signal.SIGKILL), result.stderr
        kills += result.returncode == -signal.SIGKILL
        if i == 0:
            case.sql("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (oracle,))
        case.wait_slot_released()
        if case.slot_row() is not None and i > 0:  # the slot may stream again only what is not on the bus
            made = change_keys(peek(case, oracle))
            pending = change_keys(peek(case, case.slot))
            missing = made - streamed_on_bus(bus_events(case)) - pending
            assert not missing, f"after kill {i} at {point}:{nth}, {len(missing)} changes are neither on the bus " \
                                f"nor re-streamable, e.g. {sorted(missing)[:2]}"  # fmt: skip
            checks += 1
        writer.apply(chunks[i])  # the source keeps changing between crashes
    final = case.relay("--until-caught-up")
    assert final.returncode == 0, final.stderr
    assert kills >= 10, f"only {kills} of {len(points)} runs reached their crash point"
    events = bus_events(case)
    made = change_keys(peek(case, oracle))
    assert made <= streamed_on_bus(events)
    confirmed = parse_lsn(case.slot_row()[1])  # type: ignore[index]
    assert confirmed <= parse_lsn(case.sql("SELECT pg_current_wal_lsn()::text")[0][0])
    assert not change_keys(peek(case, case.slot)) - streamed_on_bus(events)
    state = table_state(case)
    assert bus_state(events) == state
    toasted = [row for row in state.values() if row["notes"] and len(row["notes"]) == NOTE_BYTES]
    updated = {
        k for k, e in events if e["op"] == "u" and e["after"]["notes"] and len(e["after"]["notes"]) == NOTE_BYTES
    }
    assert toasted and updated, "the seed must update rows holding a TOASTed note"
    case.sql("SELECT pg_drop_replication_slot(%s)", (oracle,))


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(set(a) ^ set(b))[:3]
    rows = [k for k in sorted(set(a) & set(b)) if a[k] != b[k]][:2]
    detail = [{c: (a[k][c], b[k][c]) for c in a[k] if a[k][c] != b[k].get(c)} for k in rows]
    return f"only one side: {keys}; {len(rows)} differ, e.g. {detail}"


def test_a_stopped_relay_s_slot_lag_warns_is_recorded_and_drop_slot_releases_it(case: CdcCase) -> None:
    from monitoring.metrics.store import MetricsStore

    writer = SourceWriter(case, seed=5)
    ops = simulated_operations(events=400, seed=23)
    writer.apply(ops[:50])
    limit = {"MESHKIT_POSTGRES_MAX_SLOT_LAG_BYTES": str(256 * 1024)}
    first = case.relay("--until-caught-up", **limit)
    assert first.returncode == 0, first.stderr
    assert "retains" not in first.stderr
    writer.apply(ops[50:])  # the relay is stopped; the slot holds the WAL of every write since
    case.sql("UPDATE users SET notes = repeat('w', 100000)")  # plenty of WAL (notes are not compressed)
    status = case.relay("--status", "--format", "json", **limit)
    assert status.returncode == 0 and orjson.loads(status.stdout)["lagBytes"] > 256 * 1024
    assert "WARNING" in status.stderr and f"replication slot {case.slot}" in status.stderr
    second = case.relay("--until-caught-up", **limit)  # the relay warns on start and records the lag
    assert second.returncode == 0, second.stderr
    assert f"replication slot {case.slot} of {PRODUCT} retains" in second.stderr and "--drop-slot" in second.stderr
    points = MetricsStore(case.settings().metrics_path).points(PRODUCT, "relay.lag.partition.slot")
    assert len(points) == 2 and points[-1][1] > 256 * 1024 >= points[0][1]
    lag_after = case.sql(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots "
        "WHERE slot_name = %s",
        (case.slot,),
    )[0][0]
    assert lag_after < 256 * 1024  # caught up: the slot let the WAL go
    dropped = case.relay("--drop-slot")
    assert dropped.returncode == 0 and dropped.stdout.strip() == "slot dropped"
    assert case.slot_row() is None


@pytest.mark.parametrize("bus_format", ["json", "avro"])
def test_the_current_state_table_equals_the_postgres_table(
    case: CdcCase, bus_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debezium envelopes through the one decoding seam; as JSON, or as Avro with the local registry."""
    from pipelines.runners.local import run_product
    from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables

    writer = SourceWriter(case, seed=9)
    ops = simulated_operations(events=600, seed=29)
    writer.apply(ops[:300])
    fmt = {"MESHKIT_BUS_FORMAT": bus_format}
    first = case.relay("--until-caught-up", fault="after-publish:2", **fmt)
    assert first.returncode == -signal.SIGKILL, first.stderr
    writer.apply(ops[300:])
    final = case.relay("--until-caught-up", **fmt)
    assert final.returncode == 0, final.stderr
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "postgres-cdc-test-masking-key-0123456789abcdef")
    settings = case.settings(bus_format=bus_format)
    with LocalEventLog(settings.eventlog_dir, TOPIC, settings.eventlog_partitions) as log:
        first_bytes = {r.body[:1] for p, end in log.end_offsets().items() for rs in log.read(p, 0, end) for r in rs}
    assert first_bytes == ({b"\x00"} if bus_format == "avro" else {b"{"})  # Confluent framing, or JSON
    summary = run_product(settings, find_product(settings.domains_dir, PRODUCT))
    assert summary.status == "completed" and summary.dead_letters == 0
    table = DuckDBWarehouse(settings.warehouse_path).read(WarehouseTables.of("customers", "users"), "current")
    current = {
        key: (status, len(notes or ""))
        for key, status, notes in zip(*(table[c].to_pylist() for c in ("_key", "kyc_status", "notes")), strict=True)
    }
    source = {k: (row["kyc_status"], len(row["notes"] or "")) for k, row in table_state(case).items()}
    assert current == source


def test_sigterm_publishes_and_confirms_what_was_read_then_exits(case: CdcCase) -> None:
    writer = SourceWriter(case, seed=31)
    ops = simulated_operations(events=300, seed=37)
    writer.apply(ops[:100])
    args = [sys.executable, "-m", "meshkit", "--root", str(case.root), "relay", PRODUCT,
            "--poll-seconds", "0.05"]  # fmt: skip
    relay = subprocess.Popen(args, env=case.env, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        writer.apply(ops[100:])
        while time.monotonic() < deadline and bus_state(bus_events(case)) != table_state(case):
            time.sleep(0.1)
        relay.send_signal(signal.SIGTERM)
        _, stderr = relay.communicate(timeout=20)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(timeout=10)
    assert relay.returncode == 0, stderr
    case.wait_slot_released()
    assert bus_state(bus_events(case)) == table_state(case)
    assert not change_keys(peek(case, case.slot)), "a graceful stop confirms everything it published"


def test_a_crash_right_after_the_slot_was_created_still_snapshots_the_table(case: CdcCase) -> None:
    """The slot exists but the snapshot state never got written (or the checkpoint store was wiped)."""
    SourceWriter(case, seed=41).apply(simulated_operations(events=200, seed=43))
    first = case.relay("--until-caught-up", fault="after-read:1")  # slot created, first page read, killed
    assert first.returncode == -signal.SIGKILL, first.stderr
    state = case.workspace / "checkpoints" / "relay-customers.users" / "postgres-snapshot.json"
    assert state.exists()
    state.unlink()
    case.wait_slot_released()
    final = case.relay("--until-caught-up")
    assert final.returncode == 0, final.stderr
    assert "has no snapshot state" in final.stderr
    assert bus_state(bus_events(case)) == table_state(case)
