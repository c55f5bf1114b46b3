"""Avro compatibility: each resolution rule under each Confluent mode, checked against fastavro's own
schema resolution where the spec decides, and contract changes seen through their Avro schemas."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml

from meshkit.cli import main
from meshkit.contracts.avro_compat import check_compatibility, contract_schema_changes, resolve
from meshkit.contracts.model import Contract, parse_contract
from meshkit.yamlio import YamlDocument

ROOT = Path(__file__).resolve().parents[2]
USERS: dict[str, Any] = yaml.safe_load((ROOT / "domains/customers/users/datacontract.yaml").read_text("utf-8"))


def _record(*fields: dict[str, Any], name: str = "r", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields), **extra}


def _f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


DEC = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
TS = {"type": "long", "logicalType": "timestamp-micros"}
ENUM = {"type": "enum", "name": "color", "symbols": ["red", "green"]}

# (case, old, new, backward ok, forward ok, the code reported when not ok)
MATRIX: list[tuple[str, dict[str, Any], dict[str, Any], bool, bool, str]] = [
    ("same", _record(_f("a", "long")), _record(_f("a", "long")), True, True, ""),
    (
        "added with default",
        _record(_f("a", "long")),
        _record(_f("a", "long"), _f("b", ["null", "string"], default=None)),
        True,
        True,
        "",
    ),
    (
        "added without default",
        _record(_f("a", "long")),
        _record(_f("a", "long"), _f("b", "string")),
        False,
        True,
        "field-added-without-default",
    ),
    (
        "removed without default",
        _record(_f("a", "long"), _f("b", "string")),
        _record(_f("a", "long")),
        True,
        False,
        "field-removed-without-default",
    ),
    (
        "removed with default",
        _record(_f("a", "long"), _f("b", "string", default="x")),
        _record(_f("a", "long")),
        True,
        True,
        "",
    ),
    ("int -> long", _record(_f("a", "int")), _record(_f("a", "long")), True, False, "type-changed"),
    ("long -> double", _record(_f("a", "long")), _record(_f("a", "double")), True, False, "type-changed"),
    ("float -> double", _record(_f("a", "float")), _record(_f("a", "double")), True, False, "type-changed"),
    ("long -> int", _record(_f("a", "long")), _record(_f("a", "int")), False, True, "type-changed"),
    ("string <-> bytes", _record(_f("a", "string")), _record(_f("a", "bytes")), True, True, ""),
    ("string -> long", _record(_f("a", "string")), _record(_f("a", "long")), False, False, "type-changed"),
    (
        "union branch added",
        _record(_f("a", ["null", "string"])),
        _record(_f("a", ["null", "string", "long"])),
        True,
        False,
        "union-branch-unreadable",
    ),
    (
        "optional -> required",
        _record(_f("a", ["null", "string"], default=None)),
        _record(_f("a", "string")),
        False,
        True,
        "null-not-readable",
    ),
    (
        "required -> optional",
        _record(_f("a", "string")),
        _record(_f("a", ["null", "string"], default=None)),
        True,
        False,
        "null-not-readable",
    ),
    (
        "enum symbol added",
        _record(_f("c", ENUM)),
        _record(_f("c", {**ENUM, "symbols": ["red", "green", "blue"]})),
        True,
        False,
        "enum-symbol-missing",
    ),
    (
        "enum symbol added, reader default",
        _record(_f("c", {**ENUM, "default": "red"})),
        _record(_f("c", {**ENUM, "symbols": ["red", "green", "blue"], "default": "red"})),
        True,
        True,
        "",
    ),
    ("record renamed", _record(_f("a", "long")), _record(_f("a", "long"), name="s"), False, False, "name-changed"),
    (
        "record renamed with alias",
        _record(_f("a", "long")),
        _record(_f("a", "long"), name="s", aliases=["r"]),
        True,
        False,
        "name-changed",
    ),
    (
        "field renamed with alias",
        _record(_f("a", "long")),
        _record(_f("b", "long", aliases=["a"])),
        True,
        False,
        "field-removed-without-default",
    ),
    (
        "array items promoted",
        _record(_f("a", {"type": "array", "items": "int"})),
        _record(_f("a", {"type": "array", "items": "long"})),
        True,
        False,
        "type-changed",
    ),
    (
        "map values changed",
        _record(_f("a", {"type": "map", "values": "string"})),
        _record(_f("a", {"type": "map", "values": "long"})),
        False,
        False,
        "type-changed",
    ),
    (
        "nested field added without default",
        _record(_f("n", _record(_f("x", "long"), name="n"))),
        _record(_f("n", _record(_f("x", "long"), _f("y", "long"), name="n"))),
        False,
        True,
        "field-added-without-default",
    ),
    (
        "decimal precision widened",
        _record(_f("d", DEC)),
        _record(_f("d", {**DEC, "precision": 20})),
        True,
        False,
        "decimal-precision-narrowed",
    ),
    (
        "decimal scale changed",
        _record(_f("d", DEC)),
        _record(_f("d", {**DEC, "scale": 4})),
        False,
        False,
        "decimal-scale-changed",
    ),
    (
        "instant -> local time",
        _record(_f("t", TS)),
        _record(_f("t", {**TS, "logicalType": "local-timestamp-micros"})),
        False,
        False,
        "logical-type-changed",
    ),
    (
        "millis -> micros",
        _record(_f("t", {**TS, "logicalType": "timestamp-millis"})),
        _record(_f("t", TS)),
        False,
        False,
        "logical-type-changed",
    ),
    ("plain long -> timestamp", _record(_f("t", "long")), _record(_f("t", TS)), False, True, "logical-type-changed"),
    (
        "date -> plain int",
        _record(_f("t", {"type": "int", "logicalType": "date"})),
        _record(_f("t", "int")),
        True,
        False,
        "logical-type-changed",
    ),
]
LOGICAL_ONLY = {"decimal-precision-narrowed", "decimal-scale-changed", "logical-type-changed"}


def _sample(schema: dict[str, Any], pick: int) -> Any:
    """A datum of `schema` taking branch `pick` of each union (first and last: the null and a new branch)."""
    parsed = fastavro.parse_schema(schema, named_schemas={})
    return {field["name"]: _value(field["type"], pick) for field in parsed["fields"]}


def _value(schema: Any, pick: int = -1) -> Any:
    if isinstance(schema, list):
        return _value(schema[pick], pick)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "decimal":
        from decimal import Decimal

        return Decimal("1.00")
    if logical and "timestamp" in logical:
        from datetime import UTC, datetime

        return datetime(2026, 1, 1, tzinfo=UTC) if "local" not in logical else datetime(2026, 1, 1)
    if logical == "date":
        from datetime import date

        return date(2026, 1, 1)
    simple = {"long": 1, "int": 1, "double": 1.5, "float": 1.5, "string": "s", "bytes": b"b", "null": None}
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return schema["symbols"][-1]
    if kind == "array":
        return [_value(schema["items"], pick)]
    if kind == "map":
        return {"k": _value(schema["values"], pick)}
    return {f["name"]: _value(f["type"], pick) for f in schema["fields"]}


def _fastavro_reads(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    """Whether fastavro resolves data of `writer` (both union picks) into `reader`."""
    parsed_writer = fastavro.parse_schema(writer, named_schemas={})
    for pick in (0, -1):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed_writer, _sample(writer, pick))
        out.seek(0)
        try:
            fastavro.schemaless_reader(out, parsed_writer, fastavro.parse_schema(reader, named_schemas={}))
        except (fastavro.read.SchemaResolutionError, ValueError, KeyError):
            return False
    return True


@pytest.mark.parametrize(("case", "old", "new", "backward", "forward", "code"), MATRIX, ids=[m[0] for m in MATRIX])
def test_rule_under_each_mode(
    case: str, old: dict[str, Any], new: dict[str, Any], backward: bool, forward: bool, code: str
) -> None:
    results = {mode: check_compatibility(old, new, mode) for mode in ("backward", "forward", "full", "none")}
    assert (not results["backward"], not results["forward"]) == (backward, forward), results
    assert (not results["full"]) == (backward and forward)
    assert results["none"] == []
    found = results["backward"] + results["forward"]
    if code:
        assert code in {i.code for i in found}, found
        assert all(i.path and i.hint for i in found)
    if code not in LOGICAL_ONLY and "enum" not in case:  # the spec decides: fastavro must agree
        assert _fastavro_reads(new, old) == backward, f"{case}: fastavro backward"
        assert _fastavro_reads(old, new) == forward, f"{case}: fastavro forward"


def test_incompatibilities_name_field_direction_and_fix() -> None:
    old = _record(_f("a", "long"))
    new = _record(_f("a", "long"), _f("b", "string"))
    (item,) = check_compatibility(old, new, "full")
    assert (item.path, item.direction) == ("r.b", "backward")
    assert "default" in item.message and "required: false" in item.hint
    assert str(item).startswith("r.b: ")


def test_named_references_and_recursive_types_resolve() -> None:
    node = {"type": "record", "name": "node", "fields": [_f("v", "long"), _f("next", ["null", "node"], default=None)]}
    assert resolve(node, node) == []
    grown = copy.deepcopy(node)
    grown["fields"][0]["type"] = "double"
    assert resolve(grown, node) == [] and resolve(node, grown)[0].code == "type-changed"


def _contract(edit: Any = None) -> Contract:
    data = copy.deepcopy(USERS)
    if edit:
        edit(data)
    return parse_contract(YamlDocument(path=Path("datacontract.yaml"), data=data, lines={}))


def _prop(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["schema"][0]["properties"] if p["name"] == name)


def _mode(data: dict[str, Any], mode: str) -> None:
    data["customProperties"] = [{"property": "schemaCompatibility", "value": mode}]


def test_a_required_column_added_fails_backward() -> None:
    def add(data: dict[str, Any]) -> None:
        data["schema"][0]["properties"].append({"name": "nickname", "logicalType": "string", "required": True})

    found = contract_schema_changes(_contract(), _contract(add))
    assert [(i.code, i.path) for i in found] == [("field-added-without-default", "users.nickname")]
    assert contract_schema_changes(_contract(), _contract(add), "forward") == []


def test_contract_mode_decides_and_none_allows_everything() -> None:
    def widen(data: dict[str, Any]) -> None:
        _prop(data, "credit_limit")["physicalType"] = "NUMERIC(20,2)"

    assert contract_schema_changes(_contract(), _contract(widen)) == []  # backward: a wider reader is fine

    def widen_full(data: dict[str, Any]) -> None:
        widen(data)
        _mode(data, "full")

    (item,) = contract_schema_changes(_contract(), _contract(widen_full))
    assert (item.code, item.direction, item.path) == ("decimal-precision-narrowed", "forward", "users.credit_limit")

    def scale(data: dict[str, Any]) -> None:
        _prop(data, "credit_limit")["physicalType"] = "NUMERIC(18,4)"
        _mode(data, "none")

    assert contract_schema_changes(_contract(), _contract(scale)) == []
    assert contract_schema_changes(_contract(), _contract(scale), "backward")[0].code == "decimal-scale-changed"


def test_optional_column_added_or_removed_is_compatible_in_full_mode() -> None:
    def add(data: dict[str, Any]) -> None:
        data["schema"][0]["properties"].append({"name": "nickname", "logicalType": "string"})
        _mode(data, "full")

    assert contract_schema_changes(_contract(), _contract(add)) == []


# --- `meshkit diff` reports Avro incompatibilities (the style of tests/unit/test_diff.py) ----------------

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
    shutil.copy(ROOT / "domains/customers/users/datacontract.yaml", product / "datacontract.yaml")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "users 1.2.0")
    return repo


def _edit_contract(repo: Path, edit: Any) -> None:
    path = repo / "domains" / "customers" / "users" / "datacontract.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@needs_git
def test_cli_diff_reports_an_avro_incompatible_change(mesh_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """date -> timestamp widens the column (non-breaking for SQL readers) but Avro would read days as
    microseconds: the registry refuses it under BACKWARD, so the gate asks for a major version."""

    def edit(data: dict[str, Any]) -> None:
        _prop(data, "birth_date").update(logicalType="timestamp", physicalType="TIMESTAMP")
        data["version"] = "1.3.0"

    _edit_contract(mesh_repo, edit)
    code = main(["--root", str(mesh_repo), "diff", "--base", "HEAD"])
    out = capsys.readouterr().out
    assert code == 1
    assert "type-widened" in out and "avro-logical-type-changed" in out and "birth_date" in out
    assert "Avro BACKWARD compatibility" in out and "2.0.0" in out


@needs_git
def test_cli_diff_json_names_the_mode_and_field(mesh_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(data: dict[str, Any]) -> None:
        _prop(data, "credit_limit")["physicalType"] = "NUMERIC(20,2)"
        _mode(data, "full")
        data["version"] = "2.0.0"

    _edit_contract(mesh_repo, edit)
    assert main(["--root", str(mesh_repo), "diff", "--base", "HEAD", "--format", "json"]) == 0
    (users,) = json.loads(capsys.readouterr().out)["contracts"]
    (avro,) = [c for c in users["changes"] if c["code"].startswith("avro-")]
    assert avro["code"] == "avro-decimal-precision-narrowed" and avro["kind"] == "breaking"
    assert "Avro FULL compatibility: users.credit_limit" in avro["message"]
    assert avro["field"] == "schema[0].properties[9]"
