"""Contract -> BigQuery schema, Arrow schema and DDL from the one type mapping."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from meshkit.cli import main
from meshkit.contracts.bigquery import (
    CHANGELOG_META,
    CURRENT_META,
    PIPELINE_COLUMNS,
    TABLE_KINDS,
    arrow_schema,
    bigquery_ddl,
    bigquery_schema,
    table_options,
)
from meshkit.contracts.model import Contract, load_contract
from meshkit.contracts.types import (
    ARROW_OF_BIGQUERY,
    BIGQUERY_TYPES,
    LOGICAL_TYPES,
    BigQueryType,
    arrow_type,
    bigquery_of_arrow,
    bigquery_type,
    column_type,
)
from meshkit.errors import ContractError

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "bigquery"
PRODUCTS = ("customers/users", "payments/transactions", "risk/customer-exposure")
TAXONOMY = "projects/lake/locations/southamerica-east1/taxonomies/42"


def contract_of(product: str) -> Contract:
    return load_contract(ROOT / "domains" / product / "datacontract.yaml")


def contract_with(tmp_path: Path, properties: list[dict[str, Any]], **table: Any) -> Contract:
    """The users contract with its schema's properties replaced (and schema-object fields set)."""
    data = yaml.safe_load((ROOT / "domains/customers/users/datacontract.yaml").read_text())
    data["schema"][0]["properties"] = properties
    data["schema"][0].update(table)
    path = tmp_path / "datacontract.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_contract(path)


def by_name(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in fields}


# (logicalType, physicalType, options) -> (BigQuery type SQL, Arrow type): what the mapping must say
EXPECTED = [
    ("string", "STRING", {}, "STRING", pa.string()),
    ("string", "VARCHAR(80)", {}, "STRING", pa.string()),
    ("string", None, {}, "STRING", pa.string()),
    ("string", "BYTES", {}, "BYTES", pa.binary()),
    ("integer", "INT64", {}, "INT64", pa.int64()),
    ("integer", "BIGINT", {}, "INT64", pa.int64()),
    ("number", "NUMERIC(18,2)", {}, "NUMERIC(18, 2)", pa.decimal128(18, 2)),
    ("number", "NUMERIC", {}, "NUMERIC(38, 9)", pa.decimal128(38, 9)),
    ("number", "DECIMAL(40,2)", {}, "BIGNUMERIC(40, 2)", pa.decimal256(40, 2)),  # beyond NUMERIC's digits
    ("number", "BIGNUMERIC(50,10)", {}, "BIGNUMERIC(50, 10)", pa.decimal256(50, 10)),
    ("number", "BIGNUMERIC", {}, "BIGNUMERIC(76, 38)", pa.decimal256(76, 38)),
    ("number", "FLOAT64", {}, "FLOAT64", pa.float64()),
    ("number", None, {}, "FLOAT64", pa.float64()),
    ("boolean", "BOOL", {}, "BOOL", pa.bool_()),
    ("date", "DATE", {}, "DATE", pa.date32()),
    ("timestamp", "TIMESTAMP", {"timezone": True}, "TIMESTAMP", pa.timestamp("us", tz="UTC")),
    ("timestamp", "TIMESTAMP", {}, "TIMESTAMP", pa.timestamp("us", tz="UTC")),
    ("timestamp", "TIMESTAMP", {"timezone": False}, "DATETIME", pa.timestamp("us")),
    ("timestamp", "DATETIME", {}, "DATETIME", pa.timestamp("us")),
    ("timestamp", "TIMESTAMP_NTZ", {}, "DATETIME", pa.timestamp("us")),
    ("time", "TIME", {}, "TIME", pa.time64("us")),
    ("object", "JSON", {}, "JSON", pa.string()),
    ("object", None, {}, "JSON", pa.string()),  # no nested properties known: JSON text
    ("array", None, {}, "JSON", pa.string()),
]


@pytest.mark.parametrize(("logical", "physical", "options", "bq", "arrow"), EXPECTED)
def test_each_type_maps_to_bigquery_and_arrow(logical, physical, options, bq, arrow) -> None:
    assert bigquery_type(logical, physical, options).sql == bq
    assert arrow_type(logical, physical, options) == arrow


def test_the_one_table_walked_both_ways() -> None:
    """Every (logical, physical) row: the Arrow type is the BigQuery decision seen through Arrow, and
    reading that Arrow type back gives the same BigQuery type (JSON reads back as its text carrier)."""
    assert {logical for logical, _ in BIGQUERY_TYPES} == set(LOGICAL_TYPES)
    for (logical, physical), name in BIGQUERY_TYPES.items():
        bq = bigquery_type(logical, physical or None, {})
        if name in ("RECORD", "REPEATED"):
            assert bq.name == "JSON", (logical, physical)
        elif logical == "timestamp":
            assert bq.name == name
        else:
            assert bq.name in (name, "BIGNUMERIC"), (logical, physical)
        arrow = arrow_type(logical, physical or None, {})
        assert arrow == ARROW_OF_BIGQUERY[bq.name](bq.precision or 0, bq.scale or 0)
        back = bigquery_of_arrow(arrow)
        assert back == (BigQueryType("STRING") if bq.name == "JSON" else bq), (logical, physical)


def test_nested_records_and_repeated_columns(tmp_path: Path) -> None:
    contract = contract_with(
        tmp_path,
        [
            {"name": "id", "logicalType": "string", "physicalType": "STRING", "required": True, "primaryKey": True},
            {
                "name": "address",
                "logicalType": "object",
                "description": "Postal address.",
                "properties": [
                    {"name": "city", "logicalType": "string", "required": True},
                    {"name": "zip", "logicalType": "string", "classification": "restricted"},
                    {
                        "name": "geo",
                        "logicalType": "object",
                        "properties": [{"name": "lat", "logicalType": "number", "physicalType": "FLOAT64"}],
                    },
                ],
            },
            {"name": "tags", "logicalType": "array", "items": {"logicalType": "string", "physicalType": "STRING"}},
            {
                "name": "limits",
                "logicalType": "array",
                "required": True,
                "items": {
                    "logicalType": "object",
                    "properties": [
                        {"name": "amount", "logicalType": "number", "physicalType": "NUMERIC(18,2)", "required": True},
                        {"name": "since", "logicalType": "date"},
                    ],
                },
            },
            {"name": "raw", "logicalType": "object", "physicalType": "JSON", "properties": [{"name": "a"}]},
        ],
    )
    fields = by_name(bigquery_schema(contract, policy_taxonomy=TAXONOMY))
    address = fields["address"]
    assert (address["type"], address["mode"], address["description"]) == ("RECORD", "NULLABLE", "Postal address.")
    nested = by_name(address["fields"])
    assert nested["city"] == {"name": "city", "type": "STRING", "mode": "REQUIRED"}
    assert nested["zip"]["policyTags"] == {"names": [f"{TAXONOMY}/policyTags/restricted"]}
    assert by_name(nested["geo"]["fields"])["lat"]["type"] == "FLOAT64"
    assert (fields["tags"]["type"], fields["tags"]["mode"]) == ("STRING", "REPEATED")
    limits = fields["limits"]
    assert (limits["type"], limits["mode"]) == ("RECORD", "REPEATED")  # REPEATED wins over required
    assert by_name(limits["fields"])["amount"] == {
        "name": "amount",
        "type": "NUMERIC",
        "mode": "REQUIRED",
        "precision": "18",
        "scale": "2",
    }
    assert fields["raw"]["type"] == "JSON"  # declared JSON keeps its properties as documentation only
    schema = arrow_schema(contract)
    assert schema.field("address").type == pa.struct(
        [
            pa.field("city", pa.string(), nullable=False),
            pa.field("zip", pa.string()),
            pa.field("geo", pa.struct([pa.field("lat", pa.float64())])),
        ]
    )
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("limits").type == pa.list_(
        pa.struct([pa.field("amount", pa.decimal128(18, 2), nullable=False), pa.field("since", pa.date32())])
    )
    # the Arrow schema reads back as the same BigQuery types
    assert bigquery_of_arrow(schema.field("limits").type) == column_type(contract.column("limits"))
    assert "`limits` ARRAY<STRUCT<`amount` NUMERIC(18, 2) NOT NULL, `since` DATE>>" in bigquery_ddl(contract, "ds")


def test_an_array_of_arrays_is_refused(tmp_path: Path) -> None:
    contract = contract_with(
        tmp_path,
        [{"name": "m", "logicalType": "array", "items": {"logicalType": "array", "items": {"logicalType": "integer"}}}],
    )
    with pytest.raises(ContractError, match="`m` is an array of arrays"):
        bigquery_schema(contract, policy_taxonomy=None)


def test_money_keeps_precision_and_scale() -> None:
    fields = by_name(bigquery_schema(contract_of("payments/transactions"), policy_taxonomy=None))
    assert fields["amount"] | {"description": ""} == {
        "name": "amount",
        "type": "NUMERIC",
        "mode": "REQUIRED",
        "precision": "18",
        "scale": "2",
        "description": "",
    }
    assert fields["occurred_at"]["type"] == "TIMESTAMP"


def test_policy_tags_on_classified_and_personal_columns(tmp_path: Path) -> None:
    fields = by_name(bigquery_schema(contract_of("customers/users"), policy_taxonomy=TAXONOMY))
    tagged = {n: f["policyTags"]["names"] for n, f in fields.items() if "policyTags" in f}
    restricted = [f"{TAXONOMY}/policyTags/restricted"]
    assert tagged == dict.fromkeys(("full_name", "cpf", "email", "phone", "birth_date"), restricted)
    # masked tables keep the tags: a hash still joins, so who may read it is still governed
    current = by_name(bigquery_schema(contract_of("customers/users"), policy_taxonomy=TAXONOMY, kind="current"))
    assert current["cpf"]["policyTags"]["names"] == restricted
    assert (current["cpf"]["type"], current["birth_date"]["type"]) == ("STRING", "STRING")
    assert "HMAC" in current["cpf"]["description"]
    payments = by_name(bigquery_schema(contract_of("payments/transactions"), policy_taxonomy=TAXONOMY))
    assert [n for n, f in payments.items() if "policyTags" in f] == ["counterparty_key"]
    assert not any("policyTags" in f for f in bigquery_schema(contract_of("customers/users"), policy_taxonomy=None))
    personal = contract_with(
        tmp_path,
        [
            {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
            {
                "name": "nickname",
                "logicalType": "string",
                "classification": "internal",
                "customProperties": [{"property": "personalData", "value": True}],
            },
            {"name": "secret", "logicalType": "string", "classification": "confidential"},
        ],
    )
    tags = {f["name"]: f.get("policyTags") for f in bigquery_schema(personal, policy_taxonomy=TAXONOMY)}
    assert tags == {
        "id": None,
        "nickname": {"names": [f"{TAXONOMY}/policyTags/pii"]},
        "secret": {"names": [f"{TAXONOMY}/policyTags/confidential"]},
    }


def test_modes_per_table_kind() -> None:
    users = contract_of("customers/users")
    contract = by_name(bigquery_schema(users, policy_taxonomy=None))
    changelog = by_name(bigquery_schema(users, policy_taxonomy=None, kind="changelog"))
    current = by_name(bigquery_schema(users, policy_taxonomy=None, kind="current"))
    assert (contract["email"]["mode"], contract["phone"]["mode"]) == ("REQUIRED", "NULLABLE")
    assert changelog["user_id"]["mode"] == "REQUIRED"
    assert changelog["email"]["mode"] == "NULLABLE"  # a delete carries its key only
    assert current["email"]["mode"] == "REQUIRED"
    assert list(changelog)[-len(CHANGELOG_META) :] == list(CHANGELOG_META)
    assert list(current)[-len(CURRENT_META) :] == list(CURRENT_META)
    assert not any(n.startswith("_") for n in contract)


def test_pipeline_columns_agree_with_what_the_pipeline_writes() -> None:
    from pipelines.events import META_FIELDS
    from pipelines.transforms.decode import source_schema
    from pipelines.transforms.mask import MaskingPlan

    written = [*META_FIELDS, pa.field("_ingested_at", pa.timestamp("us", tz="UTC")), pa.field("_run_id", pa.string())]
    for f in written:
        assert bigquery_of_arrow(f.type).name == PIPELINE_COLUMNS[f.name][0], f.name
    assert [f.name for f in written] == list(CHANGELOG_META)
    for product in PRODUCTS[:2]:
        contract = contract_of(product)
        masked = MaskingPlan.from_contract(contract, source_schema(contract)).schema
        derived = arrow_schema(contract, "changelog")
        for f in masked:
            assert bigquery_of_arrow(f.type) == bigquery_of_arrow(derived.field(f.name).type), (product, f.name)


def test_partitioning_and_clustering_of_the_example_products() -> None:
    options = {(p, k): table_options(contract_of(p), k) for p in PRODUCTS for k in TABLE_KINDS}
    got = {key: (o.partition_field, o.partition_type, o.clustering) for key, o in options.items()}
    assert got == {
        ("customers/users", "contract"): (None, "DAY", ("user_id",)),  # ingestion time: nothing declared
        ("customers/users", "changelog"): ("_ingested_at", "DAY", ("_key", "_lsn")),
        ("customers/users", "current"): (None, None, ("_key", "user_id")),
        ("payments/transactions", "contract"): ("occurred_at", "DAY", ("transaction_id",)),
        ("payments/transactions", "changelog"): ("_ingested_at", "DAY", ("_key", "_lsn")),
        ("payments/transactions", "current"): ("occurred_at", "DAY", ("_key", "transaction_id")),
        ("risk/customer-exposure", "contract"): (None, "DAY", ("customer_id",)),
        ("risk/customer-exposure", "changelog"): ("_ingested_at", "DAY", ("_key", "_lsn")),
        ("risk/customer-exposure", "current"): (None, None, ("_key", "customer_id")),
    }
    assert options["payments/transactions", "current"].to_api() == {
        "timePartitioning": {"type": "DAY", "field": "occurred_at"},
        "clustering": {"fields": ["_key", "transaction_id"]},
    }
    assert options["customers/users", "contract"].to_api()["timePartitioning"] == {"type": "DAY"}


def test_declared_clustering_and_bad_partition_columns(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "domains/payments/transactions/datacontract.yaml").read_text())
    props = data["schema"][0]["properties"]
    for name, position in (("status", 2), ("customer_id", 1)):
        prop = next(p for p in props if p["name"] == name)
        prop.setdefault("customProperties", []).append({"property": "clusterKeyPosition", "value": position})
    path = tmp_path / "datacontract.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert table_options(load_contract(path)).clustering == ("customer_id", "status")
    bad = copy.deepcopy(data)
    next(p for p in bad["schema"][0]["properties"] if p["name"] == "method")["partitioned"] = True
    for p in bad["schema"][0]["properties"]:
        if p["name"] == "occurred_at":
            p["partitioned"] = False
    path.write_text(yaml.safe_dump(bad, sort_keys=False))
    with pytest.raises(ContractError, match="column `method` is partitioned"):
        table_options(load_contract(path))


def test_ddl_text() -> None:
    ddl = bigquery_ddl(contract_of("payments/transactions"), "fintech-lake-prod.payments", "current")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `fintech-lake-prod.payments.transactions_current` (\n")
    assert '  `amount` NUMERIC(18, 2) NOT NULL OPTIONS(description="Amount (BRL)"),\n' in ddl
    assert "  `merchant_name` STRING,\n" in ddl
    assert "\nPARTITION BY DATE(`occurred_at`)\nCLUSTER BY `_key`, `transaction_id`\n" in ddl
    assert ddl.endswith('OPTIONS(description="One row per card or PIX transaction.");\n')
    users = bigquery_ddl(contract_of("customers/users"), "lake.customers")
    assert "\nPARTITION BY _PARTITIONDATE\nCLUSTER BY `user_id`\n" in users
    assert "`birth_date` DATE NOT NULL" in users


def golden_document(product: str) -> dict[str, Any]:
    contract = contract_of(product)
    return {
        kind: {
            "options": table_options(contract, kind).to_api(),
            "fields": bigquery_schema(contract, policy_taxonomy=TAXONOMY, kind=kind),
        }
        for kind in TABLE_KINDS
    }


@pytest.mark.parametrize("product", PRODUCTS)
def test_golden_schemas(product: str) -> None:
    """Reviewed like code; regenerate with MESHKIT_UPDATE_GOLDEN=1 after an intended change."""
    path = GOLDEN / f"{product.replace('/', '__')}.json"
    text = json.dumps(golden_document(product), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("MESHKIT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with MESHKIT_UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == json.loads(text)


def test_schema_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHKIT_POLICY_TAG_TAXONOMY", TAXONOMY)
    assert main(["--root", str(ROOT), "schema", "customers/users", "--kind", "changelog"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["tableId"] == "users_changelog"
    assert table["timePartitioning"] == {"type": "DAY", "field": "_ingested_at"}
    assert by_name(table["schema"]["fields"])["cpf"]["policyTags"]["names"] == [f"{TAXONOMY}/policyTags/restricted"]
    assert main(["--root", str(ROOT), "schema", "payments/transactions", "--target", "ddl"]) == 0
    assert "`fintech-lake-prod.payments.transactions`" in capsys.readouterr().out
    assert main(["--root", str(ROOT), "schema", "payments/transactions", "--target", "arrow"]) == 0
    assert "amount: decimal128(18, 2) not null" in capsys.readouterr().out
