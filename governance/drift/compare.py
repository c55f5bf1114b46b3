"""Compare a merged document profile with the contract's source columns: new, vanished and retyped
fields, and requiredness judged from presence. Pure functions of (contract, profile)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from governance.drift.model import BAD_VALUE_SHARE, REQUIRED_SHARE, VANISHED_SHARE, DriftFinding
from meshkit.contracts.model import Column, Contract
from meshkit.contracts.types import decimal_params
from pipelines.transforms.profile import OVERFLOW_PATH, DocumentProfile, FieldProfile

STRING_KINDS = frozenset({"string", "string/date", "string/date-time", "string/uuid", "string/numeric"})
# integer -> number and date -> timestamp are the widenings governance/diff accepts as non-breaking
WIDENINGS: dict[tuple[str, frozenset[str]], tuple[str, str, dict[str, Any]]] = {
    ("integer", frozenset({"number"})): ("number", "NUMERIC", {}),
    ("date", frozenset({"string/date-time"})): ("timestamp", "TIMESTAMP", {"timezone": True}),
}


@dataclass(frozen=True)
class ColumnType:
    """A proposed column type: ODCS logicalType, physicalType and logicalTypeOptions."""

    logical: str
    physical: str | None
    options: dict[str, Any]


def accepted_kinds(column: Column) -> frozenset[str]:
    """The kinds of value the pipeline's decoder accepts for `column` (pipelines/transforms/rules.py)."""
    logical = column.logical_type
    if logical in ("string", "time"):
        return STRING_KINDS
    if logical == "number":
        numeric = frozenset({"string/numeric"}) if decimal_params(column.physical_type) else frozenset()
        return frozenset({"integer", "number"}) | numeric
    return {
        "integer": frozenset({"integer"}),
        "boolean": frozenset({"boolean"}),
        "date": frozenset({"string/date"}),
        "timestamp": frozenset({"string/date-time", "string/date"}),
        "object": frozenset({"object"}),
        "array": frozenset({"array"}),
    }.get(logical, STRING_KINDS)


def infer_type(kinds: dict[str, int]) -> ColumnType:
    """The contract type that accepts every non-null kind seen (the most frequent one when they mix)."""
    seen = {k for k, n in kinds.items() if n and k != "null"}
    if not seen:
        return ColumnType("string", "STRING", {})
    if seen <= STRING_KINDS:
        if seen == {"string/date"}:
            return ColumnType("date", "DATE", {})
        if seen <= {"string/date-time", "string/date"}:
            return ColumnType("timestamp", "TIMESTAMP", {"timezone": True})
        if seen == {"string/uuid"}:
            return ColumnType("string", "STRING", {"format": "uuid"})
        return ColumnType("string", "STRING", {})
    if seen == {"integer"}:
        return ColumnType("integer", "INT64", {})
    if seen <= {"integer", "number"}:
        return ColumnType("number", "FLOAT64", {})
    if seen == {"boolean"}:
        return ColumnType("boolean", "BOOL", {})
    if seen == {"object"}:
        return ColumnType("object", "JSON", {})
    if seen == {"array"}:
        return ColumnType("array", None, {})
    dominant = max(seen, key=lambda k: (kinds[k], k))
    return infer_type({dominant: kinds[dominant]})


def column_name(field: str) -> str:
    """`installmentCount` -> `installment_count`: the contract's snake_case column names."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field)
    return re.sub(r"[^0-9a-zA-Z_]+", "_", snake).strip("_").lower() or "field"


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "0%"


def _kinds_text(kinds: dict[str, int]) -> str:
    return ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items(), key=lambda item: (-item[1], item[0])))


def compare(contract: Contract, profile: DocumentProfile) -> list[DriftFinding]:
    """Every finding, in contract order for known columns, then new fields by name."""
    findings: list[DriftFinding] = []
    known: set[str] = set()
    for column in contract.source_columns:
        seen = profile.fields.get(column.source_field) or profile.fields.get(column.name)
        known |= {column.source_field, column.name}
        findings += _column_findings(column, seen, profile.documents)
    names = {c.name for c in contract.columns}
    for path, seen in profile.fields.items():
        if "." in path or path in known or path == OVERFLOW_PATH:
            continue
        findings.append(_new_field(path, seen, profile.documents, names))
    if OVERFLOW_PATH in profile.fields:
        over = profile.fields[OVERFLOW_PATH]
        findings.append(
            DriftFinding(
                "too-many-fields", OVERFLOW_PATH, None, over.present, profile.documents, over.kinds,
                "documents carry more distinct fields than the profile keeps per batch; the excess was "
                "counted together (keys that are data, such as ids, look like this)",
            )
        )  # fmt: skip
    return findings


def _column_findings(column: Column, seen: FieldProfile | None, documents: int) -> Iterator[DriftFinding]:
    field = column.source_field
    kinds = dict(seen.kinds) if seen else {}
    present = seen.present if seen else 0
    non_null = seen.non_null if seen else 0

    def finding(code: Any, message: str, proposed: str | None = None) -> DriftFinding:
        return DriftFinding(code, field, column.name, present, documents, kinds, message, proposed)

    if present < VANISHED_SHARE * documents:
        yield finding(
            "field-vanished",
            f"column {column.name!r} (field {field!r}) appears in {present:,} of {documents:,} documents "
            f"({_pct(present, documents)}, below {VANISHED_SHARE:.0%})",
            "marked with a comment (remove it in a major version if the source dropped it for good)",
        )
        return
    bad = {k: n for k, n in kinds.items() if k != "null" and k not in accepted_kinds(column)}
    if bad:
        share = sum(bad.values()) / max(non_null, 1)
        declared = column.logical_type + (f" ({column.physical_type})" if column.physical_type else "")
        widened = WIDENINGS.get((column.logical_type, frozenset(bad)))
        if share >= BAD_VALUE_SHARE:
            yield finding(
                "type-changed",
                f"column {column.name!r} is {declared} but {_pct(sum(bad.values()), non_null)} of the values of "
                f"{field!r} are {_kinds_text(bad)}; the pipeline dead-letters them",
                f"widen to {widened[0]} ({widened[1]})" if widened else
                "marked with a comment: no wider contract type accepts both; fix the producer or retype the column",
            )  # fmt: skip
        else:
            yield finding(
                "bad-values",
                f"column {column.name!r}: {_kinds_text(bad)} of {non_null:,} values are not {declared} "
                f"(below {BAD_VALUE_SHARE:.0%}: bad values, dead-lettered, not drift)",
            )
    if column.required and documents - non_null >= BAD_VALUE_SHARE * documents:
        yield finding(
            "required-violated",
            f"column {column.name!r} is required but {_pct(documents - non_null, documents)} of the documents "
            f"lack a value (at least {BAD_VALUE_SHARE:.0%}: a source that stopped sending it, not bad values)",
            None if column.primary_key else "set `required: false`",
        )
    elif column.required and non_null < documents:
        yield finding(
            "bad-values",
            f"column {column.name!r}: {documents - non_null:,} of {documents:,} documents lack a value "
            "(dead-lettered as `required`)",
        )
    elif not column.required and documents and non_null >= REQUIRED_SHARE * documents:
        yield finding(
            "could-be-required",
            f"optional column {column.name!r} has a value in {_pct(non_null, documents)} of the documents; "
            "it could be required (no change proposed)",
        )


def _new_field(path: str, seen: FieldProfile, documents: int, names: set[str]) -> DriftFinding:
    name = column_name(path)
    required = seen.non_null >= REQUIRED_SHARE * documents
    inferred = infer_type(seen.kinds)
    what = f"{inferred.logical} ({inferred.physical})" if inferred.physical else inferred.logical
    message = (
        f"field {path!r} is not in the contract; present in {_pct(seen.present, documents)} of {documents:,} "
        f"documents ({_kinds_text(seen.kinds)})"
    )
    if name in names:
        return DriftFinding(
            "field-added", path, None, seen.present, documents, seen.kinds,
            f"{message}; its column name {name!r} is taken: add it by hand", None,
        )  # fmt: skip
    proposed = f"add column {name!r}: {what}, {'required' if required else 'optional'}"
    return DriftFinding("field-added", path, name, seen.present, documents, seen.kinds, message, proposed)
