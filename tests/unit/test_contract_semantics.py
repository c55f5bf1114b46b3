"""meshkit's semantic contract rules: each crafted mistake gives exactly its rule, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.validation.contract_schema import schema_checks
from governance.validation.contract_semantics import looks_personal, semantic_checks
from meshkit.checks import Check, Status
from meshkit.contracts.model import load_contract, parse_contract
from meshkit.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:contract:shop:orders
name: orders
version: 1.0.0
status: active
domain: shop
servers:
  - server: app-cosmos
    type: custom
    customProperties:
      - property: sourceKind
        value: cosmosdb
      - property: partitionKeyPath
        value: /id
      - property: changeFeedMode
        value: latestVersion
schema:
  - name: orders
    physicalType: table
    properties:
      - name: order_id
        logicalType: string
        physicalType: STRING
        primaryKey: true
        primaryKeyPosition: 1
        classification: internal
        customProperties:
          - property: sourceField
            value: id
      - name: buyer_email
        logicalType: string
        physicalType: STRING
        classification: restricted
        customProperties:
          - property: personalData
            value: true
          - property: masking
            value: hash
      - name: total
        logicalType: number
        physicalType: NUMERIC(18,2)
        classification: internal
        quality:
          - metric: duplicateValues
            arguments:
              properties: [order_id]
            mustBe: 0
      - name: updated_at
        logicalType: timestamp
        physicalType: TIMESTAMP
        classification: internal
roles:
  - role: orders_reader
    access: read
  - role: orders_writer
    access: write
slaDefaultElement: orders.updated_at
slaProperties:
  - property: latency
    value: 15
    unit: m
    element: orders.updated_at
  - property: availability
    value: 99.5
    unit: percent
"""
SOURCE_FIELD = "          - property: sourceField\n            value: id\n"


def _checks(tmp_path: Path, text: str, *, schema_valid: bool = True) -> list[Check]:
    path = tmp_path / "datacontract.yaml"
    path.write_text(text, encoding="utf-8")
    document = load_yaml(path)
    if schema_valid:  # the crafted mistake must be one the JSON Schema cannot see
        assert schema_checks(document) == []
    return semantic_checks(parse_contract(document))


def _line(text: str, marker: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    return hits[occurrence - 1]


def _only(checks: list[Check], rule: str, line: int, field: str, status: Status = Status.FAILED) -> Check:
    assert [(c.rule, c.line, c.field, c.status) for c in checks] == [(rule, line, field, status)], checks
    assert checks[0].hint and checks[0].file
    return checks[0]


def test_base_contract_and_example_products_have_no_findings(tmp_path):
    assert _checks(tmp_path, CONTRACT) == []
    for path in sorted((ROOT / "domains").glob("*/*/datacontract.yaml")):
        assert semantic_checks(load_contract(path)) == [], path


def test_unknown_logical_type_lists_valid_values(tmp_path):
    text = CONTRACT.replace("logicalType: number", "logicalType: money")
    check = _only(
        _checks(tmp_path, text, schema_valid=False),
        "contract.logical-type",
        _line(text, "logicalType: money"),
        "schema[0].properties[2].logicalType",
    )
    assert "timestamp" in check.reason and "boolean" in check.reason


def test_physical_type_must_fit_logical_type(tmp_path):
    text = CONTRACT.replace("physicalType: TIMESTAMP", "physicalType: INT64")
    check = _only(
        _checks(tmp_path, text),
        "contract.physical-type",
        _line(text, "physicalType: INT64"),
        "schema[0].properties[3].physicalType",
    )
    assert "INT64" in check.reason and "timestamp" in check.reason


def test_widening_and_pre_3_1_dates_are_not_type_mismatches(tmp_path):
    integer_number = CONTRACT.replace("physicalType: NUMERIC(18,2)", "physicalType: INT64")
    assert _checks(tmp_path, integer_number) == []
    legacy = CONTRACT.replace("apiVersion: v3.1.0", "apiVersion: v3.0.2").replace(
        "logicalType: timestamp", "logicalType: date"
    )
    assert _checks(tmp_path, legacy) == []
    unknown_physical = CONTRACT.replace("physicalType: TIMESTAMP", "physicalType: GEOGRAPHY")
    assert _checks(tmp_path, unknown_physical) == []


def test_decimal_scale_greater_than_precision(tmp_path):
    text = CONTRACT.replace("NUMERIC(18,2)", "NUMERIC(4,6)")
    _only(
        _checks(tmp_path, text),
        "contract.decimal-scale",
        _line(text, "NUMERIC(4,6)"),
        "schema[0].properties[2].physicalType",
    )


def test_personal_data_needs_restricted_or_confidential(tmp_path):
    text = CONTRACT.replace("classification: restricted", "classification: internal")
    _only(
        _checks(tmp_path, text),
        "contract.personal-classification",
        _line(text, "classification: internal", 2),
        "schema[0].properties[1].classification",
    )


def test_personal_looking_name_is_a_warning(tmp_path):
    text = CONTRACT.replace("- name: total", "- name: customer_cpf")
    check = _only(
        _checks(tmp_path, text),
        "contract.personal-name",
        _line(text, "- name: customer_cpf"),
        "schema[0].properties[2]",
        Status.WARNING,
    )
    assert "customer_cpf" in check.reason


@pytest.mark.parametrize(
    ("name", "personal"),
    [("cpf", True), ("buyerEmail", True), ("e_mail", True), ("fullName", True), ("data_nascimento", True),
     ("rg_number", True), ("tax_id", True), ("org_id", False), ("merchant_name", False), ("smartphone_model", False)],
)  # fmt: skip
def test_looks_personal(name, personal):
    assert looks_personal(name) is personal


def test_unknown_masking_strategy(tmp_path):
    text = CONTRACT.replace("value: hash", "value: scramble")
    check = _only(
        _checks(tmp_path, text),
        "contract.masking",
        _line(text, "value: scramble"),
        "schema[0].properties[1].customProperties[1].value",
    )
    assert "hash, redact, partial, none" in check.reason


def test_primary_key_masked_other_than_hash(tmp_path):
    text = CONTRACT.replace(
        SOURCE_FIELD,
        SOURCE_FIELD + "          - property: masking\n            value: partial\n",
    )
    _only(
        _checks(tmp_path, text),
        "contract.masking-primary-key",
        _line(text, "value: partial"),
        "schema[0].properties[0].customProperties[1].value",
    )


def test_derived_column_cannot_be_primary_key(tmp_path):
    text = CONTRACT.replace(
        SOURCE_FIELD,
        SOURCE_FIELD + "          - property: derived\n            value: true\n",
    )
    _only(
        _checks(tmp_path, text),
        "contract.derived-primary-key",
        _line(text, "            value: true"),
        "schema[0].properties[0].customProperties[1].value",
    )


def test_primary_key_required_only_with_a_source_server(tmp_path):
    text = CONTRACT.replace("        primaryKey: true\n        primaryKeyPosition: 1\n", "")
    _only(_checks(tmp_path, text), "contract.primary-key", _line(text, "    properties:"), "schema[0].properties")
    refined = text.replace("      - property: sourceKind\n        value: cosmosdb\n", "")
    assert _checks(tmp_path, refined) == []


def test_primary_key_positions_duplicate_and_gap(tmp_path):
    composite = CONTRACT.replace(
        "        physicalType: NUMERIC(18,2)\n", "        physicalType: NUMERIC(18,2)\n        primaryKey: true\n"
    )
    duplicate = composite.replace(
        "        primaryKey: true\n        classification: internal\n",
        "        primaryKey: true\n        primaryKeyPosition: 1\n        classification: internal\n",
    )
    check = _only(
        _checks(tmp_path, duplicate),
        "contract.primary-key-position",
        _line(duplicate, "primaryKeyPosition: 1", 2),
        "schema[0].properties[2].primaryKeyPosition",
    )
    assert "order_id" in check.reason
    gap = duplicate.replace(
        "primaryKeyPosition: 1\n        classification: internal\n        quality",
        "primaryKeyPosition: 3\n        classification: internal\n        quality",
    )
    _only(
        _checks(tmp_path, gap),
        "contract.primary-key-position",
        _line(gap, "primaryKeyPosition: 3"),
        "schema[0].properties[2].primaryKeyPosition",
    )


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("    element: orders.updated_at", "    element: orders.changed_at", "slaProperties[0].element"),
        ("slaDefaultElement: orders.updated_at", "slaDefaultElement: orders.modified", "slaDefaultElement"),
        (
            "properties: [order_id]",
            "properties: [order_no]",
            "schema[0].properties[2].quality[0].arguments.properties[0]",
        ),
    ],
)
def test_references_to_missing_columns(tmp_path, old, new, field):
    text = CONTRACT.replace(old, new)
    _only(_checks(tmp_path, text), "contract.reference", _line(text, new.strip()), field)


def test_relationship_and_lineage_references_check_only_own_tables(tmp_path):
    lineage = "        transformSourceObjects: [orders.total, payments.amount, source_table]\n"
    relationship = "        relationships:\n          - type: foreignKey\n            to: orders.buyer\n"
    text = CONTRACT.replace(
        "        logicalType: timestamp\n", lineage + relationship + "        logicalType: timestamp\n"
    )
    _only(
        _checks(tmp_path, text),
        "contract.reference",
        _line(text, "to: orders.buyer"),
        "schema[0].properties[3].relationships[0].to",
    )
    other_table_only = text.replace("to: orders.buyer", "to: customers.customer_id")
    assert _checks(tmp_path, other_table_only) == []


def test_duplicate_property_names_case_insensitive(tmp_path):
    text = CONTRACT.replace("- name: total", "- name: Buyer_Email")
    checks = [c for c in _checks(tmp_path, text) if c.rule == "contract.duplicate-name"]
    assert [(c.line, c.field) for c in checks] == [(_line(text, "Buyer_Email"), "schema[0].properties[2].name")]


def test_duplicate_schema_object_names(tmp_path):
    text = CONTRACT.replace("roles:\n", "  - name: ORDERS\n    physicalType: table\nroles:\n", 1)
    _only(_checks(tmp_path, text), "contract.duplicate-name", _line(text, "- name: ORDERS"), "schema[1].name")


def test_unknown_sla_property_is_a_warning(tmp_path):
    text = CONTRACT.replace("property: availability", "property: uptime")
    _only(
        _checks(tmp_path, text),
        "contract.sla-property",
        _line(text, "property: uptime"),
        "slaProperties[1].property",
        Status.WARNING,
    )


@pytest.mark.parametrize(
    ("old", "new", "rule", "field"),
    [
        ("    unit: m\n", "    unit: weeks\n", "contract.sla-unit", "slaProperties[0].unit"),
        ("    unit: percent\n", "    unit: ms\n", "contract.sla-unit", "slaProperties[1].unit"),
        ("    value: 99.5\n", "    value: 120\n", "contract.sla-value", "slaProperties[1].value"),
        ("    value: 15\n", "    value: -5\n", "contract.sla-value", "slaProperties[0].value"),
        ("    value: 15\n", "    value: '15'\n", "contract.sla-value", "slaProperties[0].value"),
    ],
)
def test_sla_units_and_values(tmp_path, old, new, rule, field):
    text = CONTRACT.replace(old, new)
    _only(_checks(tmp_path, text), rule, _line(text, new.strip()), field)


def test_sla_without_unit(tmp_path):
    text = CONTRACT.replace("    unit: m\n", "")
    _only(_checks(tmp_path, text), "contract.sla-unit", _line(text, "- property: latency"), "slaProperties[0]")


def test_roles_need_a_known_access_and_unique_names(tmp_path):
    no_access = CONTRACT.replace("    access: write\n", "")
    _only(_checks(tmp_path, no_access), "contract.role-access", _line(no_access, "role: orders_writer"), "roles[1]")
    bad = CONTRACT.replace("access: write", "access: everything")
    check = _only(_checks(tmp_path, bad), "contract.role-access", _line(bad, "access: everything"), "roles[1].access")
    assert "read, write, readwrite, admin" in check.reason
    duplicate = CONTRACT.replace("role: orders_writer", "role: Orders_Reader")
    _only(_checks(tmp_path, duplicate), "contract.role-duplicate", _line(duplicate, "Orders_Reader"), "roles[1].role")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("value: latestVersion", "value: everything", "servers[0].customProperties[2].value"),
        ("value: /id", "value: id", "servers[0].customProperties[1].value"),
        ("value: /id", "value: /tenantId", "servers[0].customProperties[1].value"),
    ],
)
def test_source_server_properties(tmp_path, old, new, field):
    text = CONTRACT.replace(old, new)
    _only(_checks(tmp_path, text), "contract.source-server", _line(text, new), field)
