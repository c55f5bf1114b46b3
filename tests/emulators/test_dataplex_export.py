"""The real google-cloud-dataplex client against the gRPC Dataplex Catalog fake: what the export sends.

The aspect type, entry type and one entry group per domain are created once; every product becomes
one UpdateEntry (allow_missing, update mask `aspects` + `entry_source`) whose aspects fit their
types. What crosses the wire equals what `meshkit catalog --export dataplex --dry-run` prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import ROOT, require_emulator

from governance.catalog.dataplex import (
    SCHEMA_ASPECT_KEY,
    ExportPlan,
    export_catalog,
    plan_export,
)
from governance.catalog.model import build_catalog
from meshkit.config import Settings, load_settings
from meshkit.errors import MeshkitError

pytestmark = pytest.mark.emulator
PROJECT = "meshkit-test"
LOCATION = "southamerica-east1"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
PRODUCT_ASPECT = f"{PROJECT}.{LOCATION}.meshkit-data-product"


@pytest.fixture(scope="session")
def dataplex() -> Iterator[Any]:
    try:
        import google.auth
        import grpc  # noqa: F401
        from dataplex_fake import DataplexCatalogFake  # beside this file
    except ImportError as exc:
        require_emulator("dataplex-fake", False, f"grpcio or google-cloud-dataplex is not installed: {exc}")
    fake = DataplexCatalogFake()
    with mock.patch.object(google.auth, "default", side_effect=AssertionError("no credential discovery in tests")):
        fake.start()
        try:
            yield fake
        finally:
            fake.stop()


@pytest.fixture
def fake(dataplex: Any) -> Any:
    dataplex.reset()
    return dataplex


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    workspace = tmp_path_factory.mktemp("dataplex") / "ws"
    return load_settings(
        ROOT, overrides={"workspace": str(workspace), "gcp_project": PROJECT, "gcp_location": LOCATION}, environ={}
    )


@pytest.fixture(scope="module")
def plan(settings: Settings) -> ExportPlan:
    return plan_export(build_catalog(settings, now=NOW), settings)


def _wire(request: Any) -> dict[str, Any]:
    """A received request in the API's JSON form (the form the dry run prints)."""
    return json.loads(type(request).to_json(request, including_default_value_fields=False))


def test_first_export_creates_types_and_groups_once_then_upserts_every_product(fake: Any, plan: ExportPlan) -> None:
    result = export_catalog(plan, fake.client())

    groups = [f"{PARENT}/entryGroups/meshkit-{d}" for d in ("customers", "payments", "risk")]
    assert result.created == (
        f"{PARENT}/aspectTypes/meshkit-data-product",
        f"{PARENT}/entryTypes/meshkit-data-product",
        *groups,
    )
    assert sorted(result.entries) == [
        f"{PARENT}/entryGroups/meshkit-customers/entries/users",
        f"{PARENT}/entryGroups/meshkit-payments/entries/transactions",
        f"{PARENT}/entryGroups/meshkit-risk/entries/customer-exposure",
    ]
    assert len(fake.requests["CreateAspectType"]) == 1 and len(fake.requests["CreateEntryType"]) == 1
    assert len(fake.requests["CreateEntryGroup"]) == 3
    entry_type = fake.requests["CreateEntryType"][0].entry_type
    assert [a.type_ for a in entry_type.required_aspects] == [f"{PARENT}/aspectTypes/meshkit-data-product"]

    updates = fake.requests["UpdateEntry"]
    assert len(updates) == 3
    for sent, planned in zip(updates, plan.entries, strict=True):
        assert list(sent.update_mask.paths) == ["aspects", "entry_source"]
        assert sent.allow_missing is True
        assert sorted(sent.aspect_keys) == sorted([PRODUCT_ASPECT, SCHEMA_ASPECT_KEY])
        assert sent.entry.entry_type == f"{PARENT}/entryTypes/meshkit-data-product"
        assert _wire(sent) == planned, "what crosses the wire differs from the dry run"


def test_entries_carry_owner_ports_classification_and_the_schema(fake: Any, plan: ExportPlan) -> None:
    export_catalog(plan, fake.client())
    users = fake.entries[f"{PARENT}/entryGroups/meshkit-customers/entries/users"]
    stored = json.loads(type(users).to_json(users, including_default_value_fields=False))

    source = stored["entrySource"]
    assert source["system"] == "meshkit" and source["resource"] == "urn:meshkit:contract:customers:users"
    assert source["labels"] == {"domain": "customers", "lifecycle": "active", "managed-by": "meshkit"}
    product = stored["aspects"][PRODUCT_ASPECT]["data"]
    assert product["owner"] == "ana.souza@fintech.example" and product["domain"] == "customers"
    assert product["status"] == "active"
    assert {p["name"] for p in product["ports"] if p["direction"] == "output"} == {"users-current", "users-changelog"}
    personal = {c["name"]: c["masking"] for c in product["classification"]["personalColumns"]}
    assert personal["cpf"] == "hash" and "user_id" not in personal
    assert product["slo"]["state"] == "no-data" and product["quality"]["state"] == "not-run"
    assert product["downstream"] == ["risk/customer-exposure"]

    fields = {f["name"]: f for f in stored["aspects"][SCHEMA_ASPECT_KEY]["data"]["fields"]}
    assert fields["cpf"]["mode"] == "REQUIRED" and fields["cpf"]["metadataType"] == "STRING"
    assert fields["birth_date"]["metadataType"] == "DATETIME"
    assert fields["updated_at"]["metadataType"] == "TIMESTAMP"
    assert fields["phone"]["mode"] == "NULLABLE"

    exposure = fake.entries[f"{PARENT}/entryGroups/meshkit-risk/entries/customer-exposure"]
    upstream = json.loads(type(exposure).to_json(exposure))["aspects"][PRODUCT_ASPECT]["data"]["upstream"]
    assert upstream == ["customers/users", "payments/transactions"]


def test_a_second_export_creates_nothing_and_updates_in_place(fake: Any, plan: ExportPlan) -> None:
    export_catalog(plan, fake.client())
    again = export_catalog(plan, fake.client())

    assert again.created == ()
    assert len(fake.requests["CreateAspectType"]) == 1 and len(fake.requests["CreateEntryGroup"]) == 3
    assert len(fake.requests["UpdateEntry"]) == 6
    assert len(fake.entries) == 3


def test_a_refused_request_is_one_clear_error(fake: Any, plan: ExportPlan) -> None:
    broken = json.loads(json.dumps(plan.entries[0]))
    broken["entry"]["aspects"][PRODUCT_ASPECT]["data"]["colour"] = "blue"  # not in the aspect type
    bad = ExportPlan(plan.target, plan.aspect_type, plan.entry_type, plan.entry_groups, (broken,))

    with pytest.raises(MeshkitError) as caught:
        export_catalog(bad, fake.client())

    assert "Dataplex Catalog refused a request" in caught.value.message
    assert "colour" in caught.value.message
    assert fake.entries == {}


def test_dry_run_prints_the_requests_without_a_client(
    settings: Settings, plan: ExportPlan, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from meshkit.cli import main

    monkeypatch.setenv("MESHKIT_GCP_PROJECT", PROJECT)
    monkeypatch.setenv("MESHKIT_GCP_LOCATION", LOCATION)
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(Path(settings.workspace)))
    assert main(["--root", str(ROOT), "catalog", "--export", "dataplex", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)

    assert [e["entry"]["name"] for e in printed["updateEntries"]] == [e["entry"]["name"] for e in plan.entries]
    assert printed["createAspectType"] == plan.aspect_type
