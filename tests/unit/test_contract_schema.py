"""The official ODCS JSON Schema as precise checks: field, line, valid values, best sub-error."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft201909Validator

from governance.validation.contract_schema import schema_checks
from meshkit.checks import Status
from meshkit.cli.validate import render_check
from meshkit.yamlio import YamlDocument, load_yaml

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/odcs"

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:contract:shop:orders
name: orders
version: 1.0.0
status: active
servers:
  - server: app-cosmos
    type: custom
  - server: lake
    type: bigquery
    project: shop-lake
    dataset: shop
schema:
  - name: orders
    properties:
      - name: order_id
        logicalType: string
        required: true
team:
  name: shop-team
"""


def _doc(tmp_path: Path, text: str) -> YamlDocument:
    path = tmp_path / "datacontract.yaml"
    path.write_text(text, encoding="utf-8")
    return load_yaml(path)


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def test_example_products_pass_the_schema():
    for path in sorted((ROOT / "domains").glob("*/*/datacontract.yaml")):
        assert schema_checks(load_yaml(path)) == [], path


def test_valid_contract_has_no_checks(tmp_path):
    assert schema_checks(_doc(tmp_path, CONTRACT)) == []


def test_bigquery_server_without_dataset_names_the_server_and_what_it_needs(tmp_path):
    text = CONTRACT.replace("    dataset: shop\n", "")
    [check] = schema_checks(_doc(tmp_path, text))
    assert (check.rule, check.status, check.field) == ("odcs.schema", Status.FAILED, "servers[1]")
    assert check.line == _line(text, "- server: lake")
    assert check.reason == "'dataset' is a required property"
    assert "dataset" in (check.hint or "") and "bigquery" in (check.hint or "")
    assert f"datacontract.yaml:{check.line} servers[1]: 'dataset' is a required property" in render_check(check)


def test_enum_error_lists_the_valid_values(tmp_path):
    text = CONTRACT.replace("    type: bigquery", "    type: bigqery")
    [check] = schema_checks(_doc(tmp_path, text))
    assert check.field == "servers[1].type"
    assert check.line == _line(text, "type: bigqery")
    assert "'bigqery'" in check.reason and "bigquery" in check.reason and "snowflake" in check.reason


def test_kind_must_be_data_contract(tmp_path):
    [check] = schema_checks(_doc(tmp_path, CONTRACT.replace("kind: DataContract", "kind: Contract")))
    assert (check.field, check.line) == ("kind", 2)
    assert "valid values are: DataContract" in check.reason


def test_unknown_field_is_reported_at_its_own_line(tmp_path):
    text = CONTRACT.replace("        required: true\n", "        required: true\n        nullable: false\n")
    [check] = schema_checks(_doc(tmp_path, text))
    assert check.field == "schema[0].properties[0].nullable"
    assert check.line == _line(text, "nullable: false")
    assert "customProperties" in (check.hint or "")


def test_one_of_descends_to_the_precise_error(tmp_path):
    text = CONTRACT.replace("  name: shop-team\n", "  name: shop-team\n  members: everyone\n")
    [check] = schema_checks(_doc(tmp_path, text))
    assert check.field == "team.members"
    assert check.line == _line(text, "members: everyone")
    assert "array" in check.reason and "not valid under any" not in check.reason


def test_wrong_type_and_missing_top_level_field(tmp_path):
    text = CONTRACT.replace("        required: true", "        required: 'yes'").replace("status: active\n", "")
    checks = schema_checks(_doc(tmp_path, text))
    by_field = {c.field: c for c in checks}
    assert by_field[None].reason == "'status' is a required property"
    required = by_field["schema[0].properties[0].required"]
    assert "boolean" in required.reason and required.line == _line(text, "required: 'yes'")


def test_a_document_that_is_not_a_mapping(tmp_path):
    [check] = schema_checks(_doc(tmp_path, "- just\n- a list\n"))
    assert check.line == 1 and "mapping" in check.reason


def _mutations(data: dict) -> list[dict]:
    """A few realistic mistakes, so the verdict comparison also covers invalid documents."""
    wrong_kind = {**copy.deepcopy(data), "kind": "Contract"}
    no_id = {k: v for k, v in copy.deepcopy(data).items() if k != "id"}
    bad_server = copy.deepcopy(data)
    bad_server["servers"] = [{"server": "lake", "type": "bigquery"}]
    return [wrong_kind, no_id, bad_server]


def test_verdict_equals_jsonschema_on_the_odcs_examples(tmp_path):
    examples = REFERENCE / "examples"
    if not examples.is_dir():
        pytest.skip(f"ODCS reference examples not present at {examples} (only in the project's workspace)")
    reference = Draft201909Validator(json.loads((REFERENCE / "odcs-json-schema-v3.1.0.json").read_text()))
    files = sorted(examples.glob("*.yaml"))
    assert files
    compared = 0
    for path in files:
        document = load_yaml(path)
        # jsonschema needs ~0.6 s per pass over the 5,000-line AdventureWorks example: mutate small files only
        small = path.stat().st_size < 50_000
        for data in [document.data, *(_mutations(document.data) if small else [])]:
            probe = YamlDocument(path, data, document.lines)
            ours = any(c.status is Status.FAILED for c in schema_checks(probe))
            theirs = not reference.is_valid(data)
            assert ours == theirs, f"{path.name}: ours={ours} jsonschema={theirs}"
            compared += 1
    assert compared > 3 * len(files)
