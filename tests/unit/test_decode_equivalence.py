"""The column-wise, vectorised decoder must agree with a plain value-by-value reading of the contract."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from meshkit.contracts.model import Contract, load_contract
from pipelines.events import EnvelopeError, delete_key_source, parse_envelope, raw_batch
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig
from pipelines.transforms.decode import ChangeEventDecoder
from pipelines.transforms.rules import RuleViolation, compile_column

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ("customers/users", "payments/transactions")


def reference(contract: Contract, body: bytes) -> tuple[str, Any]:
    """('ok', (key, row)) or ('dead', code), reading one item value by value, column by column."""
    columns = contract.source_columns
    keys = [columns.index(contract.column(k)) for k in contract.primary_key]
    try:
        try:
            item = json.loads(body)
        except ValueError:
            return "dead", "invalid-json"
        envelope = parse_envelope(item)
        row: list[Any] = []
        for i, column in enumerate(columns):
            convert = compile_column(column)
            if envelope.operation == "delete":
                row.append(convert(delete_key_source(envelope, column.source_field)) if i in keys else None)
            else:
                row.append(convert(envelope.document.get(column.source_field)))
        return "ok", ("|".join(str(row[i]) for i in keys), row)
    except (EnvelopeError, RuleViolation) as exc:
        return "dead", exc.code


def mutate(rng: random.Random, body: bytes, contract: Contract) -> bytes:
    """Break one value of a valid item in one of several ways (types, nulls, newlines, lengths)."""
    item = json.loads(body)
    doc = item["current"] if item.get("current") else item
    column = rng.choice(contract.source_columns)
    value = doc.get(column.source_field)
    doc[column.source_field] = rng.choice(
        [None, 12345, True, "", "x" * 300, f"{value}\n", [value], {"v": value}, "2026-13-45", "-1"]
    )
    return json.dumps(item).encode()


@pytest.mark.parametrize("ref", PRODUCTS)
def test_vectorised_decoding_equals_value_by_value_reading(ref: str) -> None:
    contract = load_contract(ROOT / "domains" / ref / "datacontract.yaml")
    feed = ChangeFeedSimulator(contract, SimulationConfig(events=1500, seed=99)).generate()
    rng = random.Random(1)
    bodies = [mutate(rng, b, contract) if rng.random() < 0.08 and b.startswith(b"{") else b for b in feed.items]
    batch = raw_batch(bodies)
    result = ChangeEventDecoder(contract).decode(batch)
    expected = [reference(contract, b) for b in bodies]
    dead = dict(
        zip(
            result.dead_letters.column("offset").to_pylist(),
            result.dead_letters.column("reason_code").to_pylist(),
            strict=True,
        )
    )
    assert dead == {i: code for i, (kind, code) in enumerate(expected) if kind == "dead"}
    assert len(dead) > 60  # the mutations exercised the fallbacks
    events = result.events.to_pylist()
    names = [c.name for c in contract.source_columns]
    ok = [(i, v) for i, (kind, v) in enumerate(expected) if kind == "ok"]
    assert [e["_offset"] for e in events] == [i for i, _ in ok]
    for event, (_, (key, row)) in zip(events, ok, strict=True):
        assert event["_key"] == key
        assert [event[name] for name in names] == row
