"""Avro on the bus: the Confluent and Azure framings, decoding with reason codes (segregated, never raised
from a batch), schema resolution of older writers, the producer over the local log, the local registry."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshkit.config import load_settings
from meshkit.contracts.avro import envelope_schema
from meshkit.contracts.model import Contract, load_contract
from meshkit.errors import ConfigError
from pipelines.serde.avro import (
    AvroDecodeError,
    AvroEventDecoder,
    AvroProducer,
    decode,
    decode_batch,
    encode,
    encode_body,
    parsed,
)
from pipelines.serde.registry import (
    IncompatibleSchemaError,
    LocalRegistry,
    SchemaNotFoundError,
    registry_from,
    subject_of,
)
from pipelines.serde.registry_confluent import ConfluentRegistry
from pipelines.transports.local_log import LocalEventLog

ROOT = Path(__file__).resolve().parents[2]
TRANSACTIONS = ROOT / "domains" / "payments" / "transactions" / "datacontract.yaml"

DOC: dict[str, Any] = {
    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "customerId": "9b2e1c4d-0000-4000-8000-000000000001",
    "method": "pix",
    "direction": "debit",
    "amount": 1234.5,
    "currency": "BRL",
    "status": "settled",
    "pixKey": "someone@example.com",
    "occurred_at": "2026-11-01T10:00:00.123456Z",
    "updated_at": "2026-11-01T10:00:01Z",
    "_lsn": 42,
    "_ts": 1793527201,
    "_etag": '"0001"',
}


@pytest.fixture
def contract() -> Contract:
    return load_contract(TRANSACTIONS)


@pytest.fixture
def registry(tmp_path: Path) -> LocalRegistry:
    return LocalRegistry(tmp_path / "registry")


def _producer(registry: LocalRegistry, schema: dict[str, Any], transport: Any = None, **kw: Any) -> AvroProducer:
    return AvroProducer(transport, registry, "payments.transactions-value", schema, **kw)


def test_confluent_wire_format_header() -> None:
    schema = {"type": "record", "name": "r", "fields": [{"name": "a", "type": "long"}]}
    payload = encode({"a": 1}, 258, parsed(schema))
    assert payload[:5] == b"\x00\x00\x00\x01\x02" and payload[5:] == b"\x02"


def test_typed_values_are_exact(contract: Contract, registry: LocalRegistry) -> None:
    schema = envelope_schema(contract)
    payload, props = _producer(registry, schema).serialise(json.dumps(DOC).encode())
    assert props == {"contentType": "application/vnd.confluent.avro"}
    event, schema_id = decode(payload, registry, schema, plain=False)
    assert schema_id == registry.latest("payments.transactions-value").id  # type: ignore[union-attr]
    assert event["amount"] == Decimal("1234.50") and event["id"] == DOC["id"]
    assert event["occurred_at"] == datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)
    plain, _ = decode(payload, registry, schema)
    assert plain["amount"] == "1234.50" and plain["occurred_at"] == "2026-11-01T10:00:00.123456+00:00"
    assert plain["merchant_name"] is None and plain["_lsn"] == 42


def test_dates_and_uuid_case_survive(registry: LocalRegistry) -> None:
    schema = {
        "type": "record",
        "name": "r",
        "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "born", "type": {"type": "int", "logicalType": "date"}},
        ],
    }
    upper = "3FA85F64-5717-4562-B3FC-2C963F66AFA6"
    payload, _ = _producer(registry, schema).serialise({"id": upper, "born": "1990-02-28"})
    assert decode(payload, registry, schema, plain=False)[0] == {"id": upper, "born": date(1990, 2, 28)}


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b'["id", 1]', "JSON where Avro is expected"),
        (b"\x00\x00\x00", "truncated header"),
        (b"\x01\x00\x00\x00\x01\x02", "bad magic byte"),
    ],
)
def test_not_avro(payload: bytes, why: str, registry: LocalRegistry) -> None:
    with pytest.raises(AvroDecodeError) as info:
        decode(payload, registry)
    assert info.value.code == "not-avro", why


def test_truncated_and_padded_bodies_are_not_avro(contract: Contract, registry: LocalRegistry) -> None:
    schema = envelope_schema(contract)
    payload, _ = _producer(registry, schema).serialise(DOC)
    _, reasons = decode_batch([payload[:-3], payload + b"\x00", payload], registry, schema)
    assert reasons == ["not-avro", "not-avro", None]


def test_unknown_and_incompatible_schemas_are_segregated_not_raised(
    contract: Contract, registry: LocalRegistry
) -> None:
    schema = envelope_schema(contract)
    good, _ = _producer(registry, schema).serialise(DOC)
    unknown = b"\x00\x00\x00\x03\xe7" + good[5:]  # id 999
    # a producer on another registry subject wrote `amount` as a string: known id, unreadable as the contract
    other = json.loads(json.dumps(schema))
    next(f for f in other["fields"] if f["name"] == "amount")["type"] = ["null", "string"]
    registry.set_mode("rogue-value", "none")
    rogue, _ = AvroProducer(None, registry, "rogue-value", other).serialise({**DOC, "amount": "12.5"})  # type: ignore[arg-type]
    events, reasons = decode_batch([good, unknown, rogue, b"junk"], registry, schema)
    assert reasons == [None, "unknown-schema", "incompatible-schema", "not-avro"]
    assert events[0] is not None and events[1:] == [None, None, None]
    decoder = AvroEventDecoder(registry, schema)
    _, errors = decoder.decode_batch_errors([unknown, rogue])
    assert errors[0] is not None and "999" in str(errors[0])
    assert errors[1] is not None and "amount" in str(errors[1])


def test_older_compatible_writer_is_resolved_to_the_reader(contract: Contract, registry: LocalRegistry) -> None:
    """A writer without a newer optional field is read with the field's default; extra fields are dropped."""
    reader = envelope_schema(contract)
    older = json.loads(json.dumps(reader))
    older["fields"] = [f for f in older["fields"] if f["name"] != "merchant_name"]
    older["fields"].append({"name": "legacy_flag", "type": "boolean", "default": False})
    payload, _ = AvroProducer(None, registry, "old-value", older).serialise({**DOC, "legacy_flag": True})  # type: ignore[arg-type]
    event, _ = decode(payload, registry, reader)
    assert event["merchant_name"] is None and "legacy_flag" not in event and event["amount"] == "1234.50"


def test_azure_framing_puts_the_id_in_the_content_type(contract: Contract, registry: LocalRegistry) -> None:
    schema = envelope_schema(contract)
    body, props = _producer(registry, schema, framing="azure").serialise(DOC)
    assert props["contentType"].startswith("avro/binary+")
    schema_id = props["contentType"].removeprefix("avro/binary+")
    assert body == encode_body(_producer(registry, schema)._convert(DOC), parsed(schema))
    event, got = decode(body, registry, schema, content_type=props["contentType"])
    assert got == schema_id and event["id"] == DOC["id"]


def test_events_that_do_not_fit_travel_as_json(contract: Contract, registry: LocalRegistry) -> None:
    schema = envelope_schema(contract)
    producer = _producer(registry, schema)
    bad = {**DOC, "amount": "12.345"}  # three decimal places in a NUMERIC(18,2)
    body, props = producer.serialise(bad)
    assert props["contentType"] == "application/json" and "amount" in props["serdeError"]
    assert producer.fallbacks == 1
    events, reasons = decode_batch([body, b"{not json"], registry, schema, ["application/json", "application/json"])
    assert events[0] == bad and reasons == [None, "invalid-json"]
    assert decode_batch([body], registry, schema)[0] == [bad]  # without its content type: `{` tells JSON


def test_producer_over_the_local_log_keeps_properties(
    contract: Contract, registry: LocalRegistry, tmp_path: Path
) -> None:
    schema = envelope_schema(contract)
    log = LocalEventLog(tmp_path / "log", "payments.transactions", 2)
    with closing(_producer(registry, schema, log)) as producer:
        producer.publish([(DOC["id"], json.dumps(DOC).encode(), {"lsn": "42"})])
        records = [r for p, end in producer.end_offsets().items() for batch in producer.read(p, 0, end) for r in batch]
    (record,) = records
    assert record.properties == {"lsn": "42", "contentType": "application/vnd.confluent.avro"}
    events, reasons = decode_batch([record.body], registry, schema, [record.properties["contentType"]])
    assert reasons == [None] and events[0]["_lsn"] == 42  # type: ignore[index]


def test_local_registry_ids_are_stable_global_and_never_reused(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "r")
    a = {"type": "record", "name": "r", "fields": [{"name": "a", "type": "long"}]}
    b = {**a, "fields": [*a["fields"], {"name": "b", "type": ["null", "string"], "default": None}]}
    first = registry.register("s-value", a)
    assert registry.register("s-value", json.loads(json.dumps(a, indent=4))) == first  # same schema, same id
    assert registry.register("t-value", a) == first  # ids are global, as in Confluent's registry
    second = registry.register("s-value", b)
    assert second > first and registry.latest("s-value").version == 2  # type: ignore[union-attr]
    again = LocalRegistry(tmp_path / "r")  # another process
    c = {**a, "name": "other"}
    assert again.register("u-value", c) == second + 1 and again.get(first) == a
    with pytest.raises(SchemaNotFoundError):
        again.get(99)


def test_local_registry_enforces_the_subject_mode(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "r")
    a = {"type": "record", "name": "r", "fields": [{"name": "a", "type": "long"}]}
    required = {**a, "fields": [*a["fields"], {"name": "b", "type": "string"}]}
    registry.register("s", a)
    assert not registry.check("s", required)
    with pytest.raises(IncompatibleSchemaError, match="BACKWARD") as info:
        registry.register("s", required)
    assert "'b'" in info.value.messages[0]
    registry.set_mode("s", "forward")
    assert registry.register("s", required) > 0
    registry.set_mode("s", "backward_transitive")
    with pytest.raises(IncompatibleSchemaError):  # compatible with the latest, not with version 1
        registry.register(
            "s", {**required, "fields": [*required["fields"], {"name": "c", "type": "long", "default": 0}]}
        )
    with pytest.raises(ConfigError, match="Valid values"):
        registry.set_mode("s", "sideways")


def test_registry_per_profile(tmp_path: Path) -> None:
    local = load_settings(ROOT, overrides={"workspace": str(tmp_path), "bus_format": "avro"}, environ={})
    assert isinstance(registry_from(local), LocalRegistry)
    confluent = load_settings(ROOT, overrides={"registry_url": "http://127.0.0.1:1"}, environ={})
    assert isinstance(registry_from(confluent), ConfluentRegistry)
    cloud = load_settings(ROOT, overrides={"profile": "cloud"}, environ={})
    with pytest.raises(ConfigError, match="registry_url"):
        registry_from(cloud)
    bad = load_settings(ROOT, overrides={"registry_url": "https://ns.servicebus.windows.net/x"}, environ={})
    with pytest.raises(ConfigError, match="schema group"):
        registry_from(bad)
    assert subject_of("payments.transactions") == "payments.transactions-value"


def test_relay_and_pipeline_wiring_agree(contract: Contract, tmp_path: Path) -> None:
    from pipelines.serde.bus import avro_decoder, avro_producer

    settings = load_settings(ROOT, overrides={"workspace": str(tmp_path / "ws"), "bus_format": "avro"}, environ={})
    log = LocalEventLog(settings.eventlog_dir, "payments.transactions", 2)
    with closing(avro_producer(contract, log, settings, "payments.transactions")) as bus:
        bus.publish([(DOC["id"], json.dumps(DOC).encode(), {})])
        records = [r for p, end in bus.end_offsets().items() for batch in bus.read(p, 0, end) for r in batch]
    registry = LocalRegistry(settings.workspace_dir / "registry")
    assert registry.mode("payments.transactions-value") == "backward"
    events, errors = avro_decoder(contract, settings).decode_batch_errors(
        [r.body for r in records], [r.properties.get("contentType") for r in records]
    )
    assert errors == [None] and events[0] is not None and events[0]["amount"] == "1234.50"


def test_an_unreachable_registry_is_transient_not_a_dead_letter() -> None:
    from meshkit.errors import TransientError

    unreachable = ConfluentRegistry("http://127.0.0.1:1", timeout=1)
    with pytest.raises(TransientError, match="unreachable"):
        decode_batch([b"\x00\x00\x00\x00\x07\x02"], unreachable, None)


def test_debezium_envelope_of_the_postgres_relay_round_trips(tmp_path: Path) -> None:
    """The envelope as pipelines/sources/postgres writes it: exact decimals, `Z` timestamps, a key-only delete."""
    from meshkit.contracts.model import parse_contract
    from meshkit.yamlio import YamlDocument
    from pipelines.events import parse_envelope

    data = yaml.safe_load((ROOT / "domains/customers/users/datacontract.yaml").read_text("utf-8"))
    data["servers"][0]["customProperties"][0]["value"] = "postgresql"
    users = parse_contract(YamlDocument(path=Path("datacontract.yaml"), data=data, lines={}))
    schema = envelope_schema(users)
    row = {  # a relational row carries the contract's column names (user_id, not the document's `id`)
        "user_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "full_name": "Ana Souza",
        "cpf": "12345678901",
        "email": "ana@example.com",
        "phone": None,
        "birth_date": "1990-02-28",
        "state": "SP",
        "segment": "retail",
        "kyc_status": "approved",
        "credit_limit": 1500.25,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-11-01T12:30:00.5Z",
    }
    source = {"version": "0.1.0", "connector": "postgresql", "name": "users", "db": "app", "schema": "public"}
    source |= {"table": "users", "lsn": 123456, "txId": 9, "ts_ms": 1793534400000, "snapshot": "false"}
    update = {"before": None, "after": row, "op": "u", "source": source, "ts_ms": 1793534400100}
    delete = {
        "before": {"user_id": row["user_id"]},
        "after": None,
        "op": "d",
        "source": {**source, "lsn": 123999},
        "ts_ms": 1,
    }
    producer = AvroProducer(None, LocalRegistry(tmp_path / "r"), "customers.users-value", schema)  # type: ignore[arg-type]
    bodies = [producer.serialise(event)[0] for event in (update, delete)]
    assert producer.fallbacks == 0
    (got_update, got_delete), reasons = decode_batch(bodies, producer.registry, schema)
    assert reasons == [None, None]
    envelope = parse_envelope(got_update)
    assert (envelope.operation, envelope.lsn) == ("update", 123456)
    assert envelope.document["credit_limit"] == "1500.25" and envelope.document["birth_date"] == "1990-02-28"
    assert envelope.document["updated_at"] == "2026-11-01T12:30:00.500000+00:00"
    gone = parse_envelope(got_delete)
    assert (gone.operation, gone.lsn, gone.document["user_id"]) == ("delete", 123999, row["user_id"])
