"""`meshkit new`: the generated product validates, runs as a change-feed pipeline, and names are safe."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from governance.validation.products import validate
from meshkit.checks import Status
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.contracts.model import load_contract
from meshkit.contracts.types import arrow_type
from meshkit.errors import MeshkitError
from meshkit.products.discovery import find_product
from meshkit.scaffold import scaffold_product
from pipelines.product import ChangeFeedPipeline, load_pipeline

TODAY = date(2026, 11, 26)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_new_product_validates_with_no_failures_or_warnings(tmp_path):
    written = scaffold_product(tmp_path / "domains", "shop/orders", owner="ana.souza@fintech.example", today=TODAY)
    assert [p.name for p in written] == [
        "datacontract.yaml",
        "dataproduct.yaml",
        "pipeline.py",
        "access.yaml",
        "README.md",
    ]
    run = validate([], load_settings(tmp_path, environ={}))
    assert [c for c in run.checks if c.status is not Status.PASSED] == []
    passed = {Path(c.file or "").name for c in run.checks if c.status is Status.PASSED}
    assert passed == {"datacontract.yaml", "dataproduct.yaml", "access.yaml"}


def test_new_product_is_a_change_feed_product_the_pipeline_can_run(tmp_path):
    scaffold_product(tmp_path / "domains", "shop/orders", today=TODAY)
    product = find_product(tmp_path / "domains", "shop/orders")
    contract = load_contract(product.contract_path)
    assert contract.source is not None
    assert (contract.source.kind, contract.source.change_feed_mode, contract.source.partition_key_path) == (
        "cosmosdb",
        "latestVersion",
        "/id",
    )
    assert contract.primary_key == ("id",)
    assert contract.column("id").source_field == "id" and contract.column("id").options["format"] == "uuid"
    assert [(c.name, c.masking, c.classification) for c in contract.personal_columns] == [
        ("email", "hash", "restricted")
    ]
    for name in ("created_at", "updated_at"):
        column = contract.column(name)
        assert arrow_type(column.logical_type, column.physical_type, column.options) == pa.timestamp("us", tz="UTC")
    assert set(contract.sla) == {"latency", "frequency", "availability", "errorRate", "retention"}
    assert product.descriptor.owner == "shop-data-owners@example.com"
    assert all(port.contractId == contract.id for port in product.descriptor.outputPorts)

    pipeline = load_pipeline(product.pipeline_path)
    assert isinstance(pipeline, ChangeFeedPipeline)
    batch = pa.record_batch({"id": ["a"], "status": ["active"]})
    assert pipeline.transform(batch).equals(batch)


def test_access_bindings_expire_a_year_after_scaffolding(tmp_path):
    scaffold_product(tmp_path / "domains", "shop/orders", owner="ana@fintech.example", today=TODAY)
    text = (tmp_path / "domains/shop/orders/access.yaml").read_text()
    assert "expires: '2027-11-26'" in text and "group:shop-analysts@fintech.example" in text


def test_names_that_yaml_would_read_as_booleans_stay_strings(tmp_path):
    scaffold_product(tmp_path / "domains", "on/yes", today=TODAY)
    contract = load_contract(tmp_path / "domains/on/yes/datacontract.yaml")
    assert (contract.domain, contract.name, contract.table_name) == ("on", "yes", "yes")
    assert validate([], load_settings(tmp_path, environ={})).ok


def test_cli_new_then_validate(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "new", "shop/orders", "--owner", "ana.souza@fintech.example"]) == 0
    assert "datacontract.yaml" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "validate"]) == 0
    assert capsys.readouterr().out.strip().endswith("3 files checked: 3 passed, 0 failed, 0 warnings")


@pytest.mark.parametrize("ref", ["../x", "Payments/tx", "select/x", "shop/../../etc", "shop", "shop/orders/extra"])
def test_bad_names_are_refused_and_nothing_is_written(tmp_path, capsys, ref):
    assert main(["--root", str(tmp_path), "new", ref]) == 1
    assert capsys.readouterr().err.startswith("Error: ")
    assert _files(tmp_path) == []
    assert not (tmp_path / "domains").exists()


def test_bad_owner_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(MeshkitError, match="owner"):
        scaffold_product(tmp_path / "domains", "shop/orders", owner="ana: souza")
    assert _files(tmp_path) == []


def test_existing_product_is_not_overwritten_without_force(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "new", "shop/orders"]) == 0
    pipeline = tmp_path / "domains/shop/orders/pipeline.py"
    pipeline.write_text("# the domain's own logic\n")
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "new", "shop/orders"]) == 1
    assert "--force" in capsys.readouterr().err
    assert pipeline.read_text() == "# the domain's own logic\n"
    assert main(["--root", str(tmp_path), "new", "shop/orders", "--force"]) == 0
    assert "ChangeFeedPipeline(transform=transform)" in pipeline.read_text()
