"""checkov (offline, from its own virtualenv: scripts/install-checkov.sh) on the seeded bad stacks,
the platform modules and a generated stack, next to the project's own policies.

Records which seeded violation checkov catches; the project's policies must catch every one of them
(tests/unit/test_infra_policies.py), including those checkov misses.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import require_emulator  # tests/conftest.py

from governance.infra.check import check_folder, error_failures
from governance.infra.checkov import CheckovRun, find_checkov, run_checkov
from governance.infra.generate import generate_stack
from meshkit.checks import Severity
from meshkit.config import load_settings

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
SEEDED = ROOT / "tests" / "fixtures" / "terraform" / "seeded"
# what checkov 3.3 catches of the seeded violations, as errors (its ids are promoted in ERROR_CHECKS)
CHECKOV_CATCHES = {
    "public-member": {"CKV_GCP_100", "CKV_GCP_28"},
    "basic-role": {"CKV_GCP_117"},
    "missing-cmek": {"CKV_GCP_81"},
    "cosmos-key-auth": {"CKV_AZURE_140"},
    "public-bucket": {"CKV_GCP_114", "CKV_GCP_29"},
}
# ... and what only the project's policies catch
OWN_POLICIES_ONLY = {
    "service-account-key",
    "project-scope",
    "bucket-without-prefix",
    "azure-owner-subscription",
    "eventhubs-local-auth",
    "azure-sas",
}


@pytest.fixture(scope="module")
def checkov() -> Path:
    binary = find_checkov(ROOT)
    require_emulator("checkov", binary is not None, "not installed; run scripts/install-checkov.sh")
    assert binary is not None
    return binary


@pytest.fixture(scope="module")
def seeded_run(checkov: Path) -> CheckovRun:
    return run_checkov(SEEDED, checkov)


def _errors_by_folder(run: CheckovRun) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for check in run.checks:
        if check.severity is Severity.ERROR and check.file:
            folder = Path(check.file).parent.name
            found.setdefault(folder, set()).add(check.rule.removeprefix("checkov."))
    return found


def test_checkov_runs_offline_and_reports_its_version(seeded_run):
    assert seeded_run.version.startswith("3.")


@pytest.mark.parametrize("folder", sorted(CHECKOV_CATCHES))
def test_checkov_catches_these_seeded_violations(seeded_run, folder):
    assert CHECKOV_CATCHES[folder] <= _errors_by_folder(seeded_run).get(folder, set())


@pytest.mark.parametrize("folder", ["public-member", "service-account-key"])  # one of each kind (checkov: ~4 s a run)
def test_seeded_violation_fails_the_combined_check(checkov, monkeypatch, folder):
    monkeypatch.setenv("MESHKIT_CHECKOV", str(checkov))
    run = check_folder(SEEDED / folder, root=ROOT, checkov="required")
    rules = {c.rule.split(".")[0] for c in error_failures(run)}
    assert rules == ({"infra", "checkov"} if folder in CHECKOV_CATCHES else {"infra"})


def test_checkov_misses_what_only_the_own_policies_catch(seeded_run):
    assert OWN_POLICIES_ONLY.isdisjoint(_errors_by_folder(seeded_run))


def test_platform_and_product_modules_have_no_checkov_errors(checkov):
    run = run_checkov(ROOT / "terraform" / "modules", checkov)
    assert [c for c in run.checks if c.severity is Severity.ERROR] == []


def test_generated_stack_with_its_modules_has_no_errors(checkov, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "domains", tmp_path / "domains")
    shutil.copytree(ROOT / "terraform", tmp_path / "terraform")
    settings = load_settings(tmp_path, overrides={}, environ={})
    stack = generate_stack(settings, "customers/users", today=date(2026, 11, 26))
    monkeypatch.setenv("MESHKIT_CHECKOV", str(checkov))
    run = check_folder(stack.out, root=tmp_path, checkov="required")
    assert error_failures(run) == []
    assert any(c.rule == "checkov" and "ran offline" in c.reason for c in run.checks)
