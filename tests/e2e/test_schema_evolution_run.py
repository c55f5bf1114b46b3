"""Contract changes between runs: a new nullable column lands in the warehouse with no data loss; a
breaking change is refused by `meshkit run` before anything is written, naming the column."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOT

from meshkit.config import Settings, load_settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import find_product
from pipelines.demo import publish_feed
from pipelines.runners.local import run_product
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

pytestmark = pytest.mark.e2e
PRODUCT = "payments/transactions"
CONTRACT = Path("domains/payments/transactions/datacontract.yaml")
TABLES = WarehouseTables.of("payments", "transactions")
AMOUNT = """      - name: amount
        businessName: Amount (BRL)
        logicalType: number
        logicalTypeOptions:
          exclusiveMinimum: 0
          maximum: 5000000
        physicalType: NUMERIC(18,2)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A copy of the repository's domains/ to change contracts in, with a fresh workspace."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "domains", root / "domains")
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "evolution-test-masking-key-0123456789abcdef")
    return load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})


def run_once(settings: Settings, events: int, seed: int) -> None:
    product = find_product(settings.domains_dir, PRODUCT)
    config = SimulationConfig(events=events, seed=seed, start=datetime(2026, 11, 26, tzinfo=UTC))
    publish_feed(settings, product, ChangeFeedSimulator(product.contract, config).generate())
    run_product(settings, product)


def edit_contract(settings: Settings, old: str, new: str) -> None:
    path = settings.root / CONTRACT
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_new_nullable_column_keeps_every_row(project: Settings) -> None:
    run_once(project, 300, seed=1)
    before = DuckDBWarehouse(project.warehouse_path).count(TABLES, "changelog")
    new_column = "      - name: channel\n        logicalType: string\n        classification: internal\n"
    edit_contract(project, AMOUNT, new_column + AMOUNT)
    run_once(project, 300, seed=2)
    changelog = DuckDBWarehouse(project.warehouse_path).read(TABLES, "changelog")
    assert "channel" in changelog.column_names
    assert changelog.num_rows > before  # old rows kept (channel NULL), new rows added
    # rows written before the change keep their values and read NULL in the new column; new rows carry it
    assert changelog.column("channel").null_count >= before
    assert changelog.column("channel").null_count < changelog.num_rows


def test_a_narrowed_type_is_refused_before_anything_is_written(project: Settings) -> None:
    run_once(project, 300, seed=1)
    warehouse = DuckDBWarehouse(project.warehouse_path)
    rows = warehouse.count(TABLES, "changelog"), warehouse.count(TABLES, "current")
    schema = warehouse.table_schema(TABLES, "changelog")
    edit_contract(project, AMOUNT, AMOUNT.replace("logicalType: number", "logicalType: integer").replace(
        "physicalType: NUMERIC(18,2)", "physicalType: INT64"))  # fmt: skip
    with pytest.raises(MeshkitError) as refused:
        run_once(project, 300, seed=2)
    message = str(refused.value) + " " + (refused.value.hint or "")
    assert "amount" in message and "Nothing was written" in message
    assert (warehouse.count(TABLES, "changelog"), warehouse.count(TABLES, "current")) == rows
    assert warehouse.table_schema(TABLES, "changelog") == schema
