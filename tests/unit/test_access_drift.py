"""Drift between the declared bindings and live IAM exports with seeded drift
(tests/fixtures/terraform/live: a Cloud Asset Inventory export and an az role assignment export)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from governance.access.drift import detect_drift
from governance.access.live import load_azure, load_gcp
from governance.access.matrix import access_matrix
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.errors import ConfigError
from meshkit.products.discovery import discover

ROOT = Path(__file__).resolve().parents[2]
LIVE = ROOT / "tests" / "fixtures" / "terraform" / "live"
GCP = LIVE / "gcp-asset-iam-policies.json"
AZURE = LIVE / "azure-role-assignments.json"
TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def declared():
    settings = load_settings(ROOT, overrides={}, environ={})
    return access_matrix(settings, discover(settings.domains_dir), today=TODAY).bindings


def _summary(report, kind):
    return {(i.cloud, i.principal, i.role, i.resource) for i in report.of(kind)}


def test_seeded_drift_is_found_and_nothing_else(declared):
    report = detect_drift(declared, [*load_gcp(GCP), *load_azure(AZURE)], ["gcp", "azure"])
    assert _summary(report, "undeclared") == {
        ("gcp", "user:intern@fintech.example", "roles/bigquery.dataViewer",
         "//bigquery.googleapis.com/projects/fintech-lake-prod/datasets/customers/tables/users_current"),
        ("gcp", "group:payments-analytics@fintech.example", "roles/bigquery.dataViewer", "project"),
        ("azure", "managedIdentity:mi-payments-transactions-relay", "Owner",
         "/subscriptions/6b1f3e5a-2c4d-4e8f-9a0b-1c2d3e4f5a6b"),
    }  # fmt: skip
    assert _summary(report, "missing") == {
        (
            "gcp",
            "group:kyc-operations@fintech.example",
            "roles/storage.objectViewer",
            "//storage.googleapis.com/meshkit-lake-raw",
        ),
        (
            "azure",
            "managedIdentity:mi-payments-transactions-relay",
            "Storage Blob Data Contributor",
            "blob:meshkit-checkpoints",
        ),
    }
    assert {i.role for i in report.of("unverifiable")} == {"roles/datacatalog.categoryFineGrainedReader"}
    assert not report.clean


def test_matching_export_has_no_drift(declared):
    live = [g for g in load_gcp(GCP) if g.principal != "user:intern@fintech.example" and g.resource_name != "project"]
    seeded_missing = ("group:kyc-operations@fintech.example", "//storage.googleapis.com/meshkit-lake-raw")
    kept = [b for b in declared if (b.principal, b.resource_name) != seeded_missing]
    report = detect_drift(kept, live, ["gcp"])
    assert report.clean, report.items


def test_only_the_exported_cloud_is_compared(declared):
    report = detect_drift(declared, load_azure(AZURE), ["azure"])
    assert report.compared == ("azure",) and {i.cloud for i in report.items} == {"azure"}


def test_project_policy_from_get_iam_policy(tmp_path, declared):
    policy = {
        "bindings": [
            {"role": "roles/owner", "members": ["group:credit-risk@fintech.example", "user:cto@fintech.example"]}
        ]
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    report = detect_drift(declared, load_gcp(path), ["gcp"])
    # the product's principal is reported; a principal no product names is not meshkit's business
    assert {(i.principal, i.role) for i in report.of("undeclared")} == {
        ("group:credit-risk@fintech.example", "roles/owner")
    }


def test_bad_export_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"bindings": [')
    with pytest.raises(ConfigError, match=r"x\.json:1: not valid JSON"):
        load_gcp(path)
    path.write_text('{"etag": "x"}')
    with pytest.raises(ConfigError, match="Cloud Asset Inventory"):
        load_gcp(path)


def test_cli_exits_1_on_drift_and_reports_it(capsys):
    code = main(
        ["access", "--today", "2026-11-26", "--live-gcp", str(GCP), "--live-azure", str(AZURE), "--format", "json"]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 1 and payload["drift"]["clean"] is False
    assert {i["kind"] for i in payload["drift"]["items"]} == {"undeclared", "missing", "unverifiable"}
