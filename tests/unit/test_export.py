"""Exports of the example contracts (JSON Schema, Avro, BigQuery DDL, dbt sources), the Avro round trip
through `from_avro`, and the pure halves of the importers (document profiling, type tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from jsonschema import Draft202012Validator

from governance.interop.document import needs_privacy_review, snake_case
from governance.interop.exporters import to_avro, to_bigquery_ddl, to_dbt_sources, to_json_schema
from governance.interop.importers import BIGQUERY_OF_POSTGRES, from_avro
from governance.interop.inference import profile_documents, properties_of
from governance.interop.product import export_text, plain_yaml
from governance.validation.contract_schema import schema_checks
from governance.validation.contract_semantics import semantic_checks
from meshkit.checks import Status
from meshkit.cli import main
from meshkit.contracts.avro import avro_schema
from meshkit.contracts.bigquery import bigquery_schema, field_type
from meshkit.contracts.model import Contract, load_contract, parse_contract
from meshkit.contracts.types import column_type
from meshkit.yamlio import YamlDocument
from pipelines.sources.postgres.values import CONVERTERS
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ("customers/users", "payments/transactions", "risk/customer-exposure")


def _contract(ref: str) -> Contract:
    return load_contract(ROOT / "domains" / ref / "datacontract.yaml")


def _parse(document: dict[str, Any], name: str = "imported.yaml") -> Contract:
    return parse_contract(YamlDocument(Path(name), document, {}))


def _errors(document: dict[str, Any]) -> list[str]:
    """Failures of the official schema and meshkit's semantic checks (warnings are allowed)."""
    doc = YamlDocument(Path("imported.yaml"), json.loads(json.dumps(document)), {})
    checks = schema_checks(doc)
    if not checks:
        checks = semantic_checks(parse_contract(doc))
    return [f"{c.field}: {c.reason}" for c in checks if c.status in (Status.FAILED, Status.ERROR)]


def _feed(contract: Contract, events: int = 300, malformed_rate: float = 0.0) -> Any:
    config = SimulationConfig(events=events, seed=11, malformed_rate=malformed_rate, duplicate_rate=0.0)
    if contract.source is None:  # a refined product: simulate rows of its own table as documents
        config = SimulationConfig(
            events=events, seed=11, malformed_rate=malformed_rate, duplicate_rate=0.0,
            mode="latestVersion", rate_per_second=10.0,
        )  # fmt: skip
    return ChangeFeedSimulator(contract, config).generate()


def _documents(items: list[bytes]) -> list[dict[str, Any]]:
    """The documents of change-feed items (the `current` image in all-versions mode; deletes carry none)."""
    docs = []
    for raw in items:
        item = json.loads(raw)
        doc = item.get("current", item) if isinstance(item, dict) else item
        if doc:
            docs.append(doc)
    return docs


# ---- JSON Schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", PRODUCTS)
def test_json_schema_accepts_every_valid_simulated_document(ref: str) -> None:
    contract = _contract(ref)
    schema = to_json_schema(contract)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    documents = _documents(_feed(contract).items)
    assert len(documents) > 100
    problems = [f"{e.json_path}: {e.message}" for doc in documents for e in validator.iter_errors(doc)]
    assert problems == []


@pytest.mark.parametrize("ref", ["customers/users", "payments/transactions"])
def test_json_schema_rejects_the_simulators_malformed_documents(ref: str) -> None:
    contract = _contract(ref)
    validator = Draft202012Validator(to_json_schema(contract), format_checker=Draft202012Validator.FORMAT_CHECKER)
    feed = _feed(contract, events=600, malformed_rate=0.05)
    judged = {"missing_required", "wrong_type", "enum_violation", "pattern_violation"}
    bad = {i: kind for i, kind in feed.malformed.items() if kind in judged}
    assert {"missing_required", "wrong_type", "enum_violation"} <= set(bad.values())
    for index, kind in bad.items():
        (document,) = _documents([feed.items[index]])
        assert not validator.is_valid(document), f"a {kind} document passed: {document}"


def test_json_schema_maps_formats_enums_patterns_lengths_and_ranges() -> None:
    users = to_json_schema(_contract("customers/users"))
    props = users["properties"]
    assert users["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert props["id"] == {"description": "Cosmos DB document id of the user.", "type": "string", "format": "uuid"}
    assert props["birth_date"]["format"] == "date" and props["created_at"]["format"] == "date-time"
    assert props["cpf"]["pattern"] == "^[0-9]{11}$"
    assert (props["full_name"]["minLength"], props["full_name"]["maxLength"]) == (3, 120)
    assert props["credit_limit"]["type"] == "number" and props["credit_limit"]["maximum"] == 1000000
    assert props["phone"]["type"] == ["string", "null"]  # optional: null allowed, and not required
    assert "phone" not in users["required"] and "cpf" in users["required"]
    assert "RJ" in props["state"]["enum"]
    tx = to_json_schema(_contract("payments/transactions"))
    assert "amount_band" not in tx["properties"]  # derived by the domain transform, not in documents
    assert tx["properties"]["pixKey"]["type"] == ["string", "null"]  # source field names
    row = to_json_schema(_contract("payments/transactions"), "row")
    assert "amount_band" in row["properties"] and "counterparty_key" in row["properties"]
    assert row["additionalProperties"] is False
    bad = dict.fromkeys(row["required"], "x")
    assert not Draft202012Validator(row).is_valid(bad)


# ---- Avro, DDL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", PRODUCTS)
def test_avro_export_is_the_contracts_table_record(ref: str) -> None:
    contract = _contract(ref)
    exported = to_avro(contract)
    assert exported == avro_schema(contract)
    fastavro.parse_schema(exported)  # a valid Avro schema
    assert json.loads(export_text(contract, "avro")) == exported


@pytest.mark.parametrize("ref", PRODUCTS)
def test_bigquery_ddl_export_declares_every_column_with_its_type(ref: str) -> None:
    contract = _contract(ref)
    lake = contract.server("bigquery")
    assert lake is not None
    ddl = to_bigquery_ddl(contract)
    assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS `{lake.project}.{lake.dataset}.{contract.table_name}` (")
    for column in contract.columns:
        assert f"`{column.name}` {column_type(column).sql}" in ddl
    assert to_bigquery_ddl(contract, "sandbox").startswith(
        f"CREATE TABLE IF NOT EXISTS `sandbox.{contract.table_name}`"
    )


# ---- dbt -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", PRODUCTS)
def test_dbt_sources_shape(ref: str) -> None:
    contract = _contract(ref)
    lake = contract.server("bigquery")
    assert lake is not None
    sources = to_dbt_sources(contract)
    text = export_text(contract, "dbt")
    assert yaml.safe_load(text) == sources and "&id" not in text  # plain YAML, no anchors
    assert sources["version"] == 2
    (source,) = sources["sources"]
    assert (source["name"], source["database"], source["schema"]) == (lake.dataset, lake.project, lake.dataset)
    assert source["meta"]["contract_id"] == contract.id
    tables = {t["name"]: t for t in source["tables"]}
    assert set(tables) == {f"{contract.table_name}_current", f"{contract.table_name}_changelog"}
    for kind in ("current", "changelog"):
        table = tables[f"{contract.table_name}_{kind}"]
        fields = bigquery_schema(contract, policy_taxonomy=None, kind=kind)  # type: ignore[arg-type]
        assert [c["name"] for c in table["columns"]] == [f["name"] for f in fields]
        assert [c["data_type"] for c in table["columns"]] == [field_type(f).sql for f in fields]
        assert table["loaded_at_field"] == "_ingested_at"
    current = {c["name"]: c for c in tables[f"{contract.table_name}_current"]["columns"]}
    (key,) = contract.primary_key
    assert {"not_null", "unique"} <= set(current[key]["tests"])
    assert "unique" in current["_key"]["tests"]


def test_dbt_tests_meta_and_freshness_follow_the_contract() -> None:
    users = to_dbt_sources(_contract("customers/users"))["sources"][0]
    assert users["meta"]["owner"] == "ana.souza@fintech.example"
    current = {c["name"]: c for c in users["tables"][0]["columns"]}
    assert {"accepted_values": {"values": ["retail", "premium", "private", "business"]}} in current["segment"]["tests"]
    assert "unique" in current["cpf"]["tests"]  # unique in the contract; an HMAC keeps it unique
    assert current["cpf"]["meta"] == {"classification": "restricted", "personal_data": True, "masking": "hash"}
    assert "not_null" not in current.get("phone", {}).get("tests", [])
    assert users["tables"][0]["freshness"]["error_after"] == {"count": 15, "period": "minute"}  # latency 15 m
    changelog = {c["name"]: c for c in users["tables"][1]["columns"]}
    assert "unique" not in changelog["user_id"].get("tests", [])  # one row per change
    tx = to_dbt_sources(_contract("payments/transactions"))["sources"][0]
    assert tx["tables"][0]["freshness"]["error_after"] == {"count": 5, "period": "minute"}


# ---- round trip and the importers' pure halves -------------------------------------------------------


@pytest.mark.parametrize("ref", PRODUCTS)
def test_contract_to_avro_and_back_keeps_columns_and_types(ref: str) -> None:
    contract = _contract(ref)
    document = from_avro(json.dumps(to_avro(contract)), product=f"{contract.domain}/copy")
    assert _errors(document) == []
    imported = _parse(document)
    assert imported.table_name == contract.table_name
    before = [(c.name, column_type(c).sql, c.required, c.valid_values) for c in contract.columns]
    after = [(c.name, column_type(c).sql, c.required, c.valid_values) for c in imported.columns]
    assert after == before


def test_avro_import_reads_unions_logical_types_records_and_arrays() -> None:
    schema = {
        "type": "record",
        "name": "Purchase",
        "namespace": "shop.sales",
        "doc": "Orders as the shop publishes them.",
        "fields": [
            {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
            {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "local_at", "type": ["null", {"type": "long", "logicalType": "local-timestamp-micros"}]},
            {"name": "ship_on", "type": ["null", {"type": "int", "logicalType": "date"}], "default": None},
            {"name": "slot", "type": {"type": "long", "logicalType": "time-micros"}},
            {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
            {"name": "customer_email", "type": ["null", "string"], "doc": "Who to tell."},
            {
                "name": "lines",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Line",
                        "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}],
                    },
                },
            },
            {"name": "attributes", "type": {"type": "map", "values": "string"}},
            {"name": "either", "type": ["null", "string", "long"]},
        ],
    }
    document = from_avro(json.dumps(schema))
    assert document["id"] == "urn:meshkit:contract:sales:purchase" and document["status"] == "draft"
    assert _errors(document) == []
    contract = _parse(document)
    types = {c.name: (column_type(c).sql, c.required) for c in contract.columns}
    assert types == {
        "order_id": ("STRING", True),
        "total": ("NUMERIC(12, 2)", True),
        "placed_at": ("TIMESTAMP", True),
        "local_at": ("DATETIME", False),
        "ship_on": ("DATE", False),
        "slot": ("TIME", True),
        "status": ("STRING", True),
        "customer_email": ("STRING", False),
        "lines": ("ARRAY<STRUCT<`sku` STRING NOT NULL, `qty` INT64 NOT NULL>>", True),
        "attributes": ("JSON", True),
        "either": ("JSON", False),
    }
    assert contract.column("status").valid_values == ("NEW", "PAID")
    assert contract.column("order_id").options == {"format": "uuid"}
    assert contract.column("customer_email").classification == "todo"  # looks personal: review it
    assert "TODO" in (contract.column("either").description or "")


def test_avro_import_errors_say_what_to_do() -> None:
    from meshkit.errors import ContractError

    with pytest.raises(ContractError, match="not JSON"):
        from_avro("Obj\x01 binary")
    with pytest.raises(ContractError, match="not a record"):
        from_avro('"string"')
    with pytest.raises(ContractError, match="neither a primitive nor a type defined"):
        from_avro(json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "Later"}]}))


def test_document_profiling_infers_types_presence_and_nesting() -> None:
    docs = [
        {
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "customerId": "c1",
            "amount": 10 if i % 2 else 10.5,
            "count": i,
            "paid": True,
            "createdAt": "2026-11-01T10:00:00.123Z",
            "birthDate": "1990-01-02",
            "address": {"city": "Recife", **({"zip": "50000-000"} if i % 3 else {})},
            "tags": ["a", "b"],
            "note": None if i % 2 else "hi",
            "_rid": "x",
            "_ts": 1,
            "_etag": "e",
            **({"promo": "P"} if i == 0 else {}),
        }
        for i in range(6)
    ]
    profiles, count = profile_documents(docs)
    assert count == 6 and "_rid" not in profiles and "_ts" not in profiles
    props = {p["name"]: p for p in properties_of(profiles, count)}
    assert props["customer_id"]["customProperties"] == [{"property": "sourceField", "value": "customerId"}]
    assert props["id"]["logicalTypeOptions"] == {"format": "uuid"}
    assert (props["amount"]["physicalType"], props["count"]["physicalType"]) == ("FLOAT64", "INT64")
    assert props["created_at"]["physicalType"] == "TIMESTAMP" and props["birth_date"]["physicalType"] == "DATE"
    assert props["birth_date"]["classification"] == "TODO"  # looks personal
    assert props["paid"]["required"] is True and props["note"]["required"] is False
    assert props["promo"]["required"] is False and "17%" in props["promo"]["description"]
    nested = {p["name"]: p for p in props["address"]["properties"]}
    assert nested["city"]["required"] is True and nested["zip"]["required"] is False
    assert props["tags"]["items"]["physicalType"] == "STRING"
    clash = {p["name"]: p for p in properties_of(*profile_documents([{"id": "1", "customerId": 1, "customer_id": 2}]))}
    assert set(clash) == {"id", "customer_id", "customer_id_2"}
    assert clash["customer_id_2"]["customProperties"] == [{"property": "sourceField", "value": "customer_id"}]


def test_profiling_suggests_closed_sets_but_never_shows_personal_values() -> None:
    docs = [{"id": str(i), "status": "paid" if i % 2 else "new", "email": f"x{i % 3}@e.com"} for i in range(25)]
    props = {p["name"]: p for p in properties_of(*profile_documents(docs))}
    assert "new, paid (TODO: declare validValues" in props["status"]["description"]
    assert "@e.com" not in props["email"]["description"] and props["email"]["classification"] == "TODO"


def test_names_and_type_tables() -> None:
    assert snake_case("customerId") == "customer_id" and snake_case("Birth Date") == "birth_date"
    assert all(needs_privacy_review(n) for n in ("cpf", "email", "phoneNumber", "firstName", "birthDate"))
    assert not needs_privacy_review("amount")
    assert set(CONVERTERS) <= set(BIGQUERY_OF_POSTGRES)  # every OID the relay converts has a column type


# ---- CLI -----------------------------------------------------------------------------------------


def test_cli_import_avro_writes_a_valid_product_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from governance.validation.products import validate
    from meshkit.config import load_settings

    avsc = tmp_path / "tx.avsc"
    avsc.write_text(json.dumps(to_avro(_contract("payments/transactions"))), encoding="utf-8")
    root = tmp_path / "repo"
    assert main(["--root", str(root), "import", "avro", str(avsc), "--product", "payments/tx-copy"]) == 0
    out = capsys.readouterr().out
    assert "datacontract.yaml" in out and "0 error(s)" in out
    product = root / "domains" / "payments" / "tx-copy"
    assert {p.name for p in product.iterdir()} == {"datacontract.yaml", "dataproduct.yaml"}
    run = validate([product], load_settings(root, environ={}))
    assert run.ok, [c.reason for c in run.failures]
    assert main(["--root", str(root), "import", "avro", str(avsc), "--product", "payments/tx-copy"]) == 1
    assert "already has a contract" in capsys.readouterr().err
    assert main(["--root", str(root), "import", "avro", str(avsc), "--product", "payments/tx-copy", "--force"]) == 0
    assert main(["--root", str(root), "import", "avro", str(tmp_path / "nope.avsc"), "--product", "a/b"]) == 1
    assert "no Avro schema file" in capsys.readouterr().err
    assert main(["--root", str(root), "import", "avro", str(avsc), "--product", "Bad_Name/x"]) == 1
    assert "invalid domain name" in capsys.readouterr().err


def test_cli_export_prints_or_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(ROOT), "export", "payments/transactions", "--format", "jsonschema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "transactions (source document)"
    out = tmp_path / "sources.yml"
    assert main(["--root", str(ROOT), "export", "customers/users", "--format", "dbt", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["sources"][0]["name"] == "customers"
    assert main(["--root", str(ROOT), "export", "nope/none", "--format", "dbt"]) == 1
    assert "no data product" in capsys.readouterr().err
    assert plain_yaml({"a": [1]}) == "a:\n- 1\n"
