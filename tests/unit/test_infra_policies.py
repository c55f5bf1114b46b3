"""The project's own Terraform policies on seeded bad stacks, clean stacks and any folder; the
`meshkit infra check` command's exit codes and formats (checkov off here: tests/emulators has it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.infra.folder import load_folder
from governance.infra.policies import POLICIES, run_policies
from meshkit.checks import Severity, Status
from meshkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "terraform"
SEEDED = FIXTURES / "seeded"
# seeded folder -> the policies that must flag it (and no other)
EXPECTED = {
    "public-member": {"iam-public-member"},
    "basic-role": {"iam-basic-role", "iam-scope-wider-than-product"},
    "service-account-key": {"iam-service-account-key"},
    "project-scope": {"iam-scope-wider-than-product"},
    "bucket-without-prefix": {"iam-scope-wider-than-product"},
    "missing-cmek": {"cmek-required"},
    "azure-owner-subscription": {"azure-role-scope"},
    "cosmos-key-auth": {"azure-local-auth"},
    "eventhubs-local-auth": {"azure-local-auth"},
    "azure-sas": {"azure-shared-key"},
    "public-bucket": {"gcs-public-access-prevention"},
}


def _failed(folder: Path) -> dict[str, list]:
    found: dict[str, list] = {}
    for check in run_policies(load_folder(folder)):
        if check.status is not Status.PASSED:
            found.setdefault(check.rule.removeprefix("infra."), []).append(check)
    return found


def test_every_seeded_violation_has_a_fixture():
    assert sorted(p.name for p in SEEDED.iterdir()) == sorted(EXPECTED)
    assert {p.id for p in POLICIES} == set().union(*EXPECTED.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seeded_violation_is_flagged_with_location_and_hint(name):
    found = _failed(SEEDED / name)
    assert set(found) == EXPECTED[name]
    for checks in found.values():
        for check in checks:
            assert check.status is Status.FAILED and check.severity is Severity.ERROR
            assert check.file and check.file.endswith("main.tf") and check.line and check.hint


@pytest.mark.parametrize(
    "folder",
    ["golden/customers/users", "golden/payments/transactions", "golden/risk/customer-exposure", "golden/expired"],
)
def test_generated_stacks_pass(folder):
    assert _failed(FIXTURES / folder) == {}


@pytest.mark.parametrize("module", ["gcp-platform", "azure-platform", "product", "azure-monitor-alerts"])
def test_modules_pass(module):
    assert _failed(ROOT / "terraform" / "modules" / module) == {}


def test_a_generated_stack_without_its_cmek_variable_fails(tmp_path):
    text = (FIXTURES / "golden/customers/users/variables.tf").read_text()
    (tmp_path / "main.tf").write_text((FIXTURES / "golden/customers/users/main.tf").read_text())
    (tmp_path / "variables.tf").write_text(
        text.replace('variable "kms_key_name" {\n', 'variable "kms_key_name" {\n  default = null\n', 1)
    )
    assert set(_failed(tmp_path)) == {"cmek-required"}


def test_public_member_passed_to_a_module_is_caught(tmp_path):
    text = (FIXTURES / "golden/risk/customer-exposure/main.tf").read_text()
    (tmp_path / "main.tf").write_text(text.replace('"group:credit-risk@fintech.example"', '"allAuthenticatedUsers"'))
    assert "iam-public-member" in _failed(tmp_path)


def test_unparsable_file_is_an_error_check_not_a_crash(tmp_path):
    (tmp_path / "broken.tf").write_text('resource "google_storage_bucket" "b" {\n  name = \n')
    (tmp_path / "ok.tf").write_text((SEEDED / "service-account-key" / "main.tf").read_text())
    checks = run_policies(load_folder(tmp_path))
    assert any(c.rule == "infra.parse" and c.status is Status.ERROR for c in checks)
    assert any(c.rule == "infra.iam-service-account-key" and c.status is Status.FAILED for c in checks)


def test_cli_check_exits_1_on_an_error_and_names_file_line_and_hint(capsys):
    code = main(["infra", "check", str(SEEDED / "basic-role"), "--checkov", "off"])
    out = capsys.readouterr().out
    assert code == 1
    assert "basic-role/main.tf:2 google_project_iam_member.pipeline_editor.role" in out
    assert "uses the basic role 'roles/editor'" in out and "hint:" in out


def test_cli_check_exits_0_on_a_clean_folder_and_renders_json(capsys):
    code = main(
        ["infra", "check", str(FIXTURES / "golden/payments/transactions"), "--checkov", "off", "--format", "json"]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["ok"] is True and payload["failed"] == 0


def test_cli_check_of_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["infra", "check", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith(f"Error: {tmp_path / 'nope'} is not a folder.")


def test_cli_check_without_checkov_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MESHKIT_CHECKOV", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("governance.infra.checkov.VENV_BINARY", Path("no-such-venv/bin/checkov"))
    code = main(["--root", str(tmp_path), "infra", "check", str(FIXTURES / "golden/risk/customer-exposure")])
    out = capsys.readouterr().out
    assert code == 0 and "checkov is not installed" in out and "scripts/install-checkov.sh" in out
    assert (
        main(["--root", str(tmp_path), "infra", "check", str(SEEDED / "public-bucket"), "--checkov", "required"]) == 1
    )
    assert "checkov is not installed" in capsys.readouterr().err
