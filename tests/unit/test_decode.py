"""Decoding both Cosmos DB change-feed formats into typed Arrow batches, and dead-lettering the rest."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from meshkit.contracts.model import load_contract
from pipelines.events import raw_batch
from pipelines.transforms.decode import ChangeEventDecoder

ROOT = Path(__file__).resolve().parents[2]
USERS = ROOT / "domains/customers/users/datacontract.yaml"
TX = ROOT / "domains/payments/transactions/datacontract.yaml"


def raw(*bodies: bytes | dict) -> pa.RecordBatch:
    return raw_batch([b if isinstance(b, bytes) else json.dumps(b).encode() for b in bodies])


def user_doc(**over: object) -> dict:
    doc = {
        "id": "8a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "full_name": "Maria da Silva",
        "cpf": "52998224725",
        "email": "maria@example.com",
        "phone": "+5511987654321",
        "birth_date": "1990-05-12",
        "state": "SP",
        "segment": "retail",
        "kyc_status": "approved",
        "credit_limit": 2500.5,
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00-03:00",
        "_ts": 1761991200,
        "_lsn": 7,
    }
    doc.update(over)
    return doc


@pytest.fixture(scope="module")
def users() -> ChangeEventDecoder:
    return ChangeEventDecoder(load_contract(USERS))


def test_latest_version_item_is_typed(users: ChangeEventDecoder) -> None:
    result = users.decode(raw(user_doc()))
    assert result.dead_letters.num_rows == 0
    row = result.events.to_pylist()[0]
    assert row["user_id"] == "8a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
    assert row["birth_date"] == date(1990, 5, 12)
    assert row["credit_limit"] == Decimal("2500.50")
    assert row["updated_at"] == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert (row["_key"], row["_lsn"], row["_op"]) == ("8a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", 7, "upsert")


def test_all_versions_and_deletes_items(users: ChangeEventDecoder) -> None:
    doc = user_doc()
    create = {"current": doc, "metadata": {"operationType": "create", "lsn": 3, "crts": 1761991200}}
    delete = {
        "current": {},
        "metadata": {
            "operationType": "delete",
            "lsn": 9,
            "crts": 1761991300,
            "id": doc["id"],
            "partitionKey": {"id": doc["id"]},
        },
    }
    result = users.decode(raw(create, delete))
    assert result.dead_letters.num_rows == 0
    rows = result.events.to_pylist()
    assert [(r["_op"], r["_lsn"]) for r in rows] == [("create", 3), ("delete", 9)]
    assert rows[1]["user_id"] == doc["id"] and rows[1]["cpf"] is None


@pytest.mark.parametrize("current", ["absent", None])
def test_a_delete_without_current_is_a_delete(users: ChangeEventDecoder, current: str | None) -> None:
    """The service sends a delete with `current` null or left out: metadata alone identifies it."""
    doc = user_doc()
    metadata = {
        "operationType": "delete",
        "lsn": 11,
        "crts": 1761991300,
        "id": doc["id"],
        "partitionKey": {"id": doc["id"]},
    }
    delete: dict[str, object] = (
        {"metadata": metadata} if current == "absent" else {"current": None, "metadata": metadata}
    )
    result = users.decode(raw(delete))
    assert result.dead_letters.num_rows == 0
    assert [(r["_op"], r["_lsn"], r["user_id"]) for r in result.events.to_pylist()] == [("delete", 11, doc["id"])]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid-json"),
        (b"[1, 2]", "not-an-object"),
        (json.dumps({k: v for k, v in user_doc().items() if k != "_lsn"}).encode(), "missing-lsn"),
        (json.dumps({"current": {}, "metadata": {"operationType": "upsert", "lsn": 1}}).encode(), "unknown-operation"),
        (json.dumps(user_doc(cpf="5299822472X")).encode(), "pattern:cpf"),
        (json.dumps(user_doc(state="XX")).encode(), "enum:state"),
        (json.dumps(user_doc(credit_limit="lots")).encode(), "type:credit_limit"),
        (json.dumps(user_doc(credit_limit=-1)).encode(), "range:credit_limit"),
        (json.dumps(user_doc(full_name=None)).encode(), "required:full_name"),
        (json.dumps(user_doc(updated_at="2026-11-01T10:00:00")).encode(), "timezone:updated_at"),
        (json.dumps(user_doc(email="not-an-email")).encode(), "format:email"),
    ],
)
def test_bad_items_become_dead_letters_with_a_reason(users: ChangeEventDecoder, body: bytes, code: str) -> None:
    result = users.decode(raw(body, user_doc()))
    assert result.events.num_rows == 1
    dead = result.dead_letters.to_pylist()
    assert [d["reason_code"] for d in dead] == [code]
    assert dead[0]["body"] == body and dead[0]["offset"] == 0


def test_reasons_never_show_personal_values(users: ChangeEventDecoder) -> None:
    result = users.decode(raw(user_doc(cpf="12345"), user_doc(credit_limit="abc")))
    reasons = result.dead_letters.column("reason").to_pylist()
    assert "12345" not in reasons[0] and "cpf" in reasons[0]
    assert "'abc'" in reasons[1]  # not personal: the value helps the producer fix it


def test_decimal_scale_and_derived_columns() -> None:
    decoder = ChangeEventDecoder(load_contract(TX))
    assert "amount_band" not in decoder.schema.names  # derived: produced by the domain transform
    doc = {
        "id": "6f1c1f0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
        "customerId": "11111111-2222-4333-8444-555555555555",
        "method": "pix",
        "direction": "debit",
        "amount": "10.005",
        "currency": "BRL",
        "status": "pending",
        "occurred_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z",
        "_lsn": 1,
    }
    result = decoder.decode(raw(doc, {**doc, "amount": "10.50", "_lsn": 2}))
    assert result.dead_letters.column("reason_code").to_pylist() == ["scale:amount"]
    assert result.events.column("amount").to_pylist() == [Decimal("10.50")]


def test_patterns_follow_json_schema_semantics() -> None:
    from pipelines.transforms.rules import ecma_pattern

    assert ecma_pattern("^[0-9]{11}$").search("52998224725")
    assert not ecma_pattern("^[0-9]{11}$").search("52998224725\n")  # Python's own `$` would accept it
    assert ecma_pattern("^a[$]b$").search("a$b")
    assert ecma_pattern(r"^\$[0-9]+$").search("$12")


@pytest.mark.parametrize("field", ["cpf", "email", "id"])
def test_a_trailing_newline_does_not_slip_through(users: ChangeEventDecoder, field: str) -> None:
    doc = user_doc()
    result = users.decode(raw(user_doc(**{field: doc[field] + "\n"})))
    assert result.events.num_rows == 0 and result.dead_letters.num_rows == 1


def debezium(op: str, lsn: int, before: dict | None, after: dict | None) -> dict:
    source = {"connector": "postgresql", "db": "app", "schema": "public", "table": "users", "lsn": lsn}
    return {"before": before, "after": after, "op": op, "source": {**source, "ts_ms": 1761991300123}, "ts_ms": 1}


def test_debezium_events_go_through_the_same_seam(users: ChangeEventDecoder) -> None:
    """PostgreSQL CDC in a Debezium envelope: c/u/r carry `after`, d carries the key in `before`."""
    row = {k: v for k, v in user_doc(credit_limit="2500.50").items() if not k.startswith("_")}
    events = [
        debezium("r", 100, None, row),
        debezium("u", 140, None, {**row, "kyc_status": "rejected"}),
        debezium("d", 180, {"id": row["id"]}, None),
        debezium("c", 200, None, {**row, "id": "1f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"}),
    ]
    result = users.decode(raw(*events))
    assert result.dead_letters.num_rows == 0
    rows = result.events.to_pylist()
    assert [(r["_op"], r["_lsn"]) for r in rows] == [("upsert", 100), ("update", 140), ("delete", 180), ("create", 200)]
    assert rows[0]["credit_limit"] == Decimal("2500.50") and rows[1]["kyc_status"] == "rejected"
    assert rows[2]["user_id"] == row["id"] and rows[2]["cpf"] is None
    assert rows[0]["_source_ts"] == datetime(2025, 11, 1, 10, 1, 40, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"before": None, "after": {"id": "x"}, "op": "x", "source": {"lsn": 1}}, "unknown-operation"),
        ({"before": None, "after": None, "op": "c", "source": {"lsn": 1}}, "not-an-object"),
        ({"before": None, "after": {"id": "x"}, "op": "c", "source": {}}, "missing-lsn"),
    ],
)
def test_malformed_debezium_events_are_dead_lettered(users: ChangeEventDecoder, event: dict, code: str) -> None:
    result = users.decode(raw(event))
    assert result.dead_letters.column("reason_code").to_pylist() == [code]


def test_a_relational_row_may_use_the_contract_column_names(users: ChangeEventDecoder) -> None:
    """`user_id` has `sourceField: id` (the Cosmos DB document's name); a PostgreSQL row has `user_id`."""
    row = {("user_id" if k == "id" else k): v for k, v in user_doc().items() if not k.startswith("_")}
    result = users.decode(raw(debezium("c", 5, None, row), debezium("d", 6, {"user_id": row["user_id"]}, None)))
    assert result.dead_letters.num_rows == 0
    assert [(r["_op"], r["user_id"]) for r in result.events.to_pylist()] == [
        ("create", row["user_id"]),
        ("delete", row["user_id"]),
    ]
