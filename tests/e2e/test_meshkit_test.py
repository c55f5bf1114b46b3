"""`meshkit test` on the demo's mesh: every product passes its contract, a seeded violation fails with
the right measured value and failing keys, and the results reach lineage, metrics and the review."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.etree import ElementTree as ET

import duckdb
import pyarrow.parquet as pq
import pytest

from governance.review.sections import ReviewContext
from governance.review.testing_section import review_section
from meshkit.cli import main
from meshkit.config import Settings, load_settings
from meshkit.products.discovery import discover
from monitoring.metrics.store import MetricsStore
from monitoring.slo.derive import CONTRACT_TEST_SLI_METRICS
from monitoring.slo.status import mesh_slos
from pipelines.demo import run_demo

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = ("customers/users", "payments/transactions", "risk/customer-exposure")


@dataclass(frozen=True)
class Mesh:
    settings: Settings
    workspace: Path


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Mesh:
    workspace = tmp_path_factory.mktemp("mesh-test")
    settings = load_settings(ROOT, overrides={"workspace": str(workspace)}, environ={})
    run_demo(settings, events=600, seed=11)
    return Mesh(settings, workspace)


def _test(mesh: Mesh, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(mesh.workspace))
    monkeypatch.delenv("MESHKIT_MASKING_KEY", raising=False)
    return main(["--root", str(ROOT), "test", *args])


def _events(mesh: Mesh, job: str) -> list[dict[str, object]]:
    lines = mesh.settings.lineage_path.read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["job"]["name"] == job]


def test_every_product_passes_its_contract(mesh: Mesh, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for ref in PRODUCTS:
        out = tmp_path / f"{ref.replace('/', '-')}.xml"
        assert _test(mesh, monkeypatch, ref, "--format", "junit", "--out", str(out)) == 0, ref
        suite = ET.parse(out).getroot().find("testsuite")
        assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"
        assert int(suite.get("tests") or 0) > 10
    assert _test(mesh, monkeypatch, "payments/transactions", "--source", "warehouse", "--no-publish") == 0
    # lineage: a test run per product, its assertions on the tested dataset
    complete = [e for e in _events(mesh, "customers.users.test") if e["eventType"] == "COMPLETE"]
    assert complete
    dataset = complete[-1]["inputs"][0]  # type: ignore[index]
    assertions = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["name"] for a in assertions} >= {"users.user_id.unique", "state_is_brazilian_uf"}
    assert all(a["success"] for a in assertions if a["name"] != "users.freshness")
    assert dataset["name"].endswith("meshkit-lake-curated/customers/users")
    # metrics: the SLI ratios under the names the SLO code declares
    store = MetricsStore(mesh.settings.metrics_path)
    for metric in CONTRACT_TEST_SLI_METRICS.values():
        assert store.points("customers/users", metric)[-1][1] == 1.0
    # ... and `meshkit slo status` shows them beside the objectives
    [users] = mesh_slos(mesh.settings, "customers/users")
    assert {kind: ratio for kind, (_, ratio) in users.at_rest.items()} == {"validity": 1.0, "completeness": 1.0}
    # review: a section with one row per tested product and no failed check
    context = ReviewContext(mesh.settings, tuple(discover(mesh.settings.domains_dir)), date.today())
    section = review_section(context)
    assert len(section.tables[0].rows) == 3
    assert not any(c.status == "failed" for c in section.checks)


def test_a_seeded_violation_fails_with_measure_and_keys(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = mesh.settings.lake_dir / "meshkit-lake-curated" / "customers" / "users"
    con = duckdb.connect()
    live = con.sql(
        "SELECT * FROM (SELECT * EXCLUDE (ingest_date) FROM "
        f"read_parquet('{folder}/**/*.parquet', hive_partitioning = true) "
        "QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC) = 1) "
        "WHERE _op <> 'delete' ORDER BY _key LIMIT 1"
    ).to_arrow_table()
    assert live.column("_op")[0].as_py() != "delete"
    newcomer = str(uuid.UUID(int=1))
    row = live.to_pylist()[0]
    original = row["user_id"]
    row.update(user_id=newcomer, _key=newcomer, state="XX", _lsn=row["_lsn"] + 10**9)  # same (hashed) cpf
    seeded = live.from_pylist([row], schema=live.schema)
    partition = next(folder.glob("ingest_date=*"))
    pq.write_table(seeded, partition / "part-seeded-violation.parquet")
    try:
        out = tmp_path / "users.json"
        assert _test(mesh, monkeypatch, "customers/users", "--format", "json", "--out", str(out)) == 1
        results = json.loads(out.read_text(encoding="utf-8"))
        checks = {c["id"]: c for c in results["checks"]}
        enum = checks["users.state.enum"]
        assert (enum["status"], enum["measured"], enum["sample_keys"]) == ("failed", 1.0, [newcomer])
        assert checks["state_is_brazilian_uf"]["status"] == "failed"
        cpf = checks["users.cpf.unique"]
        assert cpf["status"] == "failed" and cpf["measured"] == 1.0
        assert sorted(cpf["sample_keys"]) == sorted([original, newcomer])
        # keys only: no personal value (the hashed cpf, the partial name) appears in any result
        text = out.read_text(encoding="utf-8")
        assert row["cpf"] not in text and row["full_name"] not in text
        assert results["validity"] < 1.0
        assert _test(mesh, monkeypatch, "customers/users") == 1
        assert "FAIL  users.state.enum" in capsys.readouterr().out
        failed = [e for e in _events(mesh, "customers.users.test") if e["eventType"] == "FAIL"]
        assert failed
    finally:
        (partition / "part-seeded-violation.parquet").unlink()
