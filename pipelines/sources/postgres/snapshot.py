"""The initial snapshot: the table read in primary-key order inside one REPEATABLE READ transaction.

The first read imports the snapshot the replication slot exported when it was created, so the rows
are exactly the state the slot streams on from. A crash mid-snapshot keeps the slot (it still holds
every change committed since) and resumes after the last key published, in a fresh REPEATABLE READ
transaction: rows read later may be newer than the slot's start, but every change after that start is
streamed afterwards with a higher LSN than any snapshot row, so the stream corrects them.

Values are read as text and converted by type OID with the stream's converter, so a snapshot row and
a streamed row are byte-for-byte the same JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pipelines.sources.postgres.pgoutput import Row
from pipelines.sources.postgres.replication import TableInfo
from pipelines.sources.postgres.source import PostgresSource
from pipelines.sources.postgres.values import convert


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_snapshot(
    conn: Any,
    source: PostgresSource,
    table: TableInfo,
    *,
    snapshot_name: str | None,
    after_key: Sequence[str] | None,
    page_rows: int,
) -> Iterator[tuple[list[Row], list[str]]]:
    """Pages of converted rows, each with the text of its last row's key (the resume cursor).
    `conn` must not be in autocommit; the transaction ends (rollback, it only read) when the pages end."""
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
    columns = ", ".join(f"{_ident(c.name)}::text" for c in table.columns)
    key = ", ".join(_ident(k) for k in table.key)
    sql = f"SELECT {columns} FROM {source.qualified_table}"
    params: list[str] = []
    if after_key:
        sql += f" WHERE ({key}) > ({', '.join(['%s'] * len(after_key))})"
        params = list(after_key)
    sql += f" ORDER BY {key}"
    names = [c.name for c in table.columns]
    oids = [c.type_oid for c in table.columns]
    key_positions = [names.index(k) for k in table.key]
    try:
        with conn.cursor() as setup:
            if snapshot_name is not None:
                setup.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
            else:
                setup.execute("SELECT 1")  # start the transaction: its snapshot is taken now
        with conn.cursor(name="meshkit_snapshot") as cur:
            cur.itersize = page_rows
            cur.execute(sql, params)
            while True:
                raw = cur.fetchmany(page_rows)
                if not raw:
                    return
                rows = [{n: convert(o, v) for n, o, v in zip(names, oids, values, strict=True)} for values in raw]
                yield rows, [raw[-1][i] for i in key_positions]
    finally:
        conn.rollback()
