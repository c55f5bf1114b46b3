"""Facets are pure functions of the contract: column lineage with masking, refined sources, the
data-contract facet, quality rules judged, dataset URIs and the code location of a job."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from openlineage.client.naming import dataset as ol_naming
from openlineage.client.serde import Serde

from meshkit.config import Settings
from meshkit.contracts.model import Contract, load_contract
from meshkit.products.discovery import find_product
from monitoring.lineage import facets as f
from monitoring.lineage import naming
from monitoring.lineage.column_lineage import change_feed_lineage, identity_lineage, refined_lineage
from pipelines.quality import QualityRule, judge, measure_table, quality_rules
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables

REPO = Path(__file__).resolve().parents[2]
TOPIC = naming.DatasetName("file", "/ws/eventlog/customers.users")
USERS = naming.DatasetName("duckdb://warehouse.duckdb", "customers.users_current")
TRANSACTIONS = naming.DatasetName("duckdb://warehouse.duckdb", "payments.transactions_current")


def contract(ref: str) -> Contract:
    return load_contract(REPO / "domains" / ref / "datacontract.yaml")


def as_dict(facet: Any) -> dict[str, Any]:
    return Serde.to_dict(facet)


def transformations(lineage: dict[str, Any], column: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(i["name"], i["field"], t) for i in lineage["fields"][column]["inputFields"] for t in i["transformations"]]


def test_change_feed_columns_come_from_their_source_fields_and_show_masking() -> None:
    users = as_dict(change_feed_lineage(contract("customers/users"), TOPIC))
    assert set(users["fields"]) == {c.name for c in contract("customers/users").columns}
    [(name, field, cpf)] = transformations(users, "cpf")
    assert (name, field) == (TOPIC.name, "cpf")
    assert cpf == {
        "type": "DIRECT",
        "subtype": "TRANSFORMATION",
        "description": "HASHED (HMAC-SHA256)",
        "masking": True,
    }
    assert transformations(users, "full_name")[0][2]["description"] == "MASKED (partial)"
    assert transformations(users, "email")[0][2]["description"] == "HASHED (HMAC-SHA256)"
    [(_, field, user_id)] = transformations(users, "user_id")  # sourceField: id
    assert field == "id" and user_id == {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
    transactions = as_dict(change_feed_lineage(contract("payments/transactions"), TOPIC))
    [(_, field, pix)] = transformations(transactions, "counterparty_key")
    assert field == "pixKey" and pix["masking"] is True
    [(_, field, band)] = transformations(transactions, "amount_band")  # derived from amount
    assert field == "amount" and band["subtype"] == "TRANSFORMATION" and band["masking"] is False


def test_source_shaped_datasets_copy_every_source_field_unmasked() -> None:
    lineage = as_dict(identity_lineage(contract("payments/transactions"), TOPIC))
    assert "pixKey" in lineage["fields"] and "counterparty_key" not in lineage["fields"]
    assert "amount_band" not in lineage["fields"]  # derived later, not in the source documents
    assert {t["subtype"] for c in lineage["fields"] for *_, t in transformations(lineage, c)} == {"IDENTITY"}


def test_refined_columns_copy_at_the_output_grain_and_aggregate_the_rest() -> None:
    exposure = contract("risk/customer-exposure")
    upstream = {"users": contract("customers/users"), "transactions": contract("payments/transactions")}
    lineage = as_dict(refined_lineage(exposure, {"users": USERS, "transactions": TRANSACTIONS}, upstream))
    assert transformations(lineage, "segment") == [
        (USERS.name, "segment", {"type": "DIRECT", "subtype": "IDENTITY", "masking": False})
    ]
    total = transformations(lineage, "settled_debit_total")
    assert {(n, fld) for n, fld, _ in total} == {(TRANSACTIONS.name, c) for c in ("amount", "status", "direction")}
    assert {t["subtype"] for *_, t in total} == {"AGGREGATION"}
    assert transformations(lineage, "last_transaction_at")[0][1:] == (
        "occurred_at",
        {"type": "DIRECT", "subtype": "AGGREGATION", "masking": False},
    )
    assert {(n, fld) for n, fld, _ in transformations(lineage, "customer_id")} == {
        (USERS.name, "user_id"),
        (TRANSACTIONS.name, "customer_id"),
    }
    assert "transaction_count" not in lineage["fields"]  # no transformSourceObjects in the contract
    shaping = {(d["name"], d["field"]): [t["subtype"] for t in d["transformations"]] for d in lineage["dataset"]}
    assert shaping == {(USERS.name, "user_id"): ["JOIN"], (TRANSACTIONS.name, "customer_id"): ["JOIN", "GROUP_BY"]}


def test_the_data_contract_facet_points_at_the_contract_and_says_if_failures_block() -> None:
    users = as_dict(f.data_contract_facet(contract("customers/users")))
    assert users["_schemaURL"] == f"{f.DATA_CONTRACT_SCHEMA_URL}#/$defs/DataContractDatasetFacet"
    assert {k: users[k] for k in ("id", "version", "standard", "standardVersion", "status", "blocking")} == {
        "id": "urn:meshkit:contract:customers:users",
        "version": "1.3.0",
        "standard": "ODCS",
        "standardVersion": "v3.1.0",
        "status": "active",
        "blocking": True,  # active, and user_id_unique has severity error
    }
    assert "checksPassed" not in users  # nothing judged yet (START)
    assert f.is_blocking(contract("risk/customer-exposure")) is False  # no rule of severity error
    failed = f.CheckResult("user_id_unique", "duplicateValues", False, "user_id", "error", "= 0", "2")
    figures = f.RunFigures(output_checks={"current": (failed,)})
    judged = as_dict(f.data_contract_facet(contract("customers/users"), figures))
    assert judged["checksPassed"] is False and judged["failedChecks"] == ["user_id_unique"]


def test_a_draft_contract_never_blocks(tmp_path: Path) -> None:
    source = REPO / "domains" / "customers" / "users" / "datacontract.yaml"
    draft = tmp_path / "datacontract.yaml"
    draft.write_text(source.read_text(encoding="utf-8").replace("status: active", "status: draft", 1))
    assert f.is_blocking(load_contract(draft)) is False


def test_the_custom_facet_matches_its_shipped_schema() -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in [REPO / "tests/fixtures/openlineage/OpenLineage.json", f.SCHEMAS_DIR / "DataContractDatasetFacet.json"]
    ]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    facet = as_dict(f.data_contract_facet(contract("customers/users"), f.RunFigures()))
    Draft202012Validator({"$ref": facet["_schemaURL"]}, registry=registry).validate(facet)


def test_symlinks_and_ownership_name_the_contract_and_its_team() -> None:
    users = contract("customers/users")
    link = as_dict(f.symlinks_facet(users))["identifiers"]
    assert link == [{"namespace": "odcs", "name": "urn:meshkit:contract:customers:users", "type": "DATA_CONTRACT"}]
    owners = as_dict(f.ownership_facet(users))["owners"]
    assert {"name": "team:customers-platform", "type": "team"} in owners
    assert {"name": "user:ana.souza@fintech.example", "type": "owner"} in owners


def test_quality_rules_come_from_the_contract_with_their_bounds() -> None:
    rules = {r.name: r for r in quality_rules(contract("customers/users"))}
    assert set(rules) == {
        "state_is_brazilian_uf",
        "segment_is_known",
        "kyc_status_is_known",
        "user_id_unique",
        "has_rows",
    }
    state = rules["state_is_brazilian_uf"]
    assert (state.metric, state.columns, state.severity, state.bound) == (
        "invalidValues",
        ("state",),
        "error",
        ("mustBe", 0),
    )
    assert state.valid_values is not None and "SP" in state.valid_values
    assert rules["user_id_unique"].columns == ("user_id",)
    assert rules["has_rows"].bound == ("mustBeGreaterThan", 0)


@pytest.mark.parametrize(
    ("bound", "percent", "measured", "rows", "success", "expected"),
    [
        (("mustBe", 0), False, 0, 10, True, "= 0"),
        (("mustBe", 0), False, 2, 10, False, "= 0"),
        (("mustBeGreaterThan", 0), False, 0, 0, False, "> 0"),
        (("mustBeLessThan", 5), True, 1, 10, False, "< 5 %"),  # 10 % of the rows
        (("mustBeBetween", [1, 3]), False, 2, 10, True, "between 1 and 3"),
        (("mustNotBeBetween", [1, 3]), False, 2, 10, False, "not between 1 and 3"),
    ],
)
def test_judge_compares_a_measured_count_with_the_rule(
    bound: tuple[str, Any], percent: bool, measured: int, rows: int, success: bool, expected: str
) -> None:
    rule = QualityRule("r", "nullValues", ("c",), "error", percent, bound, None)
    result = judge(rule, measured, rows)
    assert (result.success, result.expected, result.column, result.severity) == (success, expected, "c", "error")


def test_measure_table_counts_rows_nulls_and_rule_violations(settings: Settings) -> None:
    product = find_product(settings.domains_dir, "customers/users")
    columns = [c.name for c in product.contract.columns]
    rows = {name: [None] * 4 for name in columns}
    rows["user_id"] = ["a", "a", "b", None]
    rows["state"] = ["SP", "XX", None, "RJ"]
    table = pa.table({name: pa.array(values, pa.string()) for name, values in rows.items()})
    tables = WarehouseTables.of("customers", "users")
    empty = measure_table(settings, product, "current")
    assert empty.rows == 0 and empty.rules["has_rows"] == 0
    DuckDBWarehouse(settings.warehouse_path).replace(tables, "current", table)
    measured = measure_table(settings, product, "current")
    assert measured.rows == 4
    assert measured.nulls["user_id"] == 1 and measured.nulls["state"] == 1 and measured.nulls["cpf"] == 4
    assert measured.rules["user_id_unique"] == 1  # "a" twice; the null is not a duplicate
    assert measured.rules["state_is_brazilian_uf"] == 1  # "XX"; the null is not invalid
    assert measured.rules["has_rows"] == 4


def test_dataset_uris_and_names_agree_with_openlineages_own_naming() -> None:
    cosmos = naming.cosmos_dataset("fintech-app-br", "app", "users")
    ol_cosmos = ol_naming.AzureCosmosDB("fintech-app-br.documents.azure.com", "app", "users")
    assert (cosmos.namespace, cosmos.name) == (ol_cosmos.get_namespace(), ol_cosmos.get_name())
    assert cosmos.uri == "azurecosmos://fintech-app-br.documents.azure.com/dbs/app/colls/users"
    hub = naming.eventhubs_dataset("mesh-bus", "customers.users")
    ol_hub = ol_naming.Kafka("mesh-bus.servicebus.windows.net", "9093", "customers.users")
    assert (hub.namespace, hub.name) == (ol_hub.get_namespace(), ol_hub.get_name())
    assert hub.uri == "kafka://mesh-bus.servicebus.windows.net:9093/customers.users"
    gcs = naming.gcs_dataset("meshkit-lake-curated", "customers/users")
    assert (gcs.namespace, gcs.name) == (
        ol_naming.GCS("meshkit-lake-curated", "customers/users").get_namespace(),
        "customers/users",
    )
    assert gcs.uri == "gs://meshkit-lake-curated/customers/users"
    bq = naming.bigquery_dataset("fintech-lake-prod", "customers", "users_current")
    assert bq.namespace == ol_naming.BigQuery("p", "d", "t").get_namespace() and bq.uri == "bigquery:" + bq.name
    local = naming.file_dataset(Path("/tmp/lake dir/x"))
    assert local.namespace == ol_naming.LocalFileSystem("/x").get_namespace()
    assert local.uri == "file:///tmp/lake%20dir/x"
    assert naming.warehouse_dataset(Path("/ws/warehouse.duckdb"), "customers", "users_current").uri == (
        "duckdb://warehouse.duckdb/customers.users_current"
    )
    dead = naming.dead_letter_dataset(Path("/ws/lake"), "meshkit-lake-raw", "customers", "users")
    assert dead.name == "/ws/lake/meshkit-lake-raw/customers/users/_dead_letters"


def test_source_code_location_is_git_with_the_commit_inside_a_repository(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "domains").mkdir(parents=True)
    code = repo / "domains" / "pipeline.py"
    code.write_text("pipeline = None\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://bot:s3cr3t-token@github.com/org/mesh.git"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    located = as_dict(f.source_code_location(code))
    assert located["type"] == "git" and located["version"] == sha
    assert located["path"] == "domains/pipeline.py"
    assert located["repoUrl"] == "https://github.com/org/mesh.git"
    assert located["url"] == f"https://github.com/org/mesh/blob/{sha}/domains/pipeline.py"
    assert "s3cr3t" not in json.dumps(located)
    outside = tmp_path / "plain" / "pipeline.py"
    outside.parent.mkdir()
    outside.write_text("pipeline = None\n")
    assert as_dict(f.source_code_location(outside)) == {
        **as_dict(f.source_code_location(outside)),
        "type": "file",
        "url": outside.resolve().as_uri(),
    }
