"""Review formats (JSON, JUnit, SARIF), section providers, the access section and --fail-on exit codes."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import types
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from governance.review.formats import parse_formats, render_json, render_junit, render_sarif
from governance.review.providers import collect_sections
from governance.review.report import Review, build_review
from governance.review.sections import ReviewContext, ReviewSection
from meshkit.checks import Check, CheckRun, Severity, Status
from meshkit.cli import review as review_cli
from meshkit.config import Settings, load_settings
from meshkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
REFS = ("customers/users", "payments/transactions", "risk/customer-exposure")
USERS_CONTRACT = "domains/customers/users/datacontract.yaml"


def _settings(root: Path, workspace: Path) -> Settings:
    return load_settings(root, overrides={"workspace": str(workspace)}, environ={})


def _fake_provider(monkeypatch: pytest.MonkeyPatch, name: str, section: ReviewSection | None) -> str:
    """A provider module in sys.modules: returns `section`, or raises when it is None."""
    module = types.ModuleType(name)

    def review_section(context: ReviewContext) -> ReviewSection:
        if section is None:
            raise RuntimeError("boom")
        return section

    module.review_section = review_section  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    return name


POLICY_SECTION = ReviewSection(
    key="policies",
    title="Policies",
    summary="2 policies",
    checks=(
        Check("policy.owner", Status.PASSED, "owner present", USERS_CONTRACT, 3),
        Check("policy.retention", Status.WARNING, "no retention", USERS_CONTRACT, 40, hint="Set retention."),
    ),
    per_product={
        "customers/users": (
            Check("policy.owner", Status.PASSED, "owner present", USERS_CONTRACT, 3),
            Check("policy.retention", Status.WARNING, "no retention", USERS_CONTRACT, 40, hint="Set retention."),
        )
    },
)


COST_SECTION = ReviewSection(
    key="cost",
    title="Cost",
    summary="12.50 USD/month",
    data={"products": [{"product": "customers/users", "total_monthly_usd": 12.5}]},
)


@pytest.fixture
def review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Review:
    """The example mesh with one failed validation check, one info note and a fake policies section."""
    provider = _fake_provider(monkeypatch, "tests_fake_policies", POLICY_SECTION)
    cost = _fake_provider(monkeypatch, "tests_fake_cost", COST_SECTION)
    validation = CheckRun(
        [
            Check("contract.pattern", Status.FAILED, "pattern does not compile", USERS_CONTRACT, 88, hint="Fix it."),
            Check("contract.schema", Status.PASSED, "valid", "domains/payments/transactions/datacontract.yaml"),
            Check("mesh.note", Status.PASSED, "just so you know", severity=Severity.INFO),
        ]
    )
    settings = _settings(REPO, tmp_path / "ws")
    return build_review(settings, validation, providers=(provider, cost, "tests_missing_provider.section"))


def test_junit_parses_and_counts_match(review: Review) -> None:
    root = ET.fromstring(render_junit(review))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert {f"product:{r}" for r in REFS} | {"mesh", "section:policies"} <= set(suites)
    cases = list(root.iter("testcase"))
    assert int(root.get("tests", "-1")) == len(cases) == len(review.all_checks)
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert int(root.get("failures", "-1")) == len(failures) == 1
    assert int(root.get("skipped", "-1")) == len(skipped) == 2  # mesh.note and the missing provider
    for suite in suites.values():
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
    failure = failures[0]
    assert failure.get("file") == USERS_CONTRACT and failure.get("line") == "88"


def test_sarif_has_the_2_1_0_structure(review: Review) -> None:
    sarif = json.loads(render_sarif(review))
    assert sarif["version"] == "2.1.0" and sarif["$schema"].startswith("https://")
    assert "sarif-2.1.0" in sarif["$schema"]
    (run,) = sarif["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["contract.pattern"]["help"]["text"] == "Fix it."
    assert rules["policy.retention"]["help"]["text"] == "Set retention."
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["contract.pattern"] == "error" and levels["policy.retention"] == "warning"
    assert levels["mesh.note"] == "note" and "contract.schema" not in levels  # a plain pass is no result
    for result in run["results"]:
        assert result["ruleId"] in rules and result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert not Path(location["artifactLocation"]["uri"]).is_absolute()
    located = next(r for r in run["results"] if r["ruleId"] == "contract.pattern")
    physical = located["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": USERS_CONTRACT}, "region": {"startLine": 88}}


def test_json_has_everything_with_stable_keys(review: Review) -> None:
    text = render_json(review)
    document = json.loads(text)
    assert text == render_json(review)
    assert [p["ref"] for p in document["products"]] == list(REFS)
    assert document["ok"] is False
    assert [s["key"] for s in document["sections"]] == ["policies", "cost"]
    cards = {c["name"]: c for c in document["scorecards"]["products"]}
    assert cards["customers/users"]["failed"] == 1 and cards["customers/users"]["warning"] == 1
    assert cards["customers/users"]["policy_score"] == 0.5
    assert cards["customers/users"]["monthly_cost"] == 12.5 and cards["payments/transactions"]["monthly_cost"] is None
    domains = {c["name"]: c for c in document["scorecards"]["domains"]}
    assert domains["customers"]["monthly_cost"] == 12.5 and domains["customers"]["status"] == "failed"
    assert {c["name"] for c in document["scorecards"]["domains"]} == {"customers", "payments", "risk"}


def test_section_checks_reach_the_product_scorecard_and_html(review: Review) -> None:
    from governance.review.report import render_html, render_markdown

    users = next(p for p in review.products if p.ref == "customers/users")
    assert [c.rule for c in users.section_checks] == ["policy.owner", "policy.retention"]
    html = render_html(review)
    assert 'id="section-policies"' in html and 'id="scorecards"' in html and "no retention" in html
    assert "**Policies:** 2 policies" in render_markdown(review)


def test_missing_provider_is_a_note_and_a_raising_one_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _fake_provider(monkeypatch, "tests_broken.section", None)
    settings = _settings(REPO, tmp_path / "ws")
    context = ReviewContext(settings, (), review_date := __import__("datetime").date(2026, 1, 1))
    assert context.today == review_date
    result = collect_sections(context, ("tests_nowhere.section", broken))
    assert result.sections == ()
    note, failure = result.checks
    assert note.status is Status.PASSED and note.severity is Severity.INFO
    assert "tests_nowhere.section" in note.reason and "not installed" in note.reason
    assert failure.status is Status.ERROR and "tests_broken.section" in failure.reason and "boom" in failure.reason


def test_access_section_lists_bindings_and_warns_on_expired(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(REPO / "domains", root / "domains")
    access = root / "domains" / "payments" / "transactions" / "access.yaml"
    text = access.read_text(encoding="utf-8").replace("expires: '2027-06-30'", "expires: '2020-01-31'", 1)
    access.write_text(text.replace("    purpose: The product's relay", "    purpose: ''\n    # The product's relay"))
    settings = _settings(root, tmp_path / "ws")
    review = build_review(settings, CheckRun(), providers=("governance.review.access_section",))
    (section,) = review.sections
    assert section.key == "access" and section.tables[0].rows
    roles = {row[1] for row in section.tables[0].rows if row[0] == "payments/transactions"}
    assert "payments_reader" in roles
    payments = next(p for p in review.products if p.ref == "payments/transactions")
    rules = sorted(c.rule for c in payments.section_checks)
    assert rules == ["access.expired", "access.purpose"]
    assert all(c.status is Status.WARNING for c in payments.section_checks)
    assert payments.section_checks[0].file == "domains/payments/transactions/access.yaml"
    assert str(payments.status) == "warning"


@pytest.mark.parametrize(
    ("statuses", "fail_on", "code"),
    [
        (["passed"], "error", 0),
        (["warning"], "error", 0),
        (["warning"], "warning", 1),
        (["failed"], "error", 1),
        (["error"], "warning", 1),
        (["failed"], "never", 0),
        ([], "warning", 0),
    ],
)
def test_exit_code_by_fail_on(statuses: list[str], fail_on: str, code: int) -> None:
    assert review_cli.exit_code(statuses, fail_on) == code


@pytest.mark.parametrize(("fail_on", "code"), [("error", 0), ("warning", 1), ("never", 0)])
def test_cli_fail_on_and_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fail_on: str, code: int
) -> None:
    module = types.ModuleType("governance.validation.products")
    module.validate = lambda paths, settings: CheckRun([Check("contract.x", Status.WARNING, "meh")])  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "governance.validation.products", module)
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr("governance.review.providers.PROVIDERS", ())  # the exit code of one warning alone
    parser = argparse.ArgumentParser()
    review_cli.add_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(["--out", str(out), "--format", "junit,sarif", "--fail-on", fail_on, "--json"])
    args.root, args.profile = str(REPO), None
    assert review_cli.run(args) == code
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["reports"]) == {"junit", "sarif"}
    assert sorted(p.name for p in out.iterdir()) == ["review.junit.xml", "review.sarif"]


def test_unknown_format_names_the_valid_ones() -> None:
    assert parse_formats("html, md,html") == ("html", "md")
    with pytest.raises(ConfigError, match="unknown review format pdf") as info:
        parse_formats("html,pdf")
    assert "sarif" in (info.value.hint or "")
