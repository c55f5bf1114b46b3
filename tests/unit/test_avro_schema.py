"""Avro schemas from contracts: the mapping per logical type, golden schemas of the example products,
and simulated documents of each product round-tripping through Avro with exact values."""

from __future__ import annotations

import copy
import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
import yaml

from meshkit.contracts.avro import (
    ENVELOPE_KINDS,
    avro_schema,
    compatibility_mode,
    envelope_kind,
    envelope_schema,
    value_schema,
)
from meshkit.contracts.model import Contract, load_contract, parse_contract
from meshkit.errors import ContractError
from meshkit.yamlio import YamlDocument
from pipelines.events import parse_envelope, raw_batch
from pipelines.serde.avro import AvroProducer, decode_batch
from pipelines.serde.registry import LocalRegistry
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig
from pipelines.transforms.decode import ChangeEventDecoder
from pipelines.transforms.rules import compile_column

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "avro"
PRODUCTS = ("customers/users", "payments/transactions", "risk/customer-exposure")


def _load(product: str) -> Contract:
    return load_contract(ROOT / "domains" / product / "datacontract.yaml")


def _fields(schema: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f for f in schema["fields"]}


def _edited(product: str, edit: Any) -> Contract:
    data = yaml.safe_load((ROOT / "domains" / product / "datacontract.yaml").read_text(encoding="utf-8"))
    edit(data)
    return parse_contract(YamlDocument(path=Path("datacontract.yaml"), data=copy.deepcopy(data), lines={}))


def test_table_record_maps_each_logical_type() -> None:
    schema = avro_schema(_load("customers/users"))
    assert (schema["type"], schema["name"], schema["namespace"]) == ("record", "users", "meshkit.customers")
    fields = _fields(schema)
    assert fields["user_id"]["type"] == {"type": "string", "logicalType": "uuid"}
    assert fields["credit_limit"]["type"] == {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
    assert fields["created_at"]["type"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert fields["birth_date"]["type"] == {"type": "int", "logicalType": "date"}
    assert fields["phone"]["type"] == ["null", "string"] and fields["phone"]["default"] is None
    assert "default" not in fields["cpf"]
    assert fields["state"]["type"]["type"] == "string" and "SP" in fields["state"]["type"]["validValues"]
    assert fields["cpf"]["doc"].startswith("Eleven digits")


def test_local_time_nested_record_and_array_columns() -> None:
    def edit(data: dict[str, Any]) -> None:
        props = data["schema"][0]["properties"]
        props.append({"name": "opened_local", "logicalType": "timestamp", "physicalType": "DATETIME"})
        props.append({"name": "call_time", "logicalType": "time", "required": True})
        props.append(
            {
                "name": "address",
                "logicalType": "object",
                "properties": [
                    {"name": "city", "logicalType": "string", "required": True},
                    {"name": "zip", "logicalType": "string"},
                ],
            }
        )
        props.append({"name": "tags", "logicalType": "array", "items": {"name": "tag", "logicalType": "string"}})
        props.append({"name": "extras", "logicalType": "object", "physicalType": "JSON"})

    contract = _edited("customers/users", edit)
    fields = _fields(avro_schema(contract))
    assert fields["opened_local"]["type"][1] == {"type": "long", "logicalType": "local-timestamp-micros"}
    assert fields["call_time"]["type"] == {"type": "long", "logicalType": "time-micros"}
    address = fields["address"]["type"][1]
    assert address["type"] == "record" and address["name"] == "users_address"
    assert _fields(address)["city"]["type"] == "string" and _fields(address)["zip"]["type"] == ["null", "string"]
    assert fields["tags"]["type"][1] == {"type": "array", "items": "string"}
    assert fields["extras"]["type"][1] == {"type": "string", "meshkit.json": True}
    for kind in ENVELOPE_KINDS:
        fastavro.parse_schema(envelope_schema(contract, kind), named_schemas={})


def test_value_record_uses_source_fields_and_only_keys_are_required() -> None:
    contract = _load("payments/transactions")
    fields = _fields(value_schema(contract))
    assert "amount_band" not in fields  # derived by the domain transform, never on the bus
    assert {"id", "customerId", "pixKey"} <= set(fields)
    assert fields["id"]["type"] == {"type": "string", "logicalType": "uuid"}
    assert fields["amount"]["type"][0] == "null"  # required is a per-event rule the pipeline dead-letters


def test_envelope_kinds_follow_the_source() -> None:
    assert envelope_kind(_load("customers/users")) == "cosmos-all-versions"
    assert envelope_kind(_load("payments/transactions")) == "cosmos-latest"

    def postgres(data: dict[str, Any]) -> None:
        data["servers"][0]["customProperties"][0]["value"] = "postgresql"

    debezium = envelope_schema(_edited("customers/users", postgres))
    assert debezium["name"] == "Envelope"
    assert [f["name"] for f in debezium["fields"]] == ["before", "after", "op", "source", "ts_ms"]
    latest = _fields(envelope_schema(_load("payments/transactions")))
    assert latest["_lsn"]["type"] == "long" and latest["_ts"]["type"] == "long"


def test_invalid_avro_names_and_modes_are_contract_errors() -> None:
    def bad_field(data: dict[str, Any]) -> None:
        data["schema"][0]["properties"][1].setdefault("customProperties", []).append(
            {"property": "sourceField", "value": "full-name"}
        )

    with pytest.raises(ContractError, match="not a valid Avro field name"):
        value_schema(_edited("customers/users", bad_field))

    def mode(data: dict[str, Any]) -> None:
        data["customProperties"] = [{"property": "schemaCompatibility", "value": "sideways"}]

    with pytest.raises(ContractError, match="Valid values are: backward, forward, full, none"):
        compatibility_mode(_edited("customers/users", mode))
    assert compatibility_mode(_load("customers/users")) == "backward"


def _golden(product: str) -> dict[str, Any]:
    contract = _load(product)
    return {"table": avro_schema(contract), "envelope": envelope_schema(contract)}


@pytest.mark.parametrize("product", PRODUCTS)
def test_golden_schemas(product: str) -> None:
    """Reviewed like code; regenerate with MESHKIT_UPDATE_GOLDEN=1 after an intended change."""
    path = GOLDEN / f"{product.replace('/', '__')}.avsc.json"
    text = json.dumps(_golden(product), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("MESHKIT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with MESHKIT_UPDATE_GOLDEN=1"
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(text)


class _Collect:
    """A transport that keeps what it is asked to publish."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, records: Any) -> list[tuple[int, int]]:
        self.records += list(records)
        return [(0, i) for i in range(len(self.records))]


def _feed(contract: Contract) -> Any:
    mode = None if contract.source else "latestVersion"
    config = SimulationConfig(events=600, seed=11, rate_per_second=5.0, mode=mode)
    return ChangeFeedSimulator(contract, config).generate()


@pytest.mark.parametrize("product", PRODUCTS)
def test_simulated_documents_round_trip_exactly(product: str, tmp_path: Path) -> None:
    contract = _load(product)
    feed = _feed(contract)
    valid = [item for i, item in enumerate(feed.items) if i not in feed.malformed]
    schema = envelope_schema(contract)
    sink = _Collect()
    producer = AvroProducer(sink, LocalRegistry(tmp_path / "registry"), f"{product}-value", schema)  # type: ignore[arg-type]
    producer.publish([("k", body, {"source": "test"}) for body in valid])
    assert producer.fallbacks == 0
    bodies = [body for _, body, _ in sink.records]
    assert all(p["contentType"] == "application/vnd.confluent.avro" and p["source"] == "test" for *_, p in sink.records)
    typed, reasons = decode_batch(bodies, producer.registry, schema, plain=False)
    assert reasons == [None] * len(valid)
    converters = {c.source_field: compile_column(c) for c in contract.source_columns}
    kinds = {"decimal": 0, "timestamp": 0, "date": 0}
    for body, event in zip(valid, typed, strict=True):
        assert event is not None
        original = parse_envelope(orjson.loads(body)).document
        document = parse_envelope(event).document
        for field, convert in converters.items():
            if field not in original:
                continue
            expected, got = convert(original[field]), document[field]
            if isinstance(got, str) and not isinstance(expected, str):
                got = convert(got)
            assert got == expected, (field, original[field], got)
            for kind, cls in (("decimal", Decimal), ("timestamp", datetime), ("date", date)):
                kinds[kind] += isinstance(got, cls)
    assert kinds["decimal"] and kinds["timestamp"], kinds
    assert kinds["date"] or product != "customers/users"


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_pipeline_decodes_avro_events_as_their_json(product: str, tmp_path: Path) -> None:
    """The decoding seam sees the same events either way: same Arrow rows, same dead letters."""
    contract = _load(product)
    feed = _feed(contract)
    schema = envelope_schema(contract)
    sink = _Collect()
    producer = AvroProducer(sink, LocalRegistry(tmp_path / "registry"), f"{product}-value", schema)  # type: ignore[arg-type]
    producer.publish([("k", body, {}) for body in feed.items])
    assert producer.fallbacks >= len(feed.malformed) // 2  # what Avro cannot hold travels as JSON
    bodies = [b for _, b, _ in sink.records]
    events, reasons = decode_batch(bodies, producer.registry, schema, [p["contentType"] for *_, p in sink.records])
    decodable = [orjson.dumps(e) if e is not None else b"\xff" for e in events]
    decoder = ChangeEventDecoder(contract)
    from_json, from_avro = decoder.decode(raw_batch(list(feed.items))), decoder.decode(raw_batch(decodable))
    assert from_avro.events.equals(from_json.events)
    assert from_avro.dead_letters.num_rows == from_json.dead_letters.num_rows
    assert set(reasons) <= {None, "invalid-json"}
