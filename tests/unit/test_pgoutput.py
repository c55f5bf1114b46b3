"""The pgoutput decoder and the Debezium envelope on messages captured from PostgreSQL 15 (proto_version 1).

Captured with `pg_logical_slot_peek_binary_changes` from a table
`t (id int primary key, name text, amount numeric(18,2), at timestamptz, big text, m mood)` where
`big` is stored EXTERNAL and `mood` is an enum: insert, an update leaving the TOASTed `big` unchanged,
a key update, a delete (REPLICA IDENTITY DEFAULT), then under FULL an insert and update, and a TRUNCATE.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from pipelines.sources.postgres.envelope import EnvelopeWriter, EventSource, key_text
from pipelines.sources.postgres.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    DecodeError,
    Delete,
    Insert,
    PgOutputDecoder,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    pg_time_ms,
)
from pipelines.sources.postgres.replication import format_lsn, parse_lsn
from pipelines.sources.postgres.source import PostgresSource
from pipelines.sources.postgres.values import convert

BEGIN = "420000000001926ac80003042faf792c84000002d9"
TYPE = "59000040027075626c6963006d6f6f6400"
RELATION_DEFAULT = (
    "52000040077075626c69630074006400060169640000000017ffffffff006e616d650000000019ffffffff00616d6f756e74000000"
    "06a40012000600617400000004a0ffffffff006269670000000019ffffffff006d0000004002ffffffff"
)
COMMIT = "43000000000001926ac80000000001926af80003042faf792c84"
UPDATE_TOAST_UNCHANGED = (
    "55000040074e0006740000000131740000000162740000000531322e33307400000016323032362d30312d31352030373a30303a3030"
    "2b30307574000000026f6b"
)
UPDATE_KEY = (
    "55000040074b00067400000001316e6e6e6e6e4e0006740000000132740000000162740000000531322e333074000000163230323"
    "62d30312d31352030373a30303a30302b30307574000000026f6b"
)
DELETE_KEY = "44000040074b00067400000001326e6e6e6e6e"
RELATION_FULL = (
    "52000040077075626c69630074006600060169640000000017ffffffff016e616d650000000019ffffffff01616d6f756e74000000"
    "06a40012000601617400000004a0ffffffff016269670000000019ffffffff016d0000004002ffffffff"
)
INSERT_NULLS = "49000040074e00067400000001337400000001636e6e6e6e"
UPDATE_FULL = "55000040074f00067400000001337400000001636e6e6e6e4e00067400000001337400000001646e6e6e6e"
TRUNCATE = "54000000010000004007"


def decoder_with(*hexes: str) -> tuple[PgOutputDecoder, list[object]]:
    decoder = PgOutputDecoder()
    return decoder, [decoder.decode(bytes.fromhex(h)) for h in hexes]


def test_begin_commit_type_and_relation() -> None:
    _, (begin, info, relation, commit) = decoder_with(BEGIN, TYPE, RELATION_DEFAULT, COMMIT)
    assert isinstance(begin, Begin) and begin.xid == 729 and format_lsn(begin.final_lsn) == "0/1926AC8"
    assert (
        isinstance(commit, Commit)
        and commit.commit_lsn == begin.final_lsn
        and format_lsn(commit.end_lsn) == "0/1926AF8"
    )
    assert commit.commit_time_us == begin.commit_time_us
    assert datetime.fromtimestamp(pg_time_ms(begin.commit_time_us) / 1000, UTC).year == 2026
    assert isinstance(info, TypeInfo) and (info.namespace, info.name) == ("public", "mood")
    assert isinstance(relation, Relation) and relation.replica_identity == "d" and relation.key_columns == ("id",)
    assert [(c.name, c.type_oid) for c in relation.columns] == [
        ("id", 23), ("name", 25), ("amount", 1700), ("at", 1184), ("big", 25), ("m", info.oid)
    ]  # fmt: skip
    assert relation.columns[2].type_modifier == ((18 << 16) | 2) + 4  # numeric(18,2)


def test_an_update_marks_the_unchanged_toasted_value() -> None:
    _, (_, _, update) = decoder_with(TYPE, RELATION_DEFAULT, UPDATE_TOAST_UNCHANGED)
    assert isinstance(update, Update) and update.old is None and update.old_kind is None
    assert update.new == {
        "id": 1, "name": "b", "amount": Decimal("12.30"), "at": datetime(2026, 1, 15, 7, tzinfo=UTC),
        "big": UNCHANGED_TOAST, "m": "ok",
    }  # fmt: skip


def test_a_key_update_carries_the_old_key_and_a_delete_the_key_only() -> None:
    _, (_, update, delete) = decoder_with(RELATION_DEFAULT, UPDATE_KEY, DELETE_KEY)
    assert isinstance(update, Update) and update.old_kind == "K"
    assert update.old == {"id": 1, "name": None, "amount": None, "at": None, "big": None, "m": None}
    assert update.new["id"] == 2
    assert isinstance(delete, Delete) and delete.old_kind == "K" and delete.old["id"] == 2


def test_replica_identity_full_sends_the_whole_old_row() -> None:
    _, (relation, insert, update, truncate) = decoder_with(RELATION_FULL, INSERT_NULLS, UPDATE_FULL, TRUNCATE)
    assert isinstance(relation, Relation) and relation.replica_identity == "f"
    assert isinstance(insert, Insert) and insert.new == {
        "id": 3,
        "name": "c",
        "amount": None,
        "at": None,
        "big": None,
        "m": None,
    }
    assert isinstance(update, Update) and update.old_kind == "O" and update.old == insert.new
    assert update.new["name"] == "d"
    assert isinstance(truncate, Truncate) and truncate.relations == (relation,) and not truncate.cascade


def test_changes_before_their_relation_and_unknown_kinds_are_errors() -> None:
    with pytest.raises(DecodeError, match="before its Relation"):
        PgOutputDecoder().decode(bytes.fromhex(DELETE_KEY))
    with pytest.raises(DecodeError, match="unknown pgoutput message kind"):
        PgOutputDecoder().decode(b"Z\x00")
    assert PgOutputDecoder().decode(bytes.fromhex("4f0000000001926ac86f7269676900")) is None  # Origin: ignored


@pytest.mark.parametrize(
    ("oid", "text", "value"),
    [
        (16, "t", True), (20, "9007199254740993", 9007199254740993), (21, "-3", -3), (1700, "1.10", Decimal("1.10")),
        (1700, "NaN", "NaN"), (701, "0.1", 0.1), (701, "Infinity", "Infinity"),
        (1082, "2000-02-29", datetime(2000, 2, 29).date()), (1082, "infinity", "infinity"),
        (1114, "2026-01-15 10:00:00.5", datetime(2026, 1, 15, 10, 0, 0, 500000)),
        (1184, "2026-01-15 10:00:00-03", datetime(2026, 1, 15, 13, tzinfo=UTC)), (3802, '{"a": 1}', {"a": 1}),
        (2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        (1009, "{a,b}", "{a,b}"), (25, None, None),
    ],
)  # fmt: skip
def test_values_convert_by_type_oid(oid: int, text: str | None, value: object) -> None:
    assert convert(oid, text) == value


def test_the_debezium_envelope_and_a_key_update_as_delete_plus_create() -> None:
    source = PostgresSource("customers/users", "db", 5432, "app", "public", "users", "pub", "slot")
    writer = EnvelopeWriter(source, ("id",))
    at = EventSource(lsn=parse_lsn("0/1926C10"), tx_id=731, commit_ms=1_768_460_400_000, snapshot=False)
    old = {"id": 1, "amount": None}
    new = {"id": 2, "amount": Decimal("12.30")}
    (k1, body1, props1), (k2, body2, props2) = writer.update(old, new, at)
    deleted, created = orjson.loads(body1), orjson.loads(body2)
    assert (k1, deleted["op"], deleted["before"], deleted["after"]) == ("1", "d", old, None)
    assert (k2, created["op"], created["before"]) == ("2", "c", None)
    assert b'"amount":12.30' in body2  # exact decimal digits, as a JSON number
    assert created["source"] == {
        "version": created["source"]["version"], "connector": "postgresql", "name": "customers/users", "db": "app",
        "schema": "public", "table": "users", "lsn": 0x1926C10, "txId": 731, "ts_ms": 1_768_460_400_000,
        "snapshot": "false",
    }  # fmt: skip
    assert props2["envelope"] == "debezium" and props2["lsn"] == str(0x1926C10) and props1["op"] == "d"
    ((_, body, _),) = writer.update(None, new, at)
    assert orjson.loads(body)["op"] == "u"
    with pytest.raises(ValueError, match="TOAST"):
        writer.record("u", None, {"id": 2, "big": UNCHANGED_TOAST}, at)
    assert key_text({"a": 1, "b": "x"}, ("a", "b")) == '["1","x"]'


# the connection: credentials from the environment, never in messages --------------------------------


def test_the_dsn_takes_credentials_from_the_environment_and_errors_never_show_them() -> None:
    from psycopg2.extensions import parse_dsn

    from meshkit.errors import ConfigError
    from pipelines.sources.postgres.source import connection_dsn

    source = PostgresSource("customers/users", "db.internal", 6432, "app", "public", "users", "pub", "slot")
    dsn = parse_dsn(connection_dsn(source, {"MESHKIT_POSTGRES_USER": "relay", "MESHKIT_POSTGRES_PASSWORD": "s3cr3t"}))
    assert (dsn["host"], dsn["port"], dsn["dbname"], dsn["user"], dsn["password"]) == (
        "db.internal", "6432", "app", "relay", "s3cr3t"
    )  # fmt: skip
    assert "TimeZone=UTC" in dsn["options"] and "DateStyle=ISO" in dsn["options"]
    override = parse_dsn(connection_dsn(source, {"MESHKIT_POSTGRES_DSN": "host=other port=5433 user=u password=p"}))
    assert (override["host"], override["port"], override["dbname"]) == ("other", "5433", "app")
    with pytest.raises(ConfigError, match="MESHKIT_POSTGRES_USER is not set"):
        connection_dsn(source, {})
    with pytest.raises(ConfigError) as bad:
        connection_dsn(source, {"MESHKIT_POSTGRES_DSN": "host=x password=hunter2 = broken"})
    assert "hunter2" not in str(bad.value) and bad.value.__cause__ is None
