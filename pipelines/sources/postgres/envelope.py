"""Change events in the Debezium envelope, as the PostgreSQL relay publishes them.

    {"before": {...} | null, "after": {...} | null, "op": "c" | "u" | "d" | "r" | "t",
     "source": {"version", "connector": "postgresql", "name", "db", "schema", "table", "lsn": <int>,
                "txId": <int> | null, "ts_ms": <commit time, ms>, "snapshot": "true" | "false"},
     "ts_ms": <relay time, ms>}

The bus key is the primary key as text (one column: its value; several: a JSON array), so every
change of a row lands in one partition, in order. An UPDATE that changes the key travels as a delete
of the old key and a create of the new one, as Debezium does, so per-key order still holds. Numbers
keep their exact decimal digits (JSON numbers, not floats); timestamps with a time zone are ISO-8601
UTC (`...Z`), dates `YYYY-MM-DD`.

Properties carry what a reader routes on without parsing the body: `envelope: debezium`, `op`,
`lsn`, `sourceTimestamp` (commit time, epoch seconds), plus product and source.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from meshkit import __version__ as meshkit_version
from pipelines.sources.postgres.pgoutput import UNCHANGED_TOAST, Row
from pipelines.sources.postgres.source import PostgresSource

ENVELOPE = "debezium"
CONNECTOR = "postgresql"
Record = tuple[str, bytes, dict[str, str]]  # (key, body, properties) as EventTransport.publish takes them


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())  # the exact digits, as a JSON number
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__} in a change event")


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, default=_default, option=orjson.OPT_UTC_Z)


def key_text(row: Row, key: Sequence[str]) -> str:
    """The bus partition key of a row: the primary key's value as text (a JSON array for several)."""
    if len(key) == 1:
        return _text(row.get(key[0]))
    return orjson.dumps([_text(row.get(k)) for k in key]).decode()


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "" if value is None else str(value)


@dataclass(frozen=True)
class EventSource:
    """The parts of `source` that vary per change."""

    lsn: int
    tx_id: int | None
    commit_ms: int
    snapshot: bool


class EnvelopeWriter:
    """Builds the records of one source table's changes for `EventTransport.publish`."""

    def __init__(self, source: PostgresSource, key: Sequence[str]) -> None:
        self.source, self.key = source, tuple(key)
        self._static = {
            "version": meshkit_version,
            "connector": CONNECTOR,
            "name": source.product,
            "db": source.database,
            "schema": source.schema,
            "table": source.table,
        }

    def record(self, op: str, before: Row | None, after: Row | None, at: EventSource) -> Record:
        for image in (before, after):
            if image is not None and any(v is UNCHANGED_TOAST for v in image.values()):
                raise ValueError("an unchanged TOASTed value reached the envelope uncompleted")  # a relay bug
        row = after if after is not None else before
        event = {
            "before": before,
            "after": after,
            "op": op,
            "source": {
                **self._static,
                "lsn": at.lsn,
                "txId": at.tx_id,
                "ts_ms": at.commit_ms,
                "snapshot": "true" if at.snapshot else "false",
            },
            "ts_ms": int(time.time() * 1000),
        }
        body = dumps(event)
        props = {
            "product": self.source.product,
            "source": self.source.name,
            "envelope": ENVELOPE,
            "op": op,
            "operationType": _OPERATION[op],
            "lsn": str(at.lsn),
            "sourceTimestamp": str(at.commit_ms // 1000),
        }
        return (key_text(row, self.key) if row is not None else "", body, props)

    def update(self, old: Row | None, new: Row, at: EventSource) -> list[Record]:
        """An UPDATE: one `u` event, or a delete of the old key and a create of the new one."""
        if old is not None and key_text(old, self.key) != key_text(new, self.key):
            return [self.record("d", old, None, at), self.record("c", None, new, at)]
        return [self.record("u", old, new, at)]


_OPERATION = {"c": "create", "u": "update", "d": "delete", "r": "read", "t": "truncate"}
