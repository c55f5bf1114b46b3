"""Policies as code: each built-in on crafted products, the lifecycle, and team policy loading."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from governance.policies import Finding, Policy, evaluate, evaluate_product, load_policies, policy
from governance.policies.builtin import builtin_policies, lineage_recent
from governance.policies.model import make_policy
from governance.policies.section import review_section
from governance.review.sections import ReviewContext
from meshkit.checks import Check, Severity, Status
from meshkit.config import Settings, load_settings
from meshkit.errors import ConfigError
from meshkit.products.discovery import discover
from meshkit.products.model import DataProduct, product_from_dir
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 26)
BUILTINS = {p.id: p for p in builtin_policies()}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "domains", tmp_path / "domains", ignore=shutil.ignore_patterns("build"))
    return tmp_path


def _settings(root: Path) -> Settings:
    return load_settings(root, overrides={"workspace": str(root / "ws")}, environ={})


def _context(root: Path, today: date = TODAY) -> ReviewContext:
    settings = _settings(root)
    return ReviewContext(settings=settings, products=tuple(discover(settings.domains_dir)), today=today)


def _product(root: Path, ref: str) -> DataProduct:
    return product_from_dir(root / "domains" / ref)


def _edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _run(policy_id: str, root: Path, ref: str = "customers/users", today: date = TODAY) -> list:
    ctx = _context(root, today)
    return evaluate(BUILTINS[policy_id], _product(root, ref), ctx)


def _failing(checks: list) -> list:
    return [c for c in checks if c.status is not Status.PASSED]


@pytest.mark.parametrize(
    "policy_id",
    ["owner-present", "personal-data-classified", "sla-present", "quality-rules-present", "retention-set",
     "least-privilege-roles", "naming"],
)  # fmt: skip
def test_static_builtins_pass_on_the_example_products(root: Path, policy_id: str) -> None:
    for ref in ("customers/users", "payments/transactions", "risk/customer-exposure"):
        assert not _failing(_run(policy_id, root, ref)), (policy_id, ref)


def test_owner_present_needs_a_member_with_role_owner(root: Path) -> None:
    _edit(root / "domains/customers/users/dataproduct.yaml", lambda d: d["team"].update(members=[]))
    [check] = _run("owner-present", root)
    assert check.status is Status.FAILED and "no member with role `owner`" in check.reason
    assert check.file and check.file.endswith("dataproduct.yaml")


def test_personal_data_must_be_classified_and_masked(root: Path) -> None:
    def change(d: dict) -> None:
        props = d["schema"][0]["properties"]
        del props[7]["classification"]  # segment
        props[3]["customProperties"][1]["value"] = "none"  # email unmasked

    _edit(root / "domains/customers/users/datacontract.yaml", change)
    reasons = [c.reason for c in _failing(_run("personal-data-classified", root))]
    assert any("'segment' has no classification" in r for r in reasons)
    assert any("'email' leaves the raw zone unmasked" in r for r in reasons)


def test_sla_and_retention_are_required(root: Path) -> None:
    _edit(
        root / "domains/customers/users/datacontract.yaml",
        lambda d: d.update(slaProperties=[p for p in d["slaProperties"] if p["property"] == "latency"]),
    )
    [sla] = _run("sla-present", root)
    assert sla.status is Status.FAILED and "availability" in sla.reason and "latency" not in sla.reason
    [retention] = _run("retention-set", root)
    assert retention.status is Status.FAILED and sla.line is not None


def test_quality_rules_present(root: Path) -> None:
    def change(d: dict) -> None:
        d["schema"][0].pop("quality", None)
        for prop in d["schema"][0]["properties"]:
            prop.pop("quality", None)

    _edit(root / "domains/customers/users/datacontract.yaml", change)
    [check] = _run("quality-rules-present", root)
    assert check.status is Status.WARNING and check.severity is Severity.WARNING  # a warning-severity policy


def test_writers_must_be_workload_identities(root: Path) -> None:
    def change(d: dict) -> None:
        d["bindings"][2]["gcp"].append("group:data-engineers@fintech.example")

    _edit(root / "domains/customers/users/access.yaml", change)
    [check] = _run("least-privilege-roles", root)
    assert check.status is Status.FAILED
    assert "customers_pipeline_writer" in check.reason and "group:data-engineers" in check.reason
    assert check.field == "bindings[2].gcp[1]"


def test_naming_flags_non_snake_case_columns_and_tables(root: Path) -> None:
    def change(d: dict) -> None:
        d["schema"][0]["physicalName"] = "Users-Table"
        d["schema"][0]["properties"][7]["name"] = "customerSegment"

    _edit(root / "domains/customers/users/datacontract.yaml", change)
    reasons = [c.reason for c in _failing(_run("naming", root))]
    assert any("'Users-Table'" in r for r in reasons) and any("'customerSegment'" in r for r in reasons)


def _lineage(root: Path, job: str, when: datetime, event_type: str = "COMPLETE") -> None:
    path = _settings(root).lineage_path
    path.parent.mkdir(parents=True, exist_ok=True)
    event = {"eventType": event_type, "eventTime": when.isoformat(), "job": {"namespace": "n", "name": job}}
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(event) + "\n")


def test_lineage_recent(root: Path) -> None:
    [none] = _run("lineage-recent", root)
    assert none.status is Status.WARNING and "no COMPLETE lineage event" in none.reason
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    _lineage(root, "customers.users.pipeline", now - timedelta(days=10))
    _lineage(root, "customers.users.pipeline", now, event_type="START")  # only COMPLETE counts
    [old] = _run("lineage-recent", root)
    assert "10 days old (limit 7)" in old.reason
    _lineage(root, "customers.users.pipeline", now - timedelta(days=1))
    assert _run("lineage-recent", root)[0].status is Status.PASSED
    strict = lineage_recent(max_age_days=0)
    assert "limit 0" in evaluate(strict, _product(root, "customers/users"), _context(root))[0].reason


def _run_summary(product: str, ended: datetime, freshness: float) -> RunSummary:
    return RunSummary(
        product=product,
        run_id=f"r-{ended.timestamp()}",
        started_at=(ended - timedelta(minutes=1)).isoformat(),
        ended_at=ended.isoformat(),
        status="completed",
        events_in=100,
        duplicates_dropped=0,
        dead_letters=0,
        rows_written={"changelog": 100},
        freshness_seconds=freshness,
    )


def test_slos_met_reports_exhausted_budgets(root: Path) -> None:
    assert _run("slos-met", root)[0].status is Status.PASSED  # no data is not a breach
    store = MetricsStore(_settings(root).metrics_path)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    for i in range(0, 6 * 24 * 60, 30):  # every 30 minutes, an hour stale against a 15-minute latency SLA
        store.record(_run_summary("customers/users", start + timedelta(minutes=i), freshness=3600))
    failing = _failing(_run("slos-met", root))
    assert failing and all("exhausted its error budget" in c.reason for c in failing)
    assert all(c.status is Status.WARNING for c in failing)  # lifecycle warn


def _always_fails(lifecycle: str, enforce_from: str | None = None, severity: str = "error") -> Policy:
    return make_policy(
        lambda product, ctx: [Finding("broken")],
        id="always",
        title="Always fails",
        severity=severity,
        rationale="for tests",
        lifecycle=lifecycle,
        enforce_from=enforce_from,
    )


def test_lifecycle_sets_how_findings_report(root: Path) -> None:
    product = _product(root, "customers/users")

    def one(rule: Policy, today: date = TODAY) -> Check:
        [check] = evaluate(rule, product, _context(root, today))
        return check

    draft = one(_always_fails("draft"))
    assert (draft.status, draft.severity) == (Status.WARNING, Severity.INFO)
    warn = one(_always_fails("warn"))
    assert (warn.status, warn.severity) == (Status.WARNING, Severity.WARNING)
    grace = one(_always_fails("enforce", "2027-01-01"))
    assert grace.status is Status.WARNING and "enforced from 2027-01-01" in grace.reason
    enforced = one(_always_fails("enforce", "2027-01-01"), today=date(2027, 1, 1))
    assert (enforced.status, enforced.severity) == (Status.FAILED, Severity.ERROR)
    assert one(_always_fails("enforce")).status is Status.FAILED
    assert one(_always_fails("enforce", severity="info")).severity is Severity.INFO


def test_a_crashing_policy_is_an_error_check_not_an_exception(root: Path) -> None:
    def crash(product: DataProduct, ctx: ReviewContext) -> list[Finding]:
        raise RuntimeError("boom")

    rule = make_policy(crash, id="crash", title="t", severity="error", rationale="r")
    [check] = evaluate_product([rule], _product(root, "customers/users"), _context(root))
    assert check.status is Status.ERROR and "RuntimeError: boom" in check.reason


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"severity": "fatal"}, "severity 'fatal' is not valid"),
        ({"lifecycle": "maybe"}, "lifecycle 'maybe' is not valid"),
        ({"enforce_from": "next year"}, "is not a date"),
        ({"lifecycle": "warn", "enforce_from": "2027-01-01"}, "enforce_from is set but lifecycle is 'warn'"),
        ({"title": " "}, "`title` is empty"),
    ],
)
def test_policy_fields_are_validated(fields: dict, message: str) -> None:
    args = {"id": "x", "title": "t", "severity": "error", "rationale": "r", **fields}
    with pytest.raises(ConfigError, match=message):
        policy(**args)(lambda product, ctx: [])


TEAM_POLICY = """
from governance.policies import Finding, policy

@policy(id="{id}", title="Descriptions present", severity="warning", rationale="Readers need them.")
def descriptions(product, ctx):
    for col in product.contract.columns:
        if not col.description:
            yield Finding(f"column {{col.name!r}} has no description")
"""


def test_team_policies_load_from_the_policies_folder(root: Path) -> None:
    (root / "policies").mkdir()
    (root / "policies/descriptions.py").write_text(TEAM_POLICY.format(id="descriptions"), encoding="utf-8")
    (root / "policies/_helpers.py").write_text("raise RuntimeError('helpers are not loaded')", encoding="utf-8")
    loaded = load_policies(root)
    assert [p.id for p in loaded][: len(BUILTINS)] == list(BUILTINS)
    team = loaded[-1]
    assert team.id == "descriptions" and team.source == str(root / "policies/descriptions.py")
    section = review_section(_context(root))
    assert section.tables[0].rows[-1][:4] == ("descriptions", "Descriptions present", "enforce", "warning")
    assert any(c.rule == "policy.descriptions" and c.status is Status.WARNING for c in section.checks)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def broken(:\n", "syntax error"),
        ("import no_such_module_here\n", "ModuleNotFoundError"),
        ("x = 1\n", "defines no policy"),
        (TEAM_POLICY.format(id="naming"), "policy id 'naming' is defined twice"),
        (TEAM_POLICY.replace('severity="warning"', 'severity="fatal"').format(id="d"), "severity 'fatal'"),
    ],
)
def test_a_broken_team_policy_file_is_a_clear_error(root: Path, text: str, message: str) -> None:
    (root / "policies").mkdir()
    path = root / "policies/team_rules.py"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        load_policies(root)
    assert str(path) in raised.value.message


def test_review_section_reports_a_broken_file_and_still_runs_the_builtins(root: Path) -> None:
    (root / "policies").mkdir()
    (root / "policies/bad.py").write_text("def broken(:\n", encoding="utf-8")
    section = review_section(_context(root))
    assert section.checks[0].rule == "policy.load" and section.checks[0].status is Status.ERROR
    assert len(section.tables[0].rows) == len(BUILTINS)


def test_review_section_over_the_example_mesh(root: Path) -> None:
    shutil.copytree(REPO / "policies", root / "policies")
    section = review_section(_context(root))
    assert section.key == "policies"
    assert set(section.per_product) == {"customers/users", "payments/transactions", "risk/customer-exposure"}
    assert not [c for c in section.checks if c.status in (Status.FAILED, Status.ERROR)]
    rows = {row[0]: row for row in section.tables[0].rows}
    assert rows["pii-owner-reviewed"][2] == "draft"
    assert {p["id"] for p in section.data["policies"]} == {*BUILTINS, "pii-owner-reviewed"}
