"""Decoded pgoutput changes -> Debezium envelope records, with unchanged TOASTed values completed.

PostgreSQL does not resend a TOASTed value an UPDATE left unchanged (pgoutput's `u`). Under REPLICA
IDENTITY FULL the old row in the same message has it. Under DEFAULT the current value is read from the
table by key: a later change of that value follows in the stream, so a newer value read here is only
early, never stale; a row deleted since gets null until its delete arrives. No row state is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.sources.postgres.envelope import EnvelopeWriter, EventSource, Record, key_text
from pipelines.sources.postgres.pgoutput import UNCHANGED_TOAST, Delete, Insert, Row, Truncate, Update
from pipelines.sources.postgres.replication import TableInfo
from pipelines.sources.postgres.source import PostgresSource
from pipelines.sources.postgres.values import convert

log = logging.getLogger(__name__)


class ChangeRecords:
    """Turns one table's decoded changes into bus records; `conn` (autocommit) reads TOASTed values."""

    def __init__(self, source: PostgresSource, table: TableInfo, conn: Any) -> None:
        self.source, self.table, self.conn = source, table, conn
        self.writer = EnvelopeWriter(source, table.key)
        self._oids = {c.name: c.type_oid for c in table.columns}
        self.toast_reads = 0

    def records(self, change: Insert | Update | Delete | Truncate, at: EventSource) -> list[Record]:
        if isinstance(change, Insert):
            return [self.writer.record("c", None, change.new, at)]
        if isinstance(change, Delete):
            return [self.writer.record("d", change.old, None, at)]
        if isinstance(change, Update):
            old = change.old if change.old_kind is not None else None
            return self.writer.update(old, self._complete(change), at)
        log.warning(
            "TRUNCATE of %s.%s published as a Debezium `t` event: the pipeline cannot know which keys it removed",
            self.source.schema, self.source.table,
        )  # fmt: skip
        _, body, props = self.writer.record("t", None, None, at)
        return [(f"{self.source.schema}.{self.source.table}:truncate", body, props)]

    def _complete(self, change: Update) -> Row:
        missing = [name for name, value in change.new.items() if value is UNCHANGED_TOAST]
        if not missing:
            return change.new
        new = dict(change.new)
        if change.old_kind == "O" and change.old is not None:  # REPLICA IDENTITY FULL
            new.update({name: change.old[name] for name in missing})
            return new
        cols = ", ".join(f'"{m}"::text' for m in missing)
        where = " AND ".join(f'"{k}" = %s' for k in self.table.key)
        with self.conn.cursor() as cur:
            cur.execute(
                f"SELECT {cols} FROM {self.source.qualified_table} WHERE {where}",
                [key_text({"k": new[k]}, ("k",)) for k in self.table.key],
            )
            row = cur.fetchone()
        self.toast_reads += 1
        new.update({m: convert(self._oids[m], row[i]) if row else None for i, m in enumerate(missing)})
        return new
