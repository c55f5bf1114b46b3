"""Least privilege of the bindings derived from the example products, on both clouds."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from governance.iam import product_access
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.products.discovery import find_product

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 26)
PIPELINE = "serviceAccount:customers-users-pipeline@fintech-lake-prod.iam.gserviceaccount.com"
PERSONAL = {"full_name", "cpf", "email", "phone", "birth_date"}


@pytest.fixture(scope="module")
def users():
    settings = load_settings(ROOT, overrides={}, environ={})
    return product_access(find_product(settings.domains_dir, "customers/users"), settings, today=TODAY)


def _of(access, principal):
    return [b for b in access.bindings if b.principal == principal]


def test_nothing_is_granted_at_project_or_dataset_level(users):
    assert {b.resource_kind for b in users.bindings} <= {
        "table", "view", "bucket", "policy-tag", "cosmos-container", "event-hub", "blob-container"
    }  # fmt: skip
    assert all("/tables/" in b.resource_name for b in users.bindings if b.resource_kind in ("table", "view"))


def test_masked_readers_get_authorized_views_without_personal_columns(users):
    analysts = _of(users, "group:customer-analytics@fintech.example")
    assert {b.resource for b in analysts} == {
        "fintech-lake-prod.customers_masked.users_current",
        "fintech-lake-prod.customers_masked.users_changelog",
    }
    assert all(b.role == "roles/bigquery.dataViewer" and b.resource_kind == "view" for b in analysts)
    assert not PERSONAL & set(analysts[0].columns)


def test_personal_data_readers_get_tables_fine_grained_reader_and_raw_prefix(users):
    kyc = _of(users, "group:kyc-operations@fintech.example")
    tag = next(b for b in kyc if b.resource_kind == "policy-tag")
    assert tag.role == "roles/datacatalog.categoryFineGrainedReader" and set(tag.columns) == PERSONAL
    assert {b.resource for b in kyc if b.resource_kind == "table"} == {
        "fintech-lake-prod.customers.users_current",
        "fintech-lake-prod.customers.users_changelog",
    }  # never the dead letters: unmasked rejected events are the pipeline's
    raw = next(b for b in kyc if b.resource == "gs://meshkit-lake-raw/customers/users/")
    assert raw.role == "roles/storage.objectViewer"


def test_data_editor_and_object_admin_only_for_the_pipeline(users):
    writers = {
        b.principal for b in users.bindings if b.role in ("roles/bigquery.dataEditor", "roles/storage.objectAdmin")
    }
    assert writers == {PIPELINE}


def test_bucket_grants_are_conditioned_on_the_product_prefix(users):
    buckets = [b for b in users.bindings if b.resource_kind == "bucket"]
    assert buckets
    for b in buckets:
        bucket = b.resource.split("/")[2]
        assert b.condition == f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/customers/users/")'


def test_azure_roles_are_scoped_to_container_hub_and_checkpoints(users):
    azure = {(b.principal, b.role, b.resource) for b in users.on("azure")}
    relay = "managedIdentity:mi-customers-users-relay"
    assert azure == {
        (relay, "Cosmos DB Built-in Data Reader", "fintech-app-br/dbs/app/colls/users"),
        (relay, "Azure Event Hubs Data Sender", "customers.users"),
        (relay, "Storage Blob Data Contributor", "meshkit-checkpoints/customers/users"),
        ("managedIdentity:mi-customers-users-pipeline", "Azure Event Hubs Data Receiver", "customers.users"),
    }
    # the masked readers' Azure group gets nothing: Azure only holds unmasked source data
    assert any(c.rule == "access.azure-no-binding" for c in users.checks)


def test_refined_product_without_personal_columns_reads_tables_directly():
    settings = load_settings(ROOT, overrides={}, environ={})
    access = product_access(find_product(settings.domains_dir, "risk/customer-exposure"), settings, today=TODAY)
    readers = _of(access, "group:credit-risk@fintech.example")
    assert {b.resource_kind for b in readers} == {"table", "bucket"}
    assert access.on("azure") == ()


def test_azure_principal_of_a_personal_data_role_reads_the_container(tmp_path):
    shutil.copytree(ROOT / "domains/customers/users", tmp_path / "domains/customers/users")
    path = tmp_path / "domains/customers/users/access.yaml"
    path.write_text(
        path.read_text().replace(
            "      - group:kyc-operations@fintech.example\n",
            "      - group:kyc-operations@fintech.example\n"
            "    azure:\n      - group:0c5e7a1b-2d3f-4a5b-8c7d-9e0f1a2b3c4d\n",
        )
    )
    settings = load_settings(tmp_path, overrides={}, environ={})
    access = product_access(find_product(settings.domains_dir, "customers/users"), settings, today=TODAY)
    kyc = _of(access, "group:0c5e7a1b-2d3f-4a5b-8c7d-9e0f1a2b3c4d")
    assert [(b.role, b.resource_name) for b in kyc] == [
        ("Cosmos DB Built-in Data Reader", "cosmos:fintech-app-br/dbs/app/colls/users")
    ]


def test_cli_iam_json_lists_grants_bindings_and_notes(capsys):
    assert main(["iam", "customers/users", "--format", "json", "--today", "2026-11-26"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {g["status"] for g in payload["grants"]} == {"active"}
    assert len(payload["bindings"]) == 20
    assert [c["rule"] for c in payload["checks"]] == ["access.azure-no-binding"]
