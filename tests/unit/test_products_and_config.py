"""Product discovery, the product graph, and layered settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshkit.config import load_settings
from meshkit.errors import ConfigError, MeshkitError, NameError_, ProductNotFoundError
from meshkit.names import parse_product_ref, sql_identifier, validate_name
from meshkit.products.discovery import check_ports, dependency_order, discover, find_product, lineage_edges

ROOT = Path(__file__).resolve().parents[2]


def test_discovers_the_example_mesh_in_dependency_order() -> None:
    products = discover(ROOT / "domains")
    order = [p.ref for p in dependency_order(products)]
    assert set(order) == {"customers/users", "payments/transactions", "risk/customer-exposure"}
    assert order[-1] == "risk/customer-exposure"
    assert set(lineage_edges(products)) == {
        ("customers/users", "risk/customer-exposure"),
        ("payments/transactions", "risk/customer-exposure"),
    }
    assert check_ports(products) == []


def copy_mesh(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "domains", tmp_path / "domains")
    return tmp_path / "domains"


def test_unknown_upstream_product_and_port_are_reported(tmp_path: Path) -> None:
    domains = copy_mesh(tmp_path)
    descriptor = domains / "risk/customer-exposure/dataproduct.yaml"
    text = descriptor.read_text().replace("product: customers/users", "product: customers/clients")
    descriptor.write_text(text.replace("port: transactions-current", "port: transactions-latest"))
    checks = check_ports(discover(domains))
    reasons = sorted(c.reason for c in checks)
    assert any("unknown product 'customers/clients'" in r for r in reasons)
    assert any("'transactions-latest'" in r for r in reasons)
    assert all(c.file and c.file.endswith("dataproduct.yaml") and c.hint for c in checks)


def test_a_cycle_between_products_is_refused(tmp_path: Path) -> None:
    domains = copy_mesh(tmp_path)
    users = domains / "customers/users/dataproduct.yaml"
    users.write_text(
        users.read_text().replace(
            "inputPorts:\n",
            "inputPorts:\n  - name: exposure\n    version: 1.0.0\n    product: risk/customer-exposure\n",
        )
    )
    with pytest.raises(MeshkitError, match="cycle"):
        dependency_order(discover(domains))


def test_find_product_names_the_known_ones() -> None:
    with pytest.raises(ProductNotFoundError) as info:
        find_product(ROOT / "domains", "payments/refunds")
    assert "payments/transactions" in info.value.message and "meshkit new payments/refunds" in info.value.message


@pytest.mark.parametrize("bad", ["../etc", "Payments", "a_b", "x--y", "-x", "select", "raw", "a" * 41, ""])
def test_unsafe_names_are_refused(bad: str) -> None:
    with pytest.raises(NameError_):
        validate_name(bad, "domain")


def test_product_references_and_identifiers() -> None:
    assert parse_product_ref("risk/customer-exposure") == ("risk", "customer-exposure")
    assert sql_identifier("customer-exposure") == "customer_exposure"
    with pytest.raises(NameError_):
        parse_product_ref("risk/customer-exposure/extra")


def test_settings_resolve_defaults_file_environment_flags_in_order(tmp_path: Path) -> None:
    (tmp_path / "meshkit.yaml").write_text("batch_size: 100\nenvironment: staging\nworkspace: from-file\n")
    env = {"MESHKIT_BATCH_SIZE": "200", "MESHKIT_WORKSPACE": "from-env"}
    settings = load_settings(tmp_path, overrides={"workspace": "from-flag"}, environ=env)
    assert settings.profile == "local"  # default
    assert settings.environment == "staging"  # file
    assert settings.batch_size == 200  # environment beats file
    assert settings.workspace == Path("from-flag")  # flag beats environment
    assert settings.warehouse_path == tmp_path / "from-flag" / "warehouse.duckdb"


def test_invalid_profile_names_the_valid_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, overrides={"profile": "staging"}, environ={})
    assert "local, emulators, cloud" in info.value.message


def test_lineage_namespace_follows_the_environment(tmp_path: Path) -> None:
    assert load_settings(tmp_path, environ={"MESHKIT_ENVIRONMENT": "prod"}).lineage_job_namespace == "meshkit-prod"
    explicit = load_settings(tmp_path, overrides={"lineage_namespace": "lake"}, environ={})
    assert explicit.lineage_job_namespace == "lake"


def test_an_edited_file_is_parsed_again(tmp_path: Path) -> None:
    from meshkit.yamlio import load_yaml

    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n")
    assert load_yaml(path).data == {"a": 1}
    assert load_yaml(path) is load_yaml(path)  # unchanged: parsed once
    path.write_text("a: 22\n")
    assert load_yaml(path).data == {"a": 22}
