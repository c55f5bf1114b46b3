"""Fields and types of JSON documents inferred from a sample: what `meshkit import cosmos` proposes.

Every field path is profiled (how often it is present and non-null, which JSON kinds it holds; nested
objects and array elements recursively); `FieldProfile.types()` then picks the narrowest BigQuery type
that holds every value seen, through the same type table the rest of meshkit uses (`document.typed`).
A field present in every sampled document is required; one seen in fewer is optional.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from governance.interop.document import column, needs_privacy_review, snake_case, typed

# Cosmos DB's system properties: never part of the product's schema
SYSTEM_FIELDS = frozenset({"_rid", "_ts", "_etag", "_self", "_lsn", "_attachments"})

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(?P<zone>Z|[+-]\d{2}:?\d{2})?$")
_STRINGS = frozenset({"string", "uuid", "date", "timestamp", "datetime"})
# a string field with this few distinct values over enough samples may be a closed set: say so
FEW_VALUES, ENOUGH_SAMPLES, MAX_SHOWN_LENGTH = 10, 20, 40


def kind_of(value: Any) -> str:
    """The JSON kind of one value; strings are refined to uuid, date, timestamp (with zone) or datetime."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    text = str(value)
    if _UUID.match(text):
        return "uuid"
    if _DATE.match(text):
        return "date"
    match = _TIMESTAMP.match(text)
    if match:
        return "timestamp" if match.group("zone") else "datetime"
    return "string"


@dataclass
class FieldProfile:
    """What a sample says about one field: how many non-null values, of which kinds; nested objects'
    fields and array elements are profiled the same way."""

    present: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    children: dict[str, FieldProfile] = field(default_factory=dict)  # fields of the object values
    element: FieldProfile | None = None  # the elements of the array values
    elements: int = 0  # how many array elements (null ones included)
    strings: set[str] = field(default_factory=set)  # distinct plain strings, up to FEW_VALUES + 1

    def observe(self, value: Any) -> None:
        if value is None:
            return
        self.present += 1
        kind = kind_of(value)
        self.kinds[kind] += 1
        if kind == "string" and len(self.strings) <= FEW_VALUES:
            self.strings.add(value)
        if kind == "object":
            observe_object(self.children, value)
        elif kind == "array":
            self.element = self.element or FieldProfile()
            self.elements += len(value)
            for item in value:
                self.element.observe(item)

    def types(self, *, reveal: bool = True) -> tuple[dict[str, Any], str | None]:
        """(logicalType/physicalType/options, a review note or None) for the values seen. `reveal` False
        keeps the values out of the note: a contract is committed, personal data must not be."""
        kinds = set(self.kinds)
        if not kinds:
            return typed("STRING"), "only null values were seen: TODO set the type"
        simple = {
            frozenset({"boolean"}): typed("BOOL"),
            frozenset({"integer"}): typed("INT64"),
            frozenset({"uuid"}): {**typed("STRING"), "logicalTypeOptions": {"format": "uuid"}},
            frozenset({"date"}): typed("DATE"),
            frozenset({"timestamp"}): typed("TIMESTAMP"),
            frozenset({"datetime"}): typed("DATETIME"),
        }
        if frozenset(kinds) in simple:
            return simple[frozenset(kinds)], None
        if kinds <= {"integer", "number"}:
            return typed("FLOAT64"), "numbers are doubles in JSON: TODO use NUMERIC(p,s) for money"
        if kinds == {"object"}:
            return (typed("RECORD"), None) if self.children else (typed("JSON"), "only empty objects were seen")
        if kinds == {"array"}:
            return {"logicalType": "array", "physicalType": "ARRAY"}, None
        few = len(self.strings) <= FEW_VALUES and all(len(v) <= MAX_SHOWN_LENGTH for v in self.strings)
        if reveal and kinds == {"string"} and few and self.present >= ENOUGH_SAMPLES:
            seen = ", ".join(sorted(self.strings))
            return typed("STRING"), f"only these values were seen: {seen} (TODO: declare validValues if closed)"
        if kinds <= _STRINGS:
            return typed("STRING"), None
        mixed = ", ".join(sorted(kinds))
        return typed("JSON"), f"values of several kinds were seen ({mixed}): TODO pick one type"


def observe_object(profiles: dict[str, FieldProfile], document: Mapping[str, Any], *, top: bool = False) -> None:
    """Add one object's fields to `profiles` (Cosmos DB system fields skipped at the top level)."""
    for name, value in document.items():
        if top and name in SYSTEM_FIELDS:
            continue
        profiles.setdefault(name, FieldProfile()).observe(value)


def profile_documents(documents: Iterable[Mapping[str, Any]]) -> tuple[dict[str, FieldProfile], int]:
    """Profiles of the fields of `documents` and how many documents there were."""
    profiles: dict[str, FieldProfile] = {}
    count = 0
    for document in documents:
        count += 1
        observe_object(profiles, document, top=True)
    return profiles, count


def _shape(profile: FieldProfile, *, reveal: bool) -> tuple[dict[str, Any], str | None]:
    """Types plus the nested `properties` or array `items` of one profile."""
    types, note = profile.types(reveal=reveal)
    if types["logicalType"] == "object" and types.get("physicalType") == "RECORD":
        types["properties"] = properties_of(profile.children, profile.kinds["object"], nested=True)
    elif types["logicalType"] == "array":
        element = profile.element
        if element is None or not element.kinds:
            return typed("JSON"), "only empty arrays were seen: TODO declare `items`"
        if set(element.kinds) == {"array"}:
            return typed("JSON"), "arrays of arrays cannot be BigQuery columns: kept as JSON"
        item_types, item_note = _shape(element, reveal=reveal)
        types["items"] = item_types
        note = note or item_note
    return types, note


def properties_of(profiles: Mapping[str, FieldProfile], parents: int, *, nested: bool = False) -> list[dict[str, Any]]:
    """ODCS properties of fields profiled over `parents` objects, in the order first seen: required when
    non-null in every one. Top-level names become snake_case (`sourceField` keeps the document's)."""
    out: list[dict[str, Any]] = []
    taken: set[str] = set()
    for name, profile in profiles.items():
        types, note = _shape(profile, reveal=not needs_privacy_review(name))
        share = profile.present / parents if parents else 0.0
        described = f"Inferred from {parents} sampled values: present and non-null in {share:.0%}."
        if note:
            described += f" {note[0].upper()}{note[1:]}."
        column_name = name if nested else snake_case(name)
        while column_name in taken:  # `customerId` and `customer_id` in one document: keep both apart
            column_name += "_2"
        taken.add(column_name)
        out.append(
            column(
                column_name,
                types,
                required=parents > 0 and profile.present == parents,
                description=described,
                source_field=name,
                nested=nested,
            )
        )
    return out
