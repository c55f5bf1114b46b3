"""The breaking-change and semver gate: classification of crafted contract pairs, the version check,
and `meshkit diff` against a throwaway git repository."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.diff import diff_contracts, diff_mesh
from governance.diff.changes import Change, classify
from governance.diff.section import review_section
from governance.diff.semver import actual_bump, check_version, required_bump, suggested_version
from governance.review.sections import ReviewContext
from meshkit.checks import Status
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.contracts.model import Contract, parse_contract
from meshkit.errors import ConfigError
from meshkit.products.discovery import discover
from meshkit.yamlio import YamlDocument

REPO = Path(__file__).resolve().parents[2]
USERS = REPO / "domains" / "customers" / "users" / "datacontract.yaml"
BASE: dict[str, Any] = yaml.safe_load(USERS.read_text(encoding="utf-8"))


def _contract(data: dict[str, Any]) -> Contract:
    return parse_contract(YamlDocument(path=Path("datacontract.yaml"), data=data, lines={}))


def _prop(data: dict[str, Any], name: str) -> dict[str, Any]:
    props: list[dict[str, Any]] = data["schema"][0]["properties"]
    return next(p for p in props if p["name"] == name)


def _custom(prop: dict[str, Any], key: str, value: Any) -> None:
    for item in prop.setdefault("customProperties", []):
        if item["property"] == key:
            item["value"] = value
            return
    prop["customProperties"].append({"property": key, "value": value})


def _sla(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["slaProperties"] if p["property"] == name)


def _changes(edit: Callable[[dict[str, Any]], None]) -> list[Change]:
    new = copy.deepcopy(BASE)
    edit(new)
    return classify(_contract(copy.deepcopy(BASE)), _contract(new))


def _codes(changes: list[Change]) -> dict[str, str]:
    return {c.code: c.kind for c in changes}


def test_identical_contracts_have_no_changes() -> None:
    assert _changes(lambda d: None) == []


def test_column_removed_is_breaking_and_named() -> None:
    changes = _changes(lambda d: d["schema"][0]["properties"].remove(_prop(d, "segment")))
    (change,) = changes
    assert (change.kind, change.code, change.old) == ("breaking", "column-removed", "segment")
    assert "segment" in change.message


def test_rename_in_place_with_same_type_is_reported_as_rename() -> None:
    changes = _changes(lambda d: _prop(d, "segment").update(name="customer_segment"))
    assert [(c.code, c.kind, c.old, c.new) for c in changes] == [
        ("column-renamed", "breaking", "segment", "customer_segment")
    ]


def test_removed_and_added_with_other_type_is_not_a_rename() -> None:
    def edit(d: dict[str, Any]) -> None:
        _prop(d, "segment").update(name="segment_code", logicalType="integer", physicalType="INT64", required=False)

    assert _codes(_changes(edit)) == {"column-removed": "breaking", "column-added": "non-breaking"}


@pytest.mark.parametrize(
    ("column", "edit", "code", "kind"),
    [
        ("credit_limit", {"physicalType": "NUMERIC(10,2)"}, "type-narrowed", "breaking"),
        ("credit_limit", {"physicalType": "NUMERIC(18,4)"}, "type-narrowed", "breaking"),  # fewer integer digits
        ("credit_limit", {"physicalType": "NUMERIC(20,2)"}, "type-widened", "non-breaking"),
        ("credit_limit", {"logicalType": "string", "physicalType": "STRING"}, "type-changed", "breaking"),
        ("full_name", {"logicalTypeOptions": {"minLength": 3, "maxLength": 60}}, "maxLength-tightened", "breaking"),
        ("full_name", {"logicalTypeOptions": {"minLength": 3, "maxLength": 200}}, "maxLength-relaxed", "non-breaking"),
        ("phone", {"required": True}, "required-added", "breaking"),
        ("cpf", {"logicalTypeOptions": {"pattern": "^[0-9]{11}[0-9]?$"}}, "pattern-tightened", "breaking"),
        ("cpf", {"logicalTypeOptions": {}}, "pattern-removed", "non-breaking"),
        ("full_name", {"classification": "internal"}, "classification-downgraded", "governance"),
        ("email", {"description": "Where we write to."}, "description-changed", "non-breaking"),
    ],
)
def test_column_edits(column: str, edit: dict[str, Any], code: str, kind: str) -> None:
    changes = _changes(lambda d: _prop(d, column).update(edit))
    assert _codes(changes).get(code) == kind, changes
    assert all(column in c.message for c in changes if c.code == code)


def test_integer_to_string_is_breaking() -> None:
    new = copy.deepcopy(BASE)
    _prop(new, "credit_limit").update(logicalType="integer", physicalType="INT64")
    newer = copy.deepcopy(new)
    _prop(newer, "credit_limit").update(logicalType="string", physicalType="STRING")
    assert _codes(classify(_contract(new), _contract(newer))) == {"type-changed": "breaking"}


def test_enum_values_removed_is_breaking_added_is_not() -> None:
    def edit(d: dict[str, Any]) -> None:
        rule = _prop(d, "segment")["quality"][0]
        rule["arguments"]["validValues"] = ["retail", "premium", "business", "startup"]

    changes = {c.code: c for c in _changes(edit)}
    assert changes["enum-values-removed"].kind == "breaking" and changes["enum-values-removed"].old == ["private"]
    assert changes["enum-values-added"].kind == "non-breaking" and changes["enum-values-added"].new == ["startup"]


def test_primary_key_change_is_breaking() -> None:
    def edit(d: dict[str, Any]) -> None:
        _prop(d, "cpf").update(primaryKey=True, primaryKeyPosition=2)

    assert _codes(_changes(edit))["primary-key-changed"] == "breaking"


def test_nullable_column_added_is_non_breaking_required_is_breaking() -> None:
    nullable = {"name": "nickname", "logicalType": "string", "physicalType": "STRING", "required": False}
    assert _codes(_changes(lambda d: d["schema"][0]["properties"].append(nullable))) == {"column-added": "non-breaking"}
    required = {**nullable, "name": "tier", "required": True}
    assert _codes(_changes(lambda d: d["schema"][0]["properties"].append(required))) == {
        "required-column-added": "breaking"
    }


def test_personal_data_and_masking_weakened_are_governance() -> None:
    def edit(d: dict[str, Any]) -> None:
        _custom(_prop(d, "cpf"), "masking", "partial")
        _custom(_prop(d, "email"), "personalData", False)

    codes = _codes(_changes(edit))
    assert codes["masking-weakened"] == "governance"
    assert codes["personal-data-unflagged"] == "governance"


def test_roles_widened_and_added_are_governance() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["roles"][0]["access"] = "write"
        d["roles"].append({"role": "marketing_reader", "access": "read"})

    codes = _codes(_changes(edit))
    assert codes == {"role-widened": "governance", "role-added": "governance"}


@pytest.mark.parametrize(
    ("name", "value", "unit", "code", "kind"),
    [
        ("retention", 1, "y", "retention-shortened", "governance"),
        ("retention", 36, "mo", "retention-shortened", "governance"),  # 3 y < 5 y across units
        ("retention", 7, "y", "sla-tightened", "non-breaking"),
        ("latency", 1, "h", "sla-loosened", "governance"),
        ("latency", 5, "m", "sla-tightened", "non-breaking"),
        ("availability", 99.0, "percent", "sla-loosened", "governance"),
        ("errorRate", 2, "percent", "sla-loosened", "governance"),
    ],
)
def test_sla_changes(name: str, value: float, unit: str, code: str, kind: str) -> None:
    changes = _changes(lambda d: _sla(d, name).update(value=value, unit=unit))
    assert _codes(changes) == {code: kind}


def test_source_server_change_is_governance() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["servers"][0]["account"] = "fintech-app-us"

    (change,) = _changes(edit)
    assert (change.kind, change.code) == ("governance", "server-changed")
    assert "fintech-app-us" in change.message


def test_required_bump_per_kind() -> None:
    breaking = Change("breaking", "column-removed", "f", "a", None, "m")
    governance = Change("governance", "role-added", "f", None, "r", "m")
    addition = Change("non-breaking", "column-added", "f", None, "c", "m")
    docs = Change("non-breaking", "description-changed", "f", None, None, "m")
    assert required_bump([breaking, addition]) == "major"
    assert required_bump([governance]) == "minor"
    assert required_bump([addition]) == "minor"
    assert required_bump([docs]) == "patch"
    assert required_bump([]) == "none"
    assert actual_bump("1.2.0", "2.0.0") == "major" and actual_bump("1.2.0", "1.1.0") is None
    assert suggested_version("1.2.3", "minor") == "1.3.0"
    check = check_version([governance], "1.2.0", "1.3.0")
    assert check.ok and check.needs_approval and "governance" in check.message
    assert not check_version([breaking], "1.2.0", "1.3.0").ok
    assert check_version([breaking], "0.4.0", "0.5.0").ok  # before 1.0.0 a minor bump may break


def test_diff_contracts_flags_missing_bump() -> None:
    new = copy.deepcopy(BASE)
    new["schema"][0]["properties"].remove(_prop(new, "segment"))
    result = diff_contracts("customers/users", _contract(copy.deepcopy(BASE)), _contract(new))
    assert not result.ok and result.suggestion == "2.0.0"
    new["version"] = "2.0.0"
    assert diff_contracts("customers/users", _contract(copy.deepcopy(BASE)), _contract(new)).ok


# --- against a real git repository ---------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def mesh_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "mesh"
    product = repo / "domains" / "customers" / "users"
    product.mkdir(parents=True)
    shutil.copy(USERS, product / "datacontract.yaml")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "users 1.2.0")
    return repo


def _edit_contract(repo: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = repo / "domains" / "customers" / "users" / "datacontract.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _drop_segment(data: dict[str, Any]) -> None:
    data["schema"][0]["properties"].remove(_prop(data, "segment"))


@needs_git
def test_cli_fails_when_bump_missing_and_names_the_column(mesh_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_contract(mesh_repo, _drop_segment)
    code = main(["--root", str(mesh_repo), "diff", "--base", "HEAD"])
    out = capsys.readouterr().out
    assert code == 1
    assert "segment" in out and "column-removed" in out and "2.0.0" in out


@needs_git
def test_cli_passes_with_the_proper_bump(mesh_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(data: dict[str, Any]) -> None:
        _drop_segment(data)
        data["version"] = "2.0.0"

    _edit_contract(mesh_repo, edit)
    code = main(["--root", str(mesh_repo), "diff", "--base", "HEAD", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"]
    (users,) = report["contracts"]
    assert users["version"]["required"] == "major"
    assert [c["code"] for c in users["changes"]] == ["column-removed"]


@needs_git
def test_added_and_removed_products(mesh_repo: Path) -> None:
    other = mesh_repo / "domains" / "payments" / "transactions"
    other.mkdir(parents=True)
    shutil.copy(REPO / "domains" / "payments" / "transactions" / "datacontract.yaml", other)
    shutil.rmtree(mesh_repo / "domains" / "customers")
    result = {d.ref: d for d in diff_mesh(mesh_repo, "HEAD").contracts}
    assert result["payments/transactions"].status == "added"
    assert result["customers/users"].status == "removed"
    assert result["customers/users"].changes[0].kind == "breaking"


@needs_git
def test_unknown_revision_and_no_repository_are_config_errors(mesh_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        diff_mesh(mesh_repo, "no-such-branch")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not inside a git repository"):
        diff_mesh(plain, "HEAD")


@needs_git
def test_review_section_reports_missing_bump_per_product(mesh_repo: Path) -> None:
    _edit_contract(mesh_repo, _drop_segment)
    settings = load_settings(mesh_repo, environ={})
    products = tuple(discover(settings.domains_dir))
    context = ReviewContext(settings=settings, products=products, today=date(2026, 11, 26), base_revision="HEAD")
    section = review_section(context)
    assert section.key == "diff"
    failed = [c for c in section.checks if c.status is Status.FAILED]
    assert failed and "segment" in failed[0].reason
    assert section.per_product["customers/users"]
    no_base = review_section(ReviewContext(settings=settings, products=products, today=date(2026, 11, 26)))
    assert no_base.checks == () and "no base revision" in no_base.summary


@needs_git
def test_batch_read_matches_git_show_and_skips_missing_paths(mesh_repo: Path) -> None:
    from governance.diff.git import read_at, read_many_at, resolve_revision

    commit = resolve_revision(mesh_repo, "HEAD")
    path = "domains/customers/users/datacontract.yaml"
    texts = read_many_at(mesh_repo, commit, ["domains/none/x/datacontract.yaml", path])
    assert texts == {path: read_at(mesh_repo, commit, path)}


@needs_git
def test_contract_broken_now_is_an_error_that_fails_the_gate(
    mesh_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (mesh_repo / "domains" / "customers" / "users" / "datacontract.yaml").write_text("schema: [", encoding="utf-8")
    assert main(["--root", str(mesh_repo), "diff", "--base", "HEAD"]) == 1
    assert "invalid YAML" in capsys.readouterr().out
