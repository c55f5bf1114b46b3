"""The fast schema verdict (jsonschema-rs) must agree with python-jsonschema on the official schema."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from governance.validation.contract_schema import odcs_fast_verdict, odcs_validator, schema_checks
from meshkit.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT.parent / "shared" / "reference" / "odcs" / "examples"


def corpus() -> list[Any]:
    docs = [load_yaml(p).data for p in sorted((ROOT / "domains").glob("*/*/datacontract.yaml"))]
    if EXAMPLES.is_dir():
        docs += [load_yaml(p).data for p in sorted(EXAMPLES.glob("*.yaml"))]
    return docs


def mutations(doc: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Typical mistakes: wrong types, unknown keys, bad enums, missing required keys, deep edits."""
    out = []
    edits = [
        ("kind", "Contract"), ("apiVersion", "v9"), ("status", 7), ("version", None), ("bogus", 1),
        ("schema", "users"), ("servers", [{"server": "x", "type": "bigquery"}]),
        ("slaProperties", [{"property": "latency", "value": "x", "unitt": "m"}]),
        ("roles", [{"role": 5}]), ("team", {"members": [{"username": 1}]}),
    ]  # fmt: skip
    for key, value in edits:
        changed = copy.deepcopy(doc)
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
        out.append(changed)
    for _ in range(15):  # random deep edits inside schema properties
        changed = copy.deepcopy(doc)
        props = (changed.get("schema") or [{}])[0].get("properties") or []
        if props:
            prop = rng.choice(props)
            key = rng.choice(["logicalType", "required", "primaryKey", "quality", "name", "wrongKey", "classification"])
            prop[key] = rng.choice([1, "x", True, None, [], {"a": 1}])
        out.append(changed)
    return out


def test_both_validators_agree_on_valid_and_broken_contracts() -> None:
    rng = random.Random(5)
    documents = corpus()
    assert documents
    cases = [d for doc in documents for d in [doc, *mutations(doc, rng)]]
    disagreements = [i for i, d in enumerate(cases) if odcs_fast_verdict().is_valid(d) != odcs_validator().is_valid(d)]
    assert disagreements == []
    assert sum(not odcs_validator().is_valid(d) for d in cases) > len(documents)  # the mutations broke many


@pytest.mark.parametrize("ref", ["customers/users", "payments/transactions"])
def test_an_invalid_contract_still_gets_precise_messages(ref: str, tmp_path: Path) -> None:
    text = (ROOT / "domains" / ref / "datacontract.yaml").read_text().replace("kind: DataContract", "kind: Contract")
    path = tmp_path / "datacontract.yaml"
    path.write_text(text)
    checks = schema_checks(load_yaml(path))
    assert [c.field for c in checks] == ["kind"] and "DataContract" in checks[0].reason
