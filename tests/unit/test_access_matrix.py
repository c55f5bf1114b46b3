"""The effective access matrix of the example products, in every format."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from governance.access.matrix import UNTAGGED, access_matrix
from governance.access.render import RENDERERS
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.products.discovery import discover

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 26)
PERSONAL = {"full_name", "cpf", "email", "phone", "birth_date"}
RISK_SA = "serviceAccount:risk-exposure-pipeline@fintech-lake-prod.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def matrix():
    settings = load_settings(ROOT, overrides={}, environ={})
    return access_matrix(settings, discover(settings.domains_dir), today=TODAY)


def _rows(matrix, principal, product=None):
    return [r for r in matrix.rows if r.principal == principal and (product is None or r.product == product)]


def test_masked_analysts_see_no_personal_column_anywhere(matrix):
    rows = _rows(matrix, "group:customer-analytics@fintech.example")
    assert rows and {r.product for r in rows} == {"customers/users"}
    assert not PERSONAL & {r.column for r in rows}
    assert {r.resource for r in rows} == {
        "fintech-lake-prod.customers_masked.users_current",
        "fintech-lake-prod.customers_masked.users_changelog",
    }


def test_kyc_operations_read_personal_columns_through_the_policy_tag(matrix):
    rows = _rows(matrix, "group:kyc-operations@fintech.example")
    fine = {(r.resource, r.column) for r in rows if r.privilege == "read (fine-grained)"}
    assert {c for _, c in fine} == PERSONAL
    assert ("fintech-lake-prod.customers.users_current", UNTAGGED) in {(r.resource, r.column) for r in rows}
    assert all(r.privilege.startswith("read") and r.expires == "2027-03-31" for r in rows)


def test_risk_pipeline_reads_its_inputs_masked_and_writes_only_its_own_product(matrix):
    rows = _rows(matrix, RISK_SA)
    assert {r.product for r in rows if r.privilege == "write"} == {"risk/customer-exposure"}
    inputs = {r.product for r in rows if r.privilege == "read"}
    assert inputs == {"customers/users", "payments/transactions"}
    assert not PERSONAL & {r.column for r in rows if r.product == "customers/users"}
    assert "counterparty_key" not in {r.column for r in rows if r.product == "payments/transactions"}


def test_only_pipelines_write(matrix):
    writers = {r.principal for r in matrix.rows if r.privilege == "write"}
    assert writers == {
        "serviceAccount:customers-users-pipeline@fintech-lake-prod.iam.gserviceaccount.com",
        "serviceAccount:payments-tx-pipeline@fintech-lake-prod.iam.gserviceaccount.com",
        RISK_SA,
        "managedIdentity:mi-customers-users-relay",
        "managedIdentity:mi-payments-transactions-relay",
    }


def test_matrix_is_sorted_and_unique(matrix):
    keys = [r.key for r in matrix.rows]
    assert keys == sorted(set(keys))


def test_csv_and_json_carry_every_row(matrix):
    rows = list(csv.DictReader(io.StringIO(RENDERERS["csv"](matrix, None))))
    assert len(rows) == len(matrix.rows) and set(rows[0]) >= {"principal", "product", "resource", "column", "privilege"}
    payload = json.loads(RENDERERS["json"](matrix, None))
    assert len(payload["rows"]) == len(matrix.rows) and "drift" not in payload


def test_html_escapes_and_lists_rows(matrix):
    html = RENDERERS["html"](matrix, None)
    assert html.startswith("<!doctype html>") and html.count("<tr class=") == len(matrix.rows)


def test_cli_prints_the_table(capsys):
    assert main(["access", "--today", "2026-11-26", "--product", "risk/customer-exposure"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["PRINCIPAL", "PRODUCT", "RESOURCE", "COLUMN"]
    assert out[-1] == "9 privileges of 2 principals on 1 products."


def test_cli_writes_html_to_a_file(tmp_path, capsys):
    target = tmp_path / "access.html"
    assert main(["access", "--format", "html", "--out", str(target), "--today", "2026-11-26"]) == 0
    assert "Who has what access" in target.read_text()
