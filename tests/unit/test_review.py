"""The governance review over the example products: contents, lineage, runs, escaping, exit code."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import types
import uuid
from pathlib import Path

import pytest

from governance.review.report import build_review, lineage_graph, render_html, render_markdown, write_review
from meshkit.checks import Check, CheckRun, Status
from meshkit.cli import review as review_cli
from meshkit.config import Settings, load_settings
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore

REPO = Path(__file__).resolve().parents[2]
REFS = ("customers/users", "payments/transactions", "risk/customer-exposure")
HAS_VALIDATION = importlib.util.find_spec("governance.validation.products") is not None


def _settings(root: Path, workspace: Path) -> Settings:
    return load_settings(root, overrides={"workspace": str(workspace)}, environ={})


def _validation(settings: Settings) -> CheckRun | None:
    """None lets build_review run the real validation; before it exists, an empty run stands in."""
    return None if HAS_VALIDATION else CheckRun()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(REPO, tmp_path / "ws")


@pytest.fixture
def fake_validation(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[Path], Settings]]:
    """Replace governance.validation.products with a fake that fails one check in customers/users."""
    calls: list[tuple[list[Path], Settings]] = []

    def validate(paths: list[Path], settings: Settings) -> CheckRun:
        calls.append((paths, settings))
        file = settings.domains_dir / "customers" / "users" / "datacontract.yaml"
        return CheckRun(
            [
                Check("contract.pattern", Status.FAILED, "pattern does not compile", str(file), 88, hint="Fix it."),
                Check("contract.schema", Status.PASSED, "valid", "domains/payments/transactions/datacontract.yaml"),
                Check("mesh.unique-ids", Status.WARNING, "two contracts share an id"),
            ]
        )

    module = types.ModuleType("governance.validation.products")
    module.validate = validate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "governance.validation.products", module)
    return calls


def _record_run(settings: Settings, **changes: object) -> RunSummary:
    values: dict[str, object] = {
        "product": "customers/users",
        "run_id": str(uuid.uuid4()),
        "started_at": "2026-03-01T10:00:00+00:00",
        "ended_at": "2026-03-01T10:01:00+00:00",
        "status": "completed",
        "events_in": 1000,
        "duplicates_dropped": 10,
        "dead_letters": 7,
        "dead_letters_by_reason": {"cpf: does not match pattern": 5, "state: not a valid value": 2},
        "rows_written": {"changelog": 983, "current": 900},
        "outputs": {"changelog": "duckdb://warehouse.duckdb/customers.users_changelog"},
        "freshness_seconds": 95.0,
        "duration_seconds": 12.5,
    }
    values.update(changes)
    summary = RunSummary(**values)  # type: ignore[arg-type]
    MetricsStore(settings.metrics_path).record(summary)
    return summary


def test_review_covers_every_product_and_the_lineage(settings: Settings) -> None:
    review = build_review(settings, _validation(settings))
    assert [p.ref for p in review.products] == list(REFS)
    assert set(review.edges) == {
        ("customers/users", "risk/customer-exposure"),
        ("payments/transactions", "risk/customer-exposure"),
    }
    by_ref = {p.ref: p for p in review.products}
    users, exposure = by_ref["customers/users"], by_ref["risk/customer-exposure"]
    assert users.owner == "ana.souza@fintech.example"
    assert (users.lifecycle, users.contract_id, users.contract_version) == (
        "active",
        "urn:meshkit:contract:customers:users",
        "1.3.0",
    )
    assert {c.name: c.masking for c in users.personal_columns}["cpf"] == "hash"
    assert users.column_count == 12
    assert users.downstream == ("risk/customer-exposure",)
    assert exposure.upstream == ("customers/users", "payments/transactions")
    assert review.totals.products == 3 and review.totals.domains == 3
    assert all(p.last_run is None for p in review.products)


def test_build_review_runs_validation_and_groups_checks_by_product(
    settings: Settings, fake_validation: list[tuple[list[Path], Settings]]
) -> None:
    review = build_review(settings, providers=())  # validation only; sections are tested in test_review_formats
    assert fake_validation == [([], settings)]
    by_ref = {p.ref: p for p in review.products}
    users = by_ref["customers/users"]
    assert [c.rule for c in users.checks] == ["contract.pattern"]
    assert users.checks[0].file == "domains/customers/users/datacontract.yaml"  # shown root-relative
    assert str(users.status) == "failed"
    assert [c.rule for c in by_ref["payments/transactions"].checks] == ["contract.schema"]
    assert str(by_ref["payments/transactions"].status) == "passed"
    assert [c.rule for c in review.mesh_checks if not c.rule.startswith("review.provider.")] == ["mesh.unique-ids"]
    assert not review.ok
    html = render_html(review)
    assert "domains/customers/users/datacontract.yaml:88" in html and "Fix it." in html
    markdown = render_markdown(review)
    assert "contract.pattern at domains/customers/users/datacontract.yaml:88" in markdown


def test_html_is_one_self_contained_page_with_a_lineage_svg(settings: Settings, tmp_path: Path) -> None:
    review = build_review(settings, _validation(settings))
    paths = write_review(review, tmp_path / "out")
    assert set(paths) == {"html", "markdown", "json", "junit", "sarif"} and all(p.is_file() for p in paths.values())
    html = paths["html"].read_text(encoding="utf-8")
    assert "<svg" in html and "marker-end" in html
    for ref in REFS:
        assert ref in html
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)  # no external assets
    graph = lineage_graph(review)
    boxes = {b.ref: b for b in graph.boxes}
    assert boxes["risk/customer-exposure"].x > boxes["customers/users"].x  # laid out by depth
    assert boxes["payments/transactions"].x == boxes["customers/users"].x
    assert len(graph.arrows) == 2 and {f.domain for f in graph.frames} == {"customers", "payments", "risk"}


def test_last_run_with_dead_letters_is_shown(settings: Settings) -> None:
    _record_run(settings, ended_at="2026-03-01T09:00:00+00:00", dead_letters=0, dead_letters_by_reason={})
    latest = _record_run(settings)
    review = build_review(settings, _validation(settings))
    users = next(p for p in review.products if p.ref == "customers/users")
    assert users.last_run == latest
    assert review.totals.dead_letters == 7 and review.totals.events_in == 1000
    html = render_html(review)
    assert "cpf: does not match pattern" in html and "state: not a valid value" in html
    assert latest.run_id in html
    markdown = render_markdown(review)
    assert "cpf: does not match pattern (5)" in markdown


def test_markdown_has_a_summary_table(settings: Settings) -> None:
    markdown = render_markdown(build_review(settings, _validation(settings)))
    lines = markdown.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| Product |"))
    assert lines[header + 1].startswith("| --- |")
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows] == list(REFS)
    assert all(row.count(" | ") == lines[header].count(" | ") for row in rows)


def test_descriptions_are_escaped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(REPO / "domains", root / "domains")
    contract = root / "domains" / "payments" / "transactions" / "datacontract.yaml"
    text = contract.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^  purpose: .*$", "  purpose: \"<script>alert('x')</script> | pipe\"", text)
    assert count == 1
    contract.write_text(text, encoding="utf-8")
    settings = _settings(root, tmp_path / "ws")
    review = build_review(settings, CheckRun())
    payments = next(p for p in review.products if p.ref == "payments/transactions")
    assert payments.description is not None and "<script>" in payments.description
    html = render_html(review)
    assert "<script" not in html
    assert "&lt;script&gt;alert(" in html
    assert "<script" not in render_markdown(review)


@pytest.mark.parametrize(("failing", "code"), [(False, 0), (True, 1)])
def test_cli_writes_reports_and_exits_on_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failing: bool, code: int
) -> None:
    checks = [Check("contract.x", Status.FAILED, "broken")] if failing else [Check("contract.x", Status.PASSED, "ok")]
    module = types.ModuleType("governance.validation.products")
    module.validate = lambda paths, settings: CheckRun(list(checks))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "governance.validation.products", module)
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr("governance.review.providers.PROVIDERS", ())  # the exit code of validation alone
    parser = argparse.ArgumentParser()
    review_cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "out"), "--json"])
    args.root, args.profile = str(REPO), None
    assert review_cli.run(args) == code
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is not failing
    assert [p["ref"] for p in printed["products"]] == list(REFS)
    assert Path(printed["reports"]["html"]).is_file() and Path(printed["reports"]["markdown"]).is_file()

    args = parser.parse_args([])
    args.root, args.profile = str(REPO), None
    assert review_cli.run(args) == code
    out = capsys.readouterr().out
    assert str(tmp_path / "ws" / "reports" / "review.html") in out
