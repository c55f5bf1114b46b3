"""access.yaml: roles exist and are held, principals are well-formed and never public, access expires."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from governance.validation.access import access_checks, principal_problem
from governance.validation.products import validate_product
from meshkit.checks import Check, Status
from meshkit.contracts.model import load_contract
from meshkit.products.model import product_from_dir
from meshkit.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 1)
CONTRACT = ROOT / "domains/payments/transactions/datacontract.yaml"

ACCESS = """\
apiVersion: meshkit/v1
kind: AccessBindings
bindings:
  - role: payments_reader
    purpose: Analysts read transactions.
    expires: '2027-06-30'
    gcp:
      - group:payments-analytics@fintech.example
    azure:
      - group:9d06c753-1b27-47a5-9cdf-e77fedb078e0
  - role: payments_pipeline_writer
    purpose: The pipeline writes the zones.
    expires: '2027-11-30'
    gcp:
      - serviceAccount:payments-tx-pipeline@fintech-lake-prod.iam.gserviceaccount.com
    azure:
      - managedIdentity:mi-payments-transactions-relay
"""


def _checks(tmp_path: Path, text: str, today: date = TODAY) -> list[Check]:
    path = tmp_path / "access.yaml"
    path.write_text(text, encoding="utf-8")
    return access_checks(load_yaml(path), load_contract(CONTRACT), today=today)


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def _only(checks: list[Check], rule: str, line: int, field: str, status: Status = Status.FAILED) -> Check:
    assert [(c.rule, c.line, c.field, c.status) for c in checks] == [(rule, line, field, status)], checks
    assert checks[0].hint
    return checks[0]


def test_example_products_access_is_clean():
    files = sorted((ROOT / "domains").glob("*/*/access.yaml"))
    assert len(files) >= 3
    for path in files:
        directory = path.parent
        document = load_yaml(path)
        checks = access_checks(document, load_contract(directory / "datacontract.yaml"), today=TODAY)
        assert checks == [], directory


def test_valid_bindings(tmp_path):
    assert _checks(tmp_path, ACCESS) == []


def test_binding_role_must_exist_in_the_contract(tmp_path):
    text = ACCESS.replace("role: payments_reader", "role: payments_admin")
    checks = _checks(tmp_path, text)
    exists = [c for c in checks if c.rule == "access.role-exists"]
    assert [(c.line, c.field) for c in exists] == [(_line(text, "payments_admin"), "bindings[0].role")]
    assert "payments_reader" in (exists[0].hint or "")
    # ...and the contract role it replaced is now held by nobody
    [held] = [c for c in checks if c.rule == "contract.role-has-access"]
    assert "payments_reader" in held.reason and held.status is Status.FAILED and held.field == "bindings"


def test_role_without_principals_has_no_access(tmp_path):
    text = ACCESS.replace(
        "    gcp:\n      - serviceAccount:payments-tx-pipeline@fintech-lake-prod.iam.gserviceaccount.com\n"
        "    azure:\n      - managedIdentity:mi-payments-transactions-relay\n",
        "",
    )
    check = _only(_checks(tmp_path, text), "contract.role-has-access", _line(text, "bindings:"), "bindings")
    assert "payments_pipeline_writer" in check.reason


@pytest.mark.parametrize("public", ["allUsers", "allAuthenticatedUsers", "group:allUsers"])
def test_public_principals_fail(tmp_path, public):
    text = ACCESS.replace("      - group:payments-analytics@fintech.example", f"      - {public}")
    check = _only(_checks(tmp_path, text), "access.public-principal", _line(text, public), "bindings[0].gcp[0]")
    assert public in check.reason


@pytest.mark.parametrize(
    ("cloud", "principal", "ok"),
    [
        ("gcp", "group:risk@fintech.example", True),
        ("gcp", "user:ana.souza@fintech.example", True),
        ("gcp", "serviceAccount:risk-pipeline@fintech-lake-prod.iam.gserviceaccount.com", True),
        ("gcp", "domain:fintech.example", True),
        ("gcp", "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/gh/*", True),
        ("gcp", "group:risk", False),
        ("gcp", "serviceAccount:risk@gmail.com", False),
        ("gcp", "robot:x@fintech.example", False),
        ("azure", "group:338311d2-7c37-4c9b-82ca-9b6ba99aee54", True),
        ("azure", "servicePrincipal:0b9e5c3a-8f7d-4e21-b6a4-5d3c2e1f0a98", True),
        ("azure", "managedIdentity:mi-risk-relay", True),
        ("azure", "group:credit-risk@fintech.example", False),
        ("azure", "managedIdentity:x", False),
    ],
)
def test_principal_forms(cloud, principal, ok):
    assert (principal_problem(cloud, principal) is None) is ok


def test_malformed_principal_is_located(tmp_path):
    text = ACCESS.replace("managedIdentity:mi-payments-transactions-relay", "servicePrincipal:payments-app")
    _only(
        _checks(tmp_path, text),
        "access.principal",
        _line(text, "servicePrincipal:payments-app"),
        "bindings[1].azure[0]",
    )


def test_missing_purpose_and_expiry_are_warnings(tmp_path):
    text = ACCESS.replace("    purpose: Analysts read transactions.\n    expires: '2027-06-30'\n", "")
    checks = _checks(tmp_path, text)
    assert {(c.rule, c.status, c.field) for c in checks} == {
        ("access.purpose", Status.WARNING, "bindings[0]"),
        ("access.expires", Status.WARNING, "bindings[0]"),
    }
    assert {c.line for c in checks} == {_line(text, "- role: payments_reader")}


def test_expired_binding_is_a_warning_relative_to_today(tmp_path):
    assert _checks(tmp_path, ACCESS, today=date(2027, 6, 30)) == []
    check = _only(
        _checks(tmp_path, ACCESS, today=date(2027, 7, 1)),
        "access.expired",
        _line(ACCESS, "2027-06-30"),
        "bindings[0].expires",
        Status.WARNING,
    )
    assert "2027-06-30" in check.reason


def test_expiry_must_be_an_iso_date(tmp_path):
    text = ACCESS.replace("'2027-06-30'", "'30/06/2027'")
    _only(_checks(tmp_path, text), "access.expires", _line(text, "30/06/2027"), "bindings[0].expires")


def test_format_errors_carry_their_line(tmp_path):
    text = ACCESS.replace("kind: AccessBindings", "kind: Access").replace("    gcp:\n", "    gcloud:\n", 1)
    checks = _checks(tmp_path, text)
    assert {(c.rule, c.field, c.line) for c in checks} == {
        ("access.format", "kind", _line(text, "kind: Access")),
        ("access.format", "bindings[0].gcloud", _line(text, "gcloud:")),
    }


def test_product_without_access_yaml_warns(tmp_path):
    directory = tmp_path / "payments" / "transactions"
    directory.mkdir(parents=True)
    for name in ("datacontract.yaml", "dataproduct.yaml"):
        (directory / name).write_text((CONTRACT.parent / name).read_text())
    checks = validate_product(product_from_dir(directory), TODAY)
    problems = [c for c in checks if c.status is not Status.PASSED]
    assert [(c.rule, c.status) for c in problems] == [("contract.role-has-access", Status.WARNING)]
    assert {Path(c.file or "").name for c in checks if c.status is Status.PASSED} == {
        "datacontract.yaml",
        "dataproduct.yaml",
    }
