"""A decoder of the pgoutput logical replication protocol, version 1 (PostgreSQL's built-in plugin).

Layout from the PostgreSQL manual, "Logical Replication Message Formats": big-endian integers,
NUL-terminated strings, tuple columns as `n` (null), `u` (unchanged TOASTed value, not sent) or `t`
(Int32 length + the type's text output). Relation messages arrive before the first change of a table
in a session (and again after its definition changes); the decoder keeps them, one per table.

Values are converted from text by column type OID (`values.convert`, which the snapshot uses too), so a
row reads the same whether it came from the snapshot or the stream.

No maintained pure-Python decoder exists on PyPI (pypgoutput: last release 2022, 0.0.x;
pgoutput-decoder: one 0.1.0 release built on Rust), so this module implements the formats itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.sources.postgres.values import convert

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_MS = 946_684_800_000


class _Unchanged:
    """An UPDATE's TOASTed column whose value did not change: pgoutput does not send it (`u`)."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST = _Unchanged()


class DecodeError(ValueError):
    """A message the decoder cannot read (a protocol version or a message kind it does not know)."""


def pg_time_ms(microseconds: int) -> int:
    """A pgoutput timestamp (microseconds since 2000-01-01 UTC) as Unix epoch milliseconds."""
    return _PG_EPOCH_MS + microseconds // 1000


def pg_datetime(microseconds: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=microseconds)


# messages --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelationColumn:
    name: str
    type_oid: int
    type_modifier: int
    key: bool  # part of the replica identity (the primary key under REPLICA IDENTITY DEFAULT)


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[RelationColumn, ...]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.key)


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int  # the LSN of the transaction's commit record
    commit_time_us: int  # microseconds since 2000-01-01 UTC
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int  # the LSN just past the commit record: what the slot confirms once this transaction is safe
    commit_time_us: int


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


Row = dict[str, Any]  # column -> converted value, None or UNCHANGED_TOAST


@dataclass(frozen=True, slots=True)
class Insert:
    relation: Relation
    new: Row


@dataclass(frozen=True, slots=True)
class Update:
    relation: Relation
    old: Row | None  # the replica identity columns ('K') or the whole old row ('O', REPLICA IDENTITY FULL)
    old_kind: str | None  # 'K', 'O' or None (the key did not change and identity is not FULL)
    new: Row


@dataclass(frozen=True, slots=True)
class Delete:
    relation: Relation
    old: Row
    old_kind: str  # 'K' (key columns only, others null) or 'O' (whole row)


@dataclass(frozen=True, slots=True)
class Truncate:
    relations: tuple[Relation, ...]
    cascade: bool
    restart_identity: bool


Message = Begin | Commit | Relation | TypeInfo | Insert | Update | Delete | Truncate


class PgOutputDecoder:
    """Decodes one pgoutput message at a time; remembers the relations it has seen (one per table)."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.types: dict[int, TypeInfo] = {}

    def decode(self, payload: bytes) -> Message | None:
        """The message in `payload`, or None for kinds the relay ignores (Origin, logical Message)."""
        if not payload:
            raise DecodeError("empty pgoutput message")
        kind = payload[:1]
        reader = _Reader(payload, 1)
        if kind == b"B":
            lsn, ts, xid = reader.unpack(">QqI")
            return Begin(lsn, ts, xid)
        if kind == b"C":
            flags, commit_lsn, end_lsn, ts = reader.unpack(">BQQq")
            return Commit(flags, commit_lsn, end_lsn, ts)
        if kind == b"R":
            return self._relation(reader)
        if kind == b"Y":
            (oid,) = reader.unpack(">I")
            info = TypeInfo(oid, reader.string(), reader.string())
            self.types[oid] = info
            return info
        if kind == b"I":
            relation = self._known(reader)
            reader.expect(b"N")
            return Insert(relation, reader.tuple(relation))
        if kind == b"U":
            relation = self._known(reader)
            old: Row | None = None
            old_kind: str | None = None
            marker = reader.byte()
            if marker in (b"K", b"O"):
                old_kind, old = marker.decode(), reader.tuple(relation)
                marker = reader.byte()
            if marker != b"N":
                raise DecodeError(f"UPDATE of {relation.name}: expected 'N' before the new tuple, got {marker!r}")
            return Update(relation, old, old_kind, reader.tuple(relation))
        if kind == b"D":
            relation = self._known(reader)
            marker = reader.byte()
            if marker not in (b"K", b"O"):
                raise DecodeError(f"DELETE of {relation.name}: expected 'K' or 'O', got {marker!r}")
            return Delete(relation, reader.tuple(relation), marker.decode())
        if kind == b"T":
            count, options = reader.unpack(">IB")
            oids = reader.unpack(f">{count}I")
            relations = tuple(self.relations[oid] for oid in oids if oid in self.relations)
            return Truncate(relations, bool(options & 1), bool(options & 2))
        if kind in (b"O", b"M"):
            return None
        raise DecodeError(f"unknown pgoutput message kind {kind!r} (the relay speaks protocol version 1)")

    def _relation(self, reader: _Reader) -> Relation:
        (oid,) = reader.unpack(">I")
        namespace, name = reader.string(), reader.string()
        identity, ncols = reader.unpack(">BH")
        columns = []
        for _ in range(ncols):
            (flags,) = reader.unpack(">B")
            column = reader.string()
            type_oid, modifier = reader.unpack(">Ii")
            columns.append(RelationColumn(column, type_oid, modifier, bool(flags & 1)))
        relation = Relation(oid, namespace, name, chr(identity), tuple(columns))
        self.relations[oid] = relation
        return relation

    def _known(self, reader: _Reader) -> Relation:
        (oid,) = reader.unpack(">I")
        relation = self.relations.get(oid)
        if relation is None:
            raise DecodeError(f"a change of relation {oid} arrived before its Relation message")
        return relation


class _Reader:
    """A cursor over one message's bytes."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def byte(self) -> bytes:
        value = self.data[self.pos : self.pos + 1]
        self.pos += 1
        return value

    def expect(self, marker: bytes) -> None:
        got = self.byte()
        if got != marker:
            raise DecodeError(f"expected {marker!r} at byte {self.pos - 1}, got {got!r}")

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        value = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def tuple(self, relation: Relation) -> Row:
        (ncols,) = self.unpack(">H")
        if ncols != len(relation.columns):
            raise DecodeError(f"{relation.name}: tuple of {ncols} columns, relation has {len(relation.columns)}")
        row: Row = {}
        data = self.data
        for column in relation.columns:
            kind = data[self.pos : self.pos + 1]
            self.pos += 1
            if kind == b"n":
                row[column.name] = None
            elif kind == b"u":
                row[column.name] = UNCHANGED_TOAST
            elif kind in (b"t", b"b"):
                (length,) = struct.unpack_from(">i", data, self.pos)
                self.pos += 4
                raw = data[self.pos : self.pos + length]
                self.pos += length
                row[column.name] = convert(column.type_oid, raw.decode("utf-8")) if kind == b"t" else bytes(raw)
            else:
                raise DecodeError(f"{relation.name}.{column.name}: unknown tuple column kind {kind!r}")
        return row
