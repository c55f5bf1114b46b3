"""The server side of PostgreSQL CDC: checks, the publication, the logical replication slot and its lag.

The relay refuses to start, with what to change, when the server cannot give a loss-free stream:
`wal_level` is not `logical`, the role lacks REPLICATION, the table has no primary key, or its
REPLICA IDENTITY is NOTHING or USING INDEX. Under DEFAULT an UPDATE/DELETE carries the old primary
key only, so `before` holds the key columns (others null); under FULL it holds the whole old row.

A slot keeps every WAL segment its consumer has not confirmed: a stopped relay makes the server's
disk fill up. The relay reports `pg_current_wal_lsn() - confirmed_flush_lsn` as a metric and warns once
it passes `postgres_max_slot_lag_bytes`; `drop_slot` releases the WAL for good (the next start takes a
new snapshot).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from meshkit.config import Settings
from meshkit.errors import ConfigError, TerminalError
from meshkit.products.model import DataProduct
from pipelines.sources.postgres.source import PostgresSource, connect, describe, postgres_source

log = logging.getLogger(__name__)
PLUGIN = "pgoutput"
PROTO_VERSION = "1"


def parse_lsn(text: str) -> int:
    """`16/B374D848` -> 0x16B374D848."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class TableColumn:
    name: str
    type_oid: int


@dataclass(frozen=True)
class TableInfo:
    """What the relay needs to know of the captured table."""

    columns: tuple[TableColumn, ...]
    key: tuple[str, ...]  # primary key columns, in key order
    replica_identity: str  # 'd' (DEFAULT) or 'f' (FULL)


@dataclass(frozen=True)
class SlotInfo:
    name: str
    plugin: str | None
    database: str | None
    active_pid: int | None
    restart_lsn: int | None
    confirmed_flush_lsn: int | None
    wal_status: str | None = None


@dataclass(frozen=True)
class SlotLag:
    """How much WAL the slot holds back: from its confirmed flush point to the server's current LSN."""

    slot: str
    lag_bytes: int
    confirmed_flush_lsn: int
    current_lsn: int
    wal_status: str | None  # reserved | extended | unreserved | lost (max_slot_wal_keep_size)


class ServerNotReady(TerminalError):
    """The server or the table is not set up for change data capture."""


def _one(conn: Any, sql: str, params: Any = None) -> tuple[Any, ...] | None:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
        return tuple(row) if row is not None else None


def check_server(conn: Any, source: PostgresSource) -> TableInfo:
    """Everything a loss-free stream of `source` needs, checked before anything is created."""
    where = describe(source)
    wal_level = (_one(conn, "SHOW wal_level") or ("?",))[0]
    if wal_level != "logical":
        raise ServerNotReady(
            f"PostgreSQL at {where} has wal_level={wal_level}; change data capture needs wal_level=logical",
            hint="Set `wal_level = logical` (ALTER SYSTEM SET wal_level = logical, or the cloud's flag: "
            "cloudsql.logical_decoding / azure.replication_support=logical) and restart the server.",
        )
    role = _one(conn, "SELECT current_user, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
    if role is None or not role[1]:
        user = role[0] if role else "the relay's role"
        raise ServerNotReady(
            f"role {user} has no REPLICATION attribute on {where}",
            hint=f"Run `ALTER ROLE {user} WITH REPLICATION` (a superuser or the cloud's admin role must) "
            "or connect as a role that has it; see docs/postgres.md for the minimal grants.",
        )
    oid = _one(conn, "SELECT to_regclass(%s)::oid", (source.qualified_table,))
    if oid is None or oid[0] is None:
        raise ServerNotReady(
            f"table {source.schema}.{source.table} does not exist in {where} (or the role cannot see it)",
            hint="Check the contract server's schema and `table` customProperty, and GRANT USAGE/SELECT to the role.",
        )
    identity = (_one(conn, "SELECT relreplident FROM pg_class WHERE oid = %s", (oid[0],)) or ("d",))[0]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, a.atttypid FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            (oid[0],),
        )
        columns = tuple(TableColumn(str(name), int(type_oid)) for name, type_oid in cur.fetchall())
        cur.execute(
            "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.n",
            (oid[0],),
        )
        key = tuple(str(row[0]) for row in cur.fetchall())
    if not key:
        raise ServerNotReady(
            f"table {source.schema}.{source.table} has no primary key",
            hint="Change events are keyed and ordered per primary key (the bus partition key, the MERGE key); "
            "add one (ALTER TABLE ... ADD PRIMARY KEY (...)).",
        )
    if identity not in ("d", "f"):
        label = {"n": "NOTHING", "i": "USING INDEX"}.get(identity, identity)
        raise ServerNotReady(
            f"table {source.schema}.{source.table} has REPLICA IDENTITY {label}",
            hint="Use REPLICA IDENTITY DEFAULT (`before` holds the old primary key; other columns null) or FULL "
            "(`before` holds the whole old row, and unchanged TOASTed values are completed from it): "
            f"ALTER TABLE {source.qualified_table} REPLICA IDENTITY FULL.",
        )
    return TableInfo(columns, key, identity)


def ensure_publication(conn: Any, source: PostgresSource) -> bool:
    """Create the publication for the table (True) or check an existing one publishes it (False)."""
    exists = _one(conn, "SELECT pubinsert AND pubupdate AND pubdelete FROM pg_publication WHERE pubname = %s",
                  (source.publication,))  # fmt: skip
    if exists is None:
        with conn.cursor() as cur:
            cur.execute(f'CREATE PUBLICATION "{source.publication}" FOR TABLE {source.qualified_table}')
        log.info("created publication %s for %s.%s", source.publication, source.schema, source.table)
        return True
    published = _one(
        conn,
        "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s",
        (source.publication, source.schema, source.table),
    )
    if published is None or not exists[0]:
        raise ServerNotReady(
            f"publication {source.publication} exists but does not publish inserts, updates and deletes of "
            f"{source.schema}.{source.table}",
            hint=f"ALTER PUBLICATION {source.publication} ADD TABLE {source.qualified_table} (and publish "
            "'insert, update, delete'), or name another publication in the contract's `publication` property.",
        )
    return False


def slot_info(conn: Any, slot: str) -> SlotInfo | None:
    row = _one(
        conn,
        "SELECT slot_name, plugin, database, active_pid, restart_lsn::text, confirmed_flush_lsn::text, wal_status "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    if row is None:
        return None
    return SlotInfo(
        name=row[0],
        plugin=row[1],
        database=row[2],
        active_pid=row[3],
        restart_lsn=parse_lsn(row[4]) if row[4] else None,
        confirmed_flush_lsn=parse_lsn(row[5]) if row[5] else None,
        wal_status=row[6],
    )


def check_slot(info: SlotInfo, source: PostgresSource) -> None:
    """An existing slot must be ours to resume: pgoutput, this database, and no other consumer on it."""
    if info.plugin != PLUGIN or info.database != source.database:
        raise ServerNotReady(
            f"replication slot {info.name} exists with plugin {info.plugin} on database {info.database}",
            hint=f"Name another slot in the contract's `slot` property, or drop that slot if nothing uses it "
            f"(SELECT pg_drop_replication_slot('{info.name}')).",
        )
    if info.wal_status == "lost":
        raise ServerNotReady(
            f"replication slot {info.name} was invalidated by the server: the WAL it needed is gone "
            "(it passed max_slot_wal_keep_size)",
            hint=f"Changes since the relay last confirmed are lost to this slot. Run `meshkit relay {source.product} "
            "--drop-slot`, then start the relay again: it takes a new snapshot of the table.",
        )
    if info.active_pid is not None:
        raise ServerNotReady(
            f"replication slot {info.name} is in use by server process {info.active_pid}",
            hint="Another relay of this product is running; a slot has one consumer at a time. Stop the other "
            "relay (or wait for it) before starting this one.",
        )


def create_slot_exporting_snapshot(replication_conn: Any, slot: str) -> tuple[int, str]:
    """Create the slot and export the snapshot it starts from: `(consistent point LSN, snapshot name)`.
    The snapshot stays importable only until the replication connection runs its next command."""
    with replication_conn.cursor() as cur:
        cur.execute(f'CREATE_REPLICATION_SLOT "{slot}" LOGICAL {PLUGIN} EXPORT_SNAPSHOT')
        row = cur.fetchone()
    return parse_lsn(row[1]), str(row[2])


def slot_lag(conn: Any, slot: str) -> SlotLag | None:
    row = _one(
        conn,
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, confirmed_flush_lsn::text, "
        "pg_current_wal_lsn()::text, wal_status FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    if row is None or row[1] is None:
        return None
    return SlotLag(slot, max(0, int(row[0])), parse_lsn(row[1]), parse_lsn(row[2]), row[3])


def warn_if_lagging(settings: Settings, source: PostgresSource, lag: SlotLag | None) -> bool:
    """Log a WARNING when the slot retains more WAL than `postgres_max_slot_lag_bytes`; True if it does."""
    limit = settings.postgres_max_slot_lag_bytes
    if lag is None or lag.lag_bytes <= limit:
        return False
    log.warning(
        "replication slot %s of %s retains %d bytes of WAL (limit postgres_max_slot_lag_bytes=%d, wal_status=%s): "
        "the relay is behind or stopped and the server keeps WAL for it until it catches up. Run the relay, or "
        "release the WAL with `meshkit relay %s --drop-slot` (the next start takes a new snapshot).",
        lag.slot, source.product, lag.lag_bytes, limit, lag.wal_status, source.product,
    )  # fmt: skip
    return True


def drop_slot(settings: Settings, product: DataProduct) -> bool:
    """Drop the product's replication slot (True) so the server releases its WAL; False when there was
    none. The relay's snapshot state goes too: the next start takes a new snapshot. The publication
    stays (it holds no WAL)."""
    from pipelines.sources.postgres.relay import clear_snapshot_state

    source = postgres_source(product)
    with contextlib.closing(connect(settings, source)) as conn:
        info = slot_info(conn, source.slot)
        if info is not None and info.active_pid is not None:
            raise ConfigError(
                f"replication slot {source.slot} is in use by server process {info.active_pid}",
                hint=f"Stop the running relay of {product.ref} first (SIGTERM), then drop the slot.",
            )
        if info is not None:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_drop_replication_slot(%s)", (source.slot,))
            log.info("dropped replication slot %s of %s", source.slot, product.ref)
    clear_snapshot_state(settings, product)
    return info is not None
