"""The data product catalog: the model gathered from contracts, descriptors, access.yaml and runs; the
static site (escaped, deterministic, no machine paths); the Dataplex request plan; the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from governance.catalog.dataplex import plan_export, resource_id, schema_fields
from governance.catalog.model import Catalog, CatalogColumn, build_catalog
from governance.catalog.site import search_index, write_catalog
from meshkit.cli import main
from meshkit.config import Settings, load_settings
from meshkit.errors import ConfigError
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    return build_catalog(settings, now=NOW)


def test_every_product_with_schema_roles_and_port_lineage(catalog: Catalog) -> None:
    refs = [p.ref for p in catalog.products]
    assert refs == ["customers/users", "payments/transactions", "risk/customer-exposure"]
    users = catalog.products[0]
    assert users.owner == "ana.souza@fintech.example" and users.status == "active"
    cpf = next(c for c in users.columns if c.name == "cpf")
    assert (cpf.personal, cpf.masking, cpf.classification, cpf.required) == (True, "hash", "restricted", True)
    assert next(c for c in users.columns if c.name == "user_id").key
    roles = {r.role: r for r in catalog.products[1].roles}
    assert roles["payments_reader"].access == "read"
    assert roles["payments_reader"].purposes and roles["payments_reader"].gcp_principals == 2
    exposure = catalog.products[2]
    assert exposure.neighbours.upstream == ("customers/users", "payments/transactions")
    assert not exposure.neighbours.from_events and catalog.lineage_source == "ports"
    assert users.neighbours.downstream == ("risk/customer-exposure",)
    assert users.quality and all(r.state == "not-run" for r in users.quality)
    assert users.last_run is None and users.quality_state == "not-run"


def test_quality_status_and_neighbours_come_from_the_runs(settings: Settings) -> None:
    lineage = settings.lineage_path
    lineage.parent.mkdir(parents=True)
    table = {"namespace": "duckdb://warehouse", "name": "customers.users_current"}
    events = [
        {
            "eventType": "COMPLETE",
            "eventTime": "2026-11-26T11:00:00Z",
            "run": {"runId": "r1"},
            "job": {"namespace": "meshkit-dev", "name": "customers.users.pipeline"},
            "inputs": [{"namespace": "azurecosmos://fintech-app-br/dbs/app", "name": "colls/users"}],
            "outputs": [
                {
                    **table,
                    "facets": {
                        "dataQualityAssertions": {
                            "assertions": [
                                {
                                    "assertion": "duplicateValues",
                                    "success": False,
                                    "name": "user_id_unique",
                                    "actual": "3",
                                },
                                {"assertion": "rowCount", "success": True, "name": "has_rows", "actual": "61"},
                            ]
                        }
                    },
                }
            ],
        },
        {
            "eventType": "COMPLETE",
            "eventTime": "2026-11-26T11:05:00Z",
            "run": {"runId": "r2"},
            "job": {"namespace": "meshkit-dev", "name": "risk.customer-exposure.pipeline"},
            "inputs": [table],
            "outputs": [{"namespace": "duckdb://warehouse", "name": "risk.customer_exposure_current"}],
        },
    ]
    lineage.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    MetricsStore(settings.metrics_path).record(
        RunSummary("customers/users", "r1", "2026-11-26T10:59:00Z", "2026-11-26T11:00:00Z", "completed", 61, 0, 0)
    )

    catalog = build_catalog(settings)  # budgets judged when the newest run ended: the same runs, the same pages
    assert catalog.judged_at == "2026-11-26T11:00:00+00:00"
    users, _, exposure = catalog.products
    states = {r.name: r.state for r in users.quality}
    assert states["user_id_unique"] == "failed" and states["has_rows"] == "passed"
    assert users.quality_state == "failed"
    assert users.last_run is not None and users.last_run.events_in == 61
    assert exposure.neighbours.from_events
    assert exposure.neighbours.upstream == ("customers/users", "payments/transactions")
    assert exposure.neighbours.unseen == ("payments/transactions",), "declared by a port, in no event yet"
    assert users.neighbours.sources == ("users (Cosmos DB)",)


def test_the_site_is_deterministic_and_shows_no_machine_path(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    first = write_catalog(catalog, tmp_path / "a", root=settings.root, reports_dir=settings.reports_dir)
    second = write_catalog(catalog, tmp_path / "b", root=settings.root, reports_dir=settings.reports_dir)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second, strict=True):
        text = a.read_text(encoding="utf-8")
        assert text == b.read_text(encoding="utf-8")
        assert str(tmp_path) not in text and str(ROOT) not in text
    page = (tmp_path / "a" / "products" / "customers" / "users.html").read_text(encoding="utf-8")
    assert 'data-column="cpf"' in page and "no runs yet" in page.lower()
    assert "<code>domains/customers/users/datacontract.yaml</code>" in page  # outside the repository: no link


def test_a_site_inside_the_repository_links_contracts_and_the_review(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "domains", root / "domains")
    settings = load_settings(root, overrides={"workspace": ".meshkit"}, environ={})
    settings.reports_dir.mkdir(parents=True)
    (settings.reports_dir / "review.html").write_text("<!DOCTYPE html>", encoding="utf-8")
    write_catalog(
        build_catalog(settings, now=NOW), settings.reports_dir / "catalog", root=root, reports_dir=settings.reports_dir
    )
    page = (settings.reports_dir / "catalog" / "products" / "customers" / "users.html").read_text(encoding="utf-8")
    assert 'href="../../../../../domains/customers/users/datacontract.yaml"' in page
    assert 'href="../../../review.html#customers/users"' in page


def test_search_index_holds_names_columns_tags_and_owners(catalog: Catalog) -> None:
    index = {e["ref"]: e for e in search_index(catalog)}
    users = index["customers/users"]
    assert "cpf" in users["columns"] and "cpf" in users["text"]
    assert "ana.souza@fintech.example" in users["text"] and "pii" in users["text"]
    assert "merchant_category_code" in index["payments/transactions"]["text"]
    assert "merchant_category_code" not in users["text"]


def _hostile_root(tmp_path: Path) -> Path:
    """A copy of the repository's domains whose users contract has markup in its texts."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "domains", root / "domains")
    path = root / "domains" / "customers" / "users" / "datacontract.yaml"
    contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    contract["description"]["purpose"] = "</script><img src=x onerror=alert(1)> & more"
    contract["schema"][0]["properties"][0]["description"] = "<b>bold</b>"
    path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return root


def test_everything_is_escaped(tmp_path: Path) -> None:
    root = _hostile_root(tmp_path)
    settings = load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    paths = write_catalog(build_catalog(settings, now=NOW), tmp_path / "out", root=root)
    index = paths[0].read_text(encoding="utf-8")
    page = (tmp_path / "out" / "products" / "customers" / "users.html").read_text(encoding="utf-8")

    assert "<img" not in index and "<img" not in page and "<b>bold" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in page
    embedded = index.split('id="catalog-index">', 1)[1].split("</script>", 1)[0]
    assert "\\u003c/script\\u003e" in embedded
    assert json.loads(embedded)[0]["text"].startswith("customers/users")
    assert index.count("</script>") == 2, "the embedded index must not close its script element"


def test_json_format(catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    (path,) = write_catalog(catalog, tmp_path, "json", root=settings.root)
    document = json.loads(path.read_text(encoding="utf-8"))
    users = document["products"][0]
    assert users["ref"] == "customers/users" and users["quality_state"] == "not-run"
    assert {"name": "cpf"}.items() <= next(c for c in users["columns"] if c["name"] == "cpf").items()
    with pytest.raises(ConfigError, match="Valid values are: html, json"):
        write_catalog(catalog, tmp_path, "pdf", root=settings.root)


def test_dataplex_plan_needs_a_project(catalog: Catalog, settings: Settings) -> None:
    with pytest.raises(ConfigError, match="gcp_project"):
        plan_export(catalog, settings)


def test_dataplex_plan_names_and_masks(catalog: Catalog, settings: Settings) -> None:
    cloud = settings.model_copy(update={"gcp_project": "p1", "gcp_location": "us-central1"})
    plan = plan_export(catalog, cloud)
    assert [g["entryGroupId"] for g in plan.entry_groups] == ["meshkit-customers", "meshkit-payments", "meshkit-risk"]
    entry = plan.entries[1]
    assert (
        entry["entry"]["name"] == "projects/p1/locations/us-central1/entryGroups/meshkit-payments/entries/transactions"
    )
    assert entry["updateMask"] == "aspects,entrySource" and entry["allowMissing"] is True
    data = entry["entry"]["aspects"]["p1.us-central1.meshkit-data-product"]["data"]
    assert data["classification"]["personalColumns"] == [
        {"classification": "restricted", "masking": "hash", "name": "counterparty_key"}
    ]


def test_schema_fields_nest_again() -> None:
    def col(name: str, kind: str, required: bool = False) -> CatalogColumn:
        return CatalogColumn(name, kind, None, required, False, None, False, "none", None)

    fields = schema_fields([col("id", "string", True), col("address", "object"), col("address.city", "string")])
    assert fields == [
        {"name": "id", "dataType": "STRING", "metadataType": "STRING", "mode": "REQUIRED"},
        {
            "name": "address",
            "dataType": "OBJECT",
            "metadataType": "STRUCT",
            "mode": "NULLABLE",
            "fields": [{"name": "city", "dataType": "STRING", "metadataType": "STRING", "mode": "NULLABLE"}],
        },
    ]
    assert resource_id("Customer Exposure") == "customer-exposure" and resource_id("9lives") == "x-9lives"


def test_cli_writes_the_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    assert main(["--root", str(ROOT), "catalog", "--out", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "site" / "index.html") in out and "3 products in 3 domains" in out
    assert (tmp_path / "site" / "products" / "risk" / "customer-exposure.html").is_file()


def test_cli_export_outside_the_cloud_profile_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("MESHKIT_GCP_PROJECT", "p1")
    assert main(["--root", str(ROOT), "catalog", "--export", "dataplex"]) == 1
    assert "cloud profile" in capsys.readouterr().err
