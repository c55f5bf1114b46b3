"""`meshkit slo status | export` and the review's SLO section, on the example products."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.review.report import build_review, render_html, render_markdown
from meshkit.checks import CheckRun
from meshkit.cli import main
from meshkit.config import Settings, load_settings
from meshkit.contracts.model import load_contract
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.derive import derive_objectives
from monitoring.slo.openslo import openslo_documents, resource_name, validate_documents

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def _settings(workspace: Path) -> Settings:
    return load_settings(REPO, overrides={"workspace": str(workspace)}, environ={})


def _record(workspace: Path, minutes_ago: float, **figures: Any) -> RunSummary:
    end = NOW - timedelta(minutes=minutes_ago)
    values: dict[str, Any] = {
        "product": "customers/users",
        "status": "completed",
        "events_in": 1000,
        "duplicates_dropped": 0,
        "dead_letters": 1,
        "rows_written": {"changelog": 999},
        "max_source_lag_seconds": 60.0,
    } | figures
    summary = RunSummary(
        run_id=str(uuid.uuid4()),
        started_at=(end - timedelta(seconds=30)).isoformat(),
        ended_at=end.isoformat(),
        **values,
    )
    MetricsStore(_settings(workspace).metrics_path).record(summary)
    return summary


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(REPO), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_without_runs_says_so_and_exits_zero(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "slo", "status")
    assert code == 0
    assert "No runs recorded yet" in out and "meshkit demo" in out
    assert "customers/users" in out and "no data" in out
    code, out, _ = _cli(capsys, "slo", "status", "--format", "json")
    document = json.loads(out)
    assert code == 0 and document["runs"] == 0 and "No runs recorded yet" in document["message"]
    assert {o["state"] for p in document["products"] for o in p["objectives"]} == {"no-data"}


def test_status_table_per_objective(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for minutes_ago in (3, 2, 1):
        _record(workspace, minutes_ago)
    _record(workspace, 0.5, status="failed", events_in=0, dead_letters=0, rows_written={}, max_source_lag_seconds=None)
    code, out, _ = _cli(capsys, "slo", "status", "--product", "customers/users", "--at", NOW.isoformat())
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert set(lines) >= {"objective", "freshness", "frequency", "availability", "validity"}
    assert "3 / 4 runs" in lines["availability"] and "75.00%" in lines["availability"]
    assert "2,997 / 3,000 events" in lines["validity"] and "99.90%" in lines["validity"]
    assert "3 / 3 runs" in lines["freshness"] and "100.00%" in lines["freshness"]
    assert "EXHAUSTED" in lines["availability"] and "page 14.4x over 1h/5m" in lines["availability"]
    assert "note: retention:" in out
    assert "payments/transactions" not in out


def test_status_json(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(workspace, 10, dead_letters=2)
    code, out, _ = _cli(capsys, "slo", "status", "--format", "json", "--at", NOW.isoformat())
    document = json.loads(out)
    assert code == 0 and document["evaluated_at"] == NOW.isoformat() and document["runs"] == 1
    products = {p["product"]: p for p in document["products"]}
    assert set(products) == {"customers/users", "payments/transactions", "risk/customer-exposure"}
    validity = next(o for o in products["customers/users"]["objectives"] if o["kind"] == "validity")
    assert (validity["good"], validity["total"], validity["target"]) == (998, 1000, 0.995)
    assert validity["sli"] == pytest.approx(0.998) and validity["remaining_budget"] == pytest.approx(0.6)
    assert validity["burn_rates"]["1h"] == pytest.approx(0.4) and validity["state"] == "ok"
    assert products["payments/transactions"]["state"] == "no-data"
    assert products["customers/users"]["notes"][0]["property"] == "retention"


def test_status_errors_are_for_people(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "slo", "status", "--product", "customers/nobody")
    assert code == 1 and err.startswith("Error: no data product 'customers/nobody'")
    code, _, err = _cli(capsys, "slo", "status", "--at", "yesterday")
    assert code == 1 and "--at 'yesterday' is not an ISO-8601 timestamp" in err


def test_export_writes_valid_openslo_per_product(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "openslo"
    code, out, _ = _cli(capsys, "slo", "export", "--out", str(out_dir))
    assert code == 0 and "(4 objectives)" in out
    path = out_dir / "customers" / "users" / "openslo.yaml"
    assert path.read_text(encoding="utf-8").startswith("# Generated by `meshkit slo export` from domains/")
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert validate_documents(docs) == []
    assert [d["kind"] for d in docs] == ["Service", "DataSource"] + ["SLI", "SLO"] * 4
    slos = {d["metadata"]["name"]: d for d in docs if d["kind"] == "SLO"}
    assert set(slos) == {f"customers-users-{k}" for k in ("freshness", "frequency", "availability", "validity")}
    freshness = slos["customers-users-freshness"]["spec"]
    assert freshness["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert freshness["budgetingMethod"] == "Occurrences" and freshness["objectives"][0]["target"] == 0.995
    assert freshness["indicatorRef"] == "customers-users-freshness-sli" and freshness["service"] == "customers-users"
    assert slos["customers-users-freshness"]["metadata"]["annotations"]["meshkit/threshold-seconds"] == "900"
    frequency = slos["customers-users-frequency"]["spec"]
    assert frequency["budgetingMethod"] == "Timeslices"
    assert frequency["objectives"][0].items() >= {"op": "lte", "value": 60.0, "timeSliceTarget": 1.0}.items()
    assert (out_dir / "risk" / "customer-exposure" / "openslo.yaml").is_file()
    code, out, _ = _cli(capsys, "slo", "export", "--out", str(tmp_path / "one"), "--product", "payments/transactions")
    assert code == 0 and len(out.splitlines()) == 1


def test_openslo_validation_finds_what_the_spec_forbids() -> None:
    contract = load_contract(REPO / "domains" / "customers" / "users" / "datacontract.yaml")
    docs = openslo_documents("customers/users", derive_objectives(contract, "customers/users"))
    assert validate_documents(docs) == []
    slo = next(d for d in docs if d["kind"] == "SLO" and d["spec"]["budgetingMethod"] == "Timeslices")
    slo["spec"]["objectives"][0].pop("timeSliceTarget")
    slo["spec"]["objectives"][0]["target"] = 1.0
    slo["spec"]["indicatorRef"] = "missing"
    slo["spec"]["timeWindow"] = [{"duration": "30 days", "isRolling": True}]
    sli = next(d for d in docs if d["kind"] == "SLI")
    sli["spec"]["thresholdMetric"] = {"metricSource": {"type": "meshkit", "spec": {}}}
    sli["metadata"]["name"] = "Not_A_Label"
    problems = "\n".join(validate_documents(docs))
    for expected in (
        "target must lie in [0, 1)",
        "timeSliceTarget in (0, 1] is required",
        "indicatorRef 'missing' names no SLI",
        "duration shorthand",
        "exactly one of thresholdMetric and ratioMetric",
        "RFC 1123",
    ):
        assert expected in problems


def test_resource_names_are_rfc1123_labels() -> None:
    assert resource_name("risk/customer-exposure.freshness") == "risk-customer-exposure-freshness"
    long = resource_name("a-domain/" + "x" * 80 + ".freshness")
    assert len(long) == 63 and long[-9] == "-"
    assert long != resource_name("a-domain/" + "x" * 80 + ".frequency")


def test_review_shows_slos_per_product_and_for_the_mesh(workspace: Path) -> None:
    for minutes_ago in (3, 2, 1):
        _record(workspace, minutes_ago)
    _record(workspace, 0.5, status="failed", events_in=0, dead_letters=0, rows_written={}, max_source_lag_seconds=None)
    review = build_review(_settings(workspace), CheckRun(), now=NOW)
    users = next(p for p in review.products if p.ref == "customers/users")
    assert users.slos is not None and users.slos.state == "exhausted"
    assert {s.objective.kind: s.state for s in users.slos.statuses}["availability"] == "exhausted"
    assert review.slo_summary is not None
    assert review.slo_summary.line.startswith("11 objectives in 3 products: ")
    assert review.ok  # budgets inform; they do not fail the review
    html = render_html(review)
    assert "Service level objectives" in html and 'class="badge exhausted"' in html
    assert "3 / 4 runs" in html and "2,997 / 3,000 events" in html and review.slo_summary.line in html
    markdown = render_markdown(review)
    assert f"**SLOs:** {review.slo_summary.line}." in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("availability | ")]
    assert rows[0].startswith("availability | 99.5% | 75.00% | 3 / 4 runs | ")
    assert "❌ exhausted: page 14.4x over 1h/5m" in rows[0]
    summary = next(line for line in markdown.splitlines() if line.startswith("| customers/users |"))
    assert summary.endswith("| ❌ exhausted |")


def test_slo_status_imports_no_beam_or_cloud_sdk(tmp_path: Path) -> None:
    probe = (
        "import sys; from meshkit.cli import main; main(['--root', sys.argv[1], 'slo', 'status']); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'pyarrow', 'duckdb', 'azure') "
        "or m.startswith('google.cloud.') or m.startswith('google.api_core')); print('HEAVY', heavy)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")} | {
        "MESHKIT_WORKSPACE": str(tmp_path / "ws")
    }
    done = subprocess.run(
        [sys.executable, "-c", probe, str(REPO)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout


def test_slo_build_generates_openslo_dashboards_and_alert_policies(tmp_path, capsys):
    import json
    import shutil

    from meshkit.cli import main as cli_main

    root = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "domains", root / "domains")
    assert cli_main(["--root", str(root), "slo", "build"]) == 0
    printed = capsys.readouterr().out.split()
    build = root / "build"
    assert (build / "mesh-dashboard.json").is_file()
    for ref in ("customers/users", "payments/transactions", "risk/customer-exposure"):
        for name in ("openslo.yaml", "dashboard.json", "alert-policies.json"):
            assert str(build / ref / name) in printed
    policies = json.loads((build / "customers/users/alert-policies.json").read_text())
    assert "users" in json.dumps(policies)
