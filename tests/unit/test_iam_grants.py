"""Grants from contract roles + access.yaml: purpose, expiry, grace period, and errors for people."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from governance.iam import load_grants, product_access
from meshkit.config import load_settings
from meshkit.errors import ContractError
from meshkit.products.discovery import find_product

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 26)


def _copy(tmp_path: Path, ref: str, access_yaml: str) -> Path:
    target = tmp_path / "domains" / ref
    shutil.copytree(ROOT / "domains" / ref, target)
    (target / "access.yaml").write_text(access_yaml, encoding="utf-8")
    return tmp_path


def _binding(role: str, expires: str | None, purpose: str | None = "Payments analysts.") -> str:
    lines = [f"  - role: {role}"]
    if purpose is not None:
        lines.append(f"    purpose: {purpose}")
    if expires is not None:
        lines.append(f"    expires: '{expires}'")
    lines.append("    gcp:\n      - group:payments-analytics@fintech.example")
    return "\n".join(lines)


def _access(*bindings: str) -> str:
    return "apiVersion: meshkit/v1\nkind: AccessBindings\nbindings:\n" + "\n".join(bindings) + "\n"


def test_example_grants_carry_role_access_purpose_and_expiry():
    settings = load_settings(ROOT, overrides={}, environ={})
    grants = load_grants(find_product(settings.domains_dir, "customers/users"), today=TODAY)
    by_role = {(g.role, g.cloud): g for g in grants.grants}
    pii = by_role[("customers_pii_reader", "gcp")]
    assert pii.personal and not pii.writes and pii.expires == date(2027, 3, 31) and pii.status == "active"
    assert not by_role[("customers_reader_masked", "gcp")].personal
    assert by_role[("customers_pipeline_writer", "azure")].writes
    assert all(g.purpose for g in grants.grants)
    assert grants.checks == ()


@pytest.mark.parametrize(
    ("expires", "status"),
    [("2026-11-26", "active"), ("2026-11-20", "grace"), ("2026-10-27", "grace"), ("2026-10-26", "dropped")],
)
def test_expired_grants_stay_for_the_grace_period_then_drop(tmp_path, expires, status):
    root = _copy(tmp_path, "payments/transactions", _access(_binding("payments_reader", expires)))
    settings = load_settings(root, overrides={}, environ={})
    grants = load_grants(find_product(settings.domains_dir, "payments/transactions"), today=TODAY, grace_days=30)
    assert [g.status for g in grants.grants] == [status]
    rules = {c.rule for c in grants.checks}
    assert ("access.expired" in rules) == (status != "active")
    assert ("access.dropped" in rules) == (status == "dropped")
    assert len(grants.generated) == (0 if status == "dropped" else 1)


def test_grace_period_is_configurable(tmp_path):
    root = _copy(tmp_path, "payments/transactions", _access(_binding("payments_reader", "2026-11-20")))
    settings = load_settings(root, overrides={}, environ={})
    product = find_product(settings.domains_dir, "payments/transactions")
    assert load_grants(product, today=TODAY, grace_days=0).grants[0].status == "dropped"
    assert load_grants(product, today=TODAY, grace_days=7).grants[0].status == "grace"


def test_grant_without_purpose_is_reported_with_its_line(tmp_path):
    root = _copy(tmp_path, "payments/transactions", _access(_binding("payments_reader", "2027-01-31", purpose=None)))
    settings = load_settings(root, overrides={}, environ={})
    grants = load_grants(find_product(settings.domains_dir, "payments/transactions"), today=TODAY)
    check = next(c for c in grants.checks if c.rule == "access.purpose")
    assert check.file and check.file.endswith("access.yaml") and check.line == 4 and check.hint
    assert "NO PURPOSE STATED" in grants.grants[0].note


def test_dropped_grant_leaves_the_bindings_and_is_noted(tmp_path):
    root = _copy(
        tmp_path,
        "payments/transactions",
        _access(_binding("payments_reader", "2026-01-31"), _binding("payments_pipeline_writer", "2027-11-30")),
    )
    settings = load_settings(root, overrides={}, environ={})
    access = product_access(find_product(settings.domains_dir, "payments/transactions"), settings, today=TODAY)
    assert {b.contract_role for b in access.bindings} == {"payments_pipeline_writer"}
    assert [g.role for g in access.grants.dropped] == ["payments_reader"]


def test_unknown_role_is_an_error_naming_file_field_and_valid_roles(tmp_path):
    root = _copy(tmp_path, "payments/transactions", _access(_binding("payments_admin", "2027-01-31")))
    settings = load_settings(root, overrides={}, environ={})
    with pytest.raises(ContractError) as info:
        load_grants(find_product(settings.domains_dir, "payments/transactions"), today=TODAY)
    message = info.value.message
    assert "access.yaml:4 (bindings[0].role)" in message and "payments_reader" in message


def test_public_principal_is_refused(tmp_path):
    text = _access(_binding("payments_reader", "2027-01-31")).replace(
        "group:payments-analytics@fintech.example", "allUsers"
    )
    root = _copy(tmp_path, "payments/transactions", text)
    settings = load_settings(root, overrides={}, environ={})
    with pytest.raises(ContractError, match=r"bindings\[0\]\.gcp\[0\]"):
        load_grants(find_product(settings.domains_dir, "payments/transactions"), today=TODAY)
