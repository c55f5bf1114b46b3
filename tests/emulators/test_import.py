"""`meshkit import` against real services: a BigQuery table made through google-cloud-bigquery in the
local-bigquery emulator, documents in the real @vercel/cosmosdb-server, a table in a throwaway
PostgreSQL cluster. Each imported contract must pass `meshkit validate` with no errors (warnings are how
it asks for review)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bigquery_service import BigQueryEmulator, running_bigquery
from conftest import ROOT
from cosmos_service import EMULATOR_KEY, cosmosdb_server  # noqa: F401 - session fixture
from postgres_service import PostgresServer, postgres_server  # noqa: F401 - session fixture

from governance.interop.importers import from_bigquery, from_cosmos_sample, from_postgres
from governance.interop.product import import_product, plain_yaml
from governance.validation.products import validate
from meshkit.checks import CheckRun, Status
from meshkit.config import load_settings
from meshkit.contracts.model import Contract, load_contract
from meshkit.contracts.types import column_type
from meshkit.errors import ContractError, TerminalError
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

pytestmark = pytest.mark.emulator
SYSTEM = ("_rid", "_self", "_etag", "_attachments", "_ts", "_lsn")


def _write_and_validate(root: Path, document: dict[str, Any]) -> tuple[Contract, CheckRun]:
    """Write the imported contract as `meshkit import` does and run the validator over the product."""
    product = root / "domains" / document["domain"] / document["dataProduct"]
    product.mkdir(parents=True)
    (product / "datacontract.yaml").write_text(plain_yaml(document), encoding="utf-8")
    run = validate([product / "datacontract.yaml"], load_settings(root, environ={}))
    return load_contract(product / "datacontract.yaml"), run


def _errors(run: CheckRun) -> list[str]:
    return [f"{c.field}: {c.reason}" for c in run.checks if c.status in (Status.FAILED, Status.ERROR)]


def _types(contract: Contract) -> dict[str, tuple[str, bool]]:
    return {c.name: (column_type(c).sql, c.required) for c in contract.columns}


# ---- BigQuery --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bigquery_only() -> Iterator[BigQueryEmulator]:
    """local-bigquery without the GCS emulator: importing reads table metadata only."""
    with running_bigquery() as service:
        yield service


def test_import_from_a_bigquery_table(bigquery_only: BigQueryEmulator, tmp_path: Path) -> None:
    from google.cloud import bigquery

    project = bigquery_only.project()
    client = bigquery_only.client(project)
    client.create_dataset(f"{project}.sales")
    taxonomy = "projects/p/locations/us/taxonomies/1"
    schema = [
        bigquery.SchemaField("order_id", "STRING", mode="REQUIRED", description="The order."),
        bigquery.SchemaField("total", "NUMERIC", precision=18, scale=2, description="Total in BRL."),
        bigquery.SchemaField("placed_at", "TIMESTAMP", mode="REQUIRED"),
        bigquery.SchemaField("local_at", "DATETIME"),
        bigquery.SchemaField("ship_on", "DATE"),
        bigquery.SchemaField("qty", "INT64"),
        bigquery.SchemaField("ratio", "FLOAT64"),
        bigquery.SchemaField("paid", "BOOL"),
        bigquery.SchemaField("payload", "JSON"),
        bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
        bigquery.SchemaField(
            "address",
            "RECORD",
            fields=[bigquery.SchemaField("city", "STRING", mode="REQUIRED"), bigquery.SchemaField("zip", "STRING")],
        ),
        bigquery.SchemaField(
            "lines",
            "RECORD",
            mode="REPEATED",
            fields=[bigquery.SchemaField("sku", "STRING"), bigquery.SchemaField("amount", "NUMERIC")],
        ),
        bigquery.SchemaField(
            "buyer_email", "STRING", policy_tags=bigquery.PolicyTagList([f"{taxonomy}/policyTags/pii"])
        ),
    ]
    table = bigquery.Table(f"{project}.sales.orders", schema=schema)
    table.description = "Orders placed in the shop."
    table.time_partitioning = bigquery.TimePartitioning(field="placed_at")
    table.clustering_fields = ["order_id", "paid"]
    client.create_table(table)

    document = from_bigquery(client, f"{project}.sales.orders", product="sales/orders")
    contract, run = _write_and_validate(tmp_path, document)
    assert _errors(run) == []
    assert contract.id == "urn:meshkit:contract:sales:orders" and contract.version == "0.1.0"
    assert _types(contract) == {
        "order_id": ("STRING", True),
        "total": ("NUMERIC(18, 2)", False),
        "placed_at": ("TIMESTAMP", True),
        "local_at": ("DATETIME", False),
        "ship_on": ("DATE", False),
        "qty": ("INT64", False),
        "ratio": ("FLOAT64", False),
        "paid": ("BOOL", False),
        "payload": ("JSON", False),
        "tags": ("ARRAY<STRING>", False),
        "address": ("STRUCT<`city` STRING NOT NULL, `zip` STRING>", False),
        "lines": ("ARRAY<STRUCT<`sku` STRING, `amount` NUMERIC(38, 9)>>", False),
        "buyer_email": ("STRING", False),
    }
    assert contract.column("total").description == "Total in BRL."
    assert contract.table.description == "Orders placed in the shop."
    assert contract.column("placed_at").partitioned and contract.column("placed_at").partition_key_position == 1
    assert [contract.column(n).cluster_key_position for n in ("order_id", "paid")] == [1, 2]
    email = contract.column("buyer_email")
    assert (email.classification, email.personal, email.masking) == ("restricted", True, "hash")  # policy tag pii
    lake = contract.server("bigquery")
    assert lake is not None and (lake.project, lake.dataset) == (project, "sales")

    # what `meshkit import bigquery` runs: the client from settings (BIGQUERY_EMULATOR_HOST is set)
    settings = load_settings(tmp_path / "cli", environ={"MESHKIT_GCP_PROJECT": project})
    result = import_product(settings, "bigquery", "sales.orders", "sales/orders-copy")
    assert [p.name for p in result.written] == ["datacontract.yaml", "dataproduct.yaml"]
    assert [c for c in result.checks if c.status in (Status.FAILED, Status.ERROR)] == []
    with pytest.raises(TerminalError, match="does not exist"):
        import_product(settings, "bigquery", f"{project}.sales.nope", "sales/nope")


# ---- Cosmos DB -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users_container(cosmosdb_server: str) -> Iterator[tuple[Any, Contract, list[dict[str, Any]]]]:  # noqa: F811
    """A container of simulated customers/users documents, written through azure-cosmos."""
    from azure.cosmos import CosmosClient, PartitionKey

    contract = load_contract(ROOT / "domains" / "customers" / "users" / "datacontract.yaml")
    feed = ChangeFeedSimulator(
        contract, SimulationConfig(events=400, seed=5, malformed_rate=0, duplicate_rate=0, mode="latestVersion")
    ).generate()
    latest = {}
    for raw in feed.items:
        doc = json.loads(raw)
        latest[doc["id"]] = {k: v for k, v in doc.items() if k not in SYSTEM}
    client = CosmosClient(cosmosdb_server, credential=EMULATOR_KEY, enable_endpoint_discovery=False)
    database = client.create_database_if_not_exists("app")
    container = database.create_container_if_not_exists("users", PartitionKey("/id"))
    for doc in latest.values():
        container.upsert_item(doc)
    yield container, contract, list(latest.values())


def test_import_from_a_cosmos_container_sample(
    users_container: tuple[Any, Contract, list[dict[str, Any]]], tmp_path: Path
) -> None:
    container, original, docs = users_container
    document = from_cosmos_sample(container, sample_size=500, product="customers/users")
    contract, run = _write_and_validate(tmp_path, document)
    assert _errors(run) == []
    source = contract.source
    assert source is not None and (source.kind, source.database, source.container) == ("cosmosdb", "app", "users")
    assert source.partition_key_path == "/id"
    assert contract.primary_key == ("id",)
    by_source = {c.source_field: c for c in contract.columns}
    assert set(by_source) == {c.source_field for c in original.source_columns}  # system fields skipped
    for column in original.source_columns:
        got = by_source[column.source_field]
        assert got.required == column.required, column.name  # optional ones are missing or null somewhere
    expected = {"birth_date": "DATE", "created_at": "TIMESTAMP", "cpf": "STRING", "state": "STRING"}
    assert {name: column_type(contract.column(name)).sql for name in expected} == expected
    # whole-number limits come back from the server as JSON integers: a sample can only say INT64 then
    assert column_type(contract.column("credit_limit")).sql in ("INT64", "FLOAT64")
    assert contract.column("id").options == {"format": "uuid"}
    flagged = {c.name for c in contract.columns if c.classification == "todo"}
    assert {"cpf", "email", "phone", "full_name", "birth_date"} <= flagged
    warned = {c.field for c in run.warnings if c.rule == "contract.personal-name"}
    assert len(warned) >= 5  # `meshkit validate` asks for a decision on each
    with pytest.raises(ContractError, match="not positive"):
        from_cosmos_sample(container, sample_size=0)
    assert len(docs) > 100


def test_cli_import_cosmos_writes_a_product_that_validates(cosmosdb_server: str, tmp_path: Path) -> None:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    env |= {
        "MESHKIT_COSMOS_ENDPOINT": cosmosdb_server,
        "MESHKIT_COSMOS_KEY": EMULATOR_KEY,
        "MESHKIT_PROFILE": "emulators",
    }
    env["MESHKIT_WORKSPACE"] = str(tmp_path / "ws")
    args = [sys.executable, "-m", "meshkit", "--root", str(tmp_path)]
    done = subprocess.run(
        [*args, "import", "cosmos", "app/users", "--product", "customers/people", "--sample-size", "50"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "0 error(s)" in done.stdout and "warning" in done.stdout
    product = tmp_path / "domains" / "customers" / "people"
    descriptor = yaml.safe_load((product / "dataproduct.yaml").read_text())
    assert descriptor["outputPorts"][0]["contractId"] == "urn:meshkit:contract:customers:people"
    check = subprocess.run(
        [*args, "validate", str(product)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    missing = subprocess.run(
        [*args, "import", "cosmos", "app/nope", "--product", "customers/nope"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("Error: "), missing.stderr


# ---- PostgreSQL ------------------------------------------------------------------------------------


def test_import_from_a_postgres_table(postgres_server: PostgresServer, tmp_path: Path) -> None:  # noqa: F811
    schema = f"shop_{uuid.uuid4().hex[:8]}"
    postgres_server.execute(
        f"""
        CREATE SCHEMA {schema};
        CREATE TYPE {schema}.order_status AS ENUM ('new', 'paid', 'shipped');
        CREATE TABLE {schema}.orders (
            order_id uuid PRIMARY KEY,
            total numeric(18,2) NOT NULL,
            qty integer,
            big bigint NOT NULL,
            ratio double precision,
            paid boolean NOT NULL DEFAULT false,
            ship_on date,
            placed_at timestamptz NOT NULL,
            local_at timestamp,
            payload jsonb,
            customer_email varchar(254),
            status {schema}.order_status NOT NULL,
            note text,
            anything numeric
        );
        COMMENT ON TABLE {schema}.orders IS 'Orders placed in the shop.';
        COMMENT ON COLUMN {schema}.orders.total IS 'Total in BRL.';
        CREATE TABLE {schema}.lines (tenant text, line_no int, sku text NOT NULL, PRIMARY KEY (tenant, line_no));
        CREATE TABLE {schema}.loose (a int, b text);
        """
    )
    conn = postgres_server.connect()
    try:
        document = from_postgres(conn, schema, "orders", product="shop/orders")
        lines = from_postgres(conn, schema, "lines", product="shop/lines")
        with pytest.raises(ContractError, match="no primary key"):
            from_postgres(conn, schema, "loose")
        with pytest.raises(ContractError, match="no table"):
            from_postgres(conn, schema, "missing")
    finally:
        conn.close()
    contract, run = _write_and_validate(tmp_path, document)
    assert _errors(run) == []
    assert _types(contract) == {
        "order_id": ("STRING", True),
        "total": ("NUMERIC(18, 2)", True),
        "qty": ("INT64", False),
        "big": ("INT64", True),
        "ratio": ("FLOAT64", False),
        "paid": ("BOOL", True),
        "ship_on": ("DATE", False),
        "placed_at": ("TIMESTAMP", True),
        "local_at": ("DATETIME", False),
        "payload": ("JSON", False),
        "customer_email": ("STRING", False),
        "status": ("STRING", True),
        "note": ("STRING", False),
        "anything": ("BIGNUMERIC(76, 38)", False),
    }
    assert contract.primary_key == ("order_id",)
    assert contract.column("order_id").options == {"format": "uuid"}
    assert contract.column("customer_email").options == {"maxLength": 254}
    assert contract.column("customer_email").classification == "todo"
    assert contract.column("status").valid_values == ("new", "paid", "shipped")
    assert contract.column("total").description == "Total in BRL."
    source = contract.source
    assert source is not None and (source.kind, source.schema, source.table) == ("postgres", schema, "orders")
    assert source.port == postgres_server.port
    lines_contract, lines_run = _write_and_validate(tmp_path / "lines", lines)
    assert _errors(lines_run) == []
    assert lines_contract.primary_key == ("tenant", "line_no")
