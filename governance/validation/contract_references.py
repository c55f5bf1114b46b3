"""Contract rules about names pointing at columns (relationships, lineage, quality, SLA elements) and
about SLA properties, units and values.

A reference `table.column` is checked only when `table` is one of this contract's schema objects:
other tables belong to other contracts, which this contract cannot see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from open_data_contract_standard.model import DataQuality, Relationship, SchemaObject, SchemaProperty

from meshkit.checks import Check
from meshkit.contracts.model import Contract

SLA_PROPERTIES = (
    "latency", "retention", "frequency", "availability", "throughput", "errorRate",
    "generalAvailability", "endOfSupport", "endOfLife", "timeOfAvailability",
)  # fmt: skip
DURATION_UNITS = (
    "d", "day", "days", "h", "hr", "hour", "hours", "m", "min", "minute", "minutes", "s", "sec",
    "second", "seconds", "y", "yr", "year", "years", "mo", "month", "months",
)  # fmt: skip
PERCENT_UNITS = ("percent", "%")
_DURATION_SLAS = frozenset({"latency", "retention", "frequency"})
_PERCENT_SLAS = frozenset({"availability", "errorRate"})
_NUMERIC_SLAS = _DURATION_SLAS | _PERCENT_SLAS | {"throughput"}
_EXTERNAL = re.compile(r"\.ya?ml#")


class CheckAt(Protocol):
    """Builds a check located at a field of the contract being validated."""

    def __call__(self, rule: str, reason: str, field: str, hint: str, *, warning: bool = False) -> Check: ...


@dataclass(frozen=True)
class PropertyAt:
    """A schema property (at any depth), the schema object it belongs to, and its field path."""

    path: str
    prop: SchemaProperty
    table: SchemaObject


def walk_properties(contract: Contract) -> Iterator[PropertyAt]:
    for i, table in enumerate(contract.odcs.schema_ or ()):
        for j, prop in enumerate(table.properties or ()):
            yield from _walk(f"schema[{i}].properties[{j}]", prop, table)


def _walk(path: str, prop: SchemaProperty, table: SchemaObject) -> Iterator[PropertyAt]:
    yield PropertyAt(path, prop, table)
    for k, child in enumerate(prop.properties or ()):
        yield from _walk(f"{path}.properties[{k}]", child, table)
    if prop.items is not None:
        yield from _walk(f"{path}.items", prop.items, table)


def _listed(value: str | list[str] | None, path: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [(value, path)]
    return [(v, f"{path}[{n}]") for n, v in enumerate(value)]


@dataclass(frozen=True)
class _Tables:
    """Column names (lower-cased) per schema object name, and property ids per schema object id."""

    names: dict[str, list[str]]
    ids: dict[str, set[str]]

    @classmethod
    def of(cls, contract: Contract) -> _Tables:
        names: dict[str, list[str]] = {}
        ids: dict[str, set[str]] = {}
        for table in contract.odcs.schema_ or ():
            props = table.properties or []
            # a repeated table name is reported as a duplicate; references resolve to the first one
            if table.name:
                names.setdefault(table.name.lower(), [p.name for p in props if p.name])
            if table.id:
                ids.setdefault(table.id, {p.id for p in props if p.id})
        return cls(names, ids)

    def has(self, table: str, column: str) -> bool:
        return column.lower() in {c.lower() for c in self.names.get(table.lower(), [])}

    def problem(self, ref: str, own: str | None, dotless: str) -> str | None:
        """Why `ref` names a column that does not exist here, or None when it exists or is not ours.
        `dotless` says what a bare name means: "column" (of `own`), "table" or "element"."""
        ref = ref.strip()
        if _EXTERNAL.search(ref):
            return None
        if "/" in ref:
            parts = ref.lstrip("/").split("/")
            ours = len(parts) >= 4 and parts[0] == "schema" and parts[2] == "properties" and parts[1] in self.ids
            if ours and parts[3] not in self.ids[parts[1]]:
                return f"schema object id {parts[1]!r} has no property with id {parts[3]!r}"
            return None
        if "." in ref:
            table, column = ref.split(".")[:2]
            if table.lower() in self.names and not self.has(table, column):
                return f"table {table!r} has no column {column!r}"
            return None
        if dotless == "column" and own is not None and not self.has(own, ref):
            return f"table {own!r} has no column {ref!r}"
        is_element = ref.lower() in self.names or any(self.has(t, ref) for t in self.names)
        if dotless == "element" and not is_element:
            return f"no table or column is named {ref!r}"
        return None

    def columns_hint(self, ref: str, own: str | None) -> str:
        table = ref.split(".", maxsplit=1)[0] if "." in ref else own
        columns = self.names.get((table or "").lower())
        if columns:
            return f"Columns of {table}: {', '.join(columns[:12])}{', …' if len(columns) > 12 else ''}."
        return f"Tables of this contract: {', '.join(self.names) or 'none'}."


def _relationship_refs(path: str, relationships: list[Relationship] | None) -> Iterator[tuple[str, str]]:
    for r, rel in enumerate(relationships or ()):
        yield from _listed(rel.from_, f"{path}.relationships[{r}].from")
        yield from _listed(rel.to, f"{path}.relationships[{r}].to")


def _quality_refs(path: str, rules: list[DataQuality] | None) -> Iterator[tuple[str, str]]:
    for q, rule in enumerate(rules or ()):
        names: Any = (rule.arguments or {}).get("properties")
        if isinstance(names, str | list):
            yield from _listed(names, f"{path}.quality[{q}].arguments.properties")


def reference_checks(contract: Contract, check: CheckAt) -> Iterator[Check]:
    """Relationships, transformSourceObjects, quality `arguments.properties` and SLA elements must
    name columns that exist (in this contract's own tables)."""
    tables = _Tables.of(contract)
    refs: list[tuple[str, str, str | None, str]] = []  # (reference, field, own table, dotless meaning)
    for i, table in enumerate(contract.odcs.schema_ or ()):
        refs += [(r, f, table.name, "column") for r, f in _relationship_refs(f"schema[{i}]", table.relationships)]
        refs += [(r, f, table.name, "column") for r, f in _quality_refs(f"schema[{i}]", table.quality)]
    for at in walk_properties(contract):
        own = at.table.name
        refs += [(r, f, own, "column") for r, f in _relationship_refs(at.path, at.prop.relationships)]
        refs += [(r, f, own, "column") for r, f in _quality_refs(at.path, at.prop.quality)]
        sources = _listed(at.prop.transformSourceObjects, f"{at.path}.transformSourceObjects")
        refs += [(r, f, own, "table") for r, f in sources]  # a bare name there is a source table
    elements = [(contract.odcs.slaDefaultElement, "slaDefaultElement")]
    elements += [(p.element, f"slaProperties[{k}].element") for k, p in enumerate(contract.odcs.slaProperties or ())]
    for value, field in elements:
        refs += [(part, field, None, "element") for part in (value or "").split(",") if part.strip()]
    for ref, field, own, dotless in refs:
        problem = tables.problem(ref, own, dotless)
        if problem:
            yield check(
                "reference",
                f"{ref.strip()!r} references a column that does not exist: {problem}",
                field,
                f"Fix the name or add the column. {tables.columns_hint(ref.strip(), own)}",
            )


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sla_checks(contract: Contract, check: CheckAt) -> Iterator[Check]:
    """Known SLA properties, units valid for each, and positive numeric values."""
    known = {name.lower(): name for name in SLA_PROPERTIES}
    for k, sla in enumerate(contract.odcs.slaProperties or ()):
        path = f"slaProperties[{k}]"
        name = known.get((sla.property or "").lower())
        if name is None:
            yield check(
                "sla-property",
                f"unknown SLA property {sla.property!r}; known properties are: {', '.join(SLA_PROPERTIES)}",
                f"{path}.property",
                "meshkit monitors only the known properties; fix the spelling or keep it as documentation.",
                warning=True,
            )
            continue
        unit = (sla.unit or "").strip().lower()
        units = DURATION_UNITS if name in _DURATION_SLAS else PERCENT_UNITS if name in _PERCENT_SLAS else None
        if units is not None and unit not in units:
            got = f"unit {sla.unit!r}" if sla.unit else "no unit"
            yield check(
                "sla-unit",
                f"SLA property {name!r} has {got}; valid units are: {', '.join(units)}",
                f"{path}.unit" if sla.unit else path,
                f"Write the unit of {name} as one of those, e.g. `unit: {units[0]}`.",
            )
        if name not in _NUMERIC_SLAS:
            continue
        value = sla.value
        ceiling = 100 if name in _PERCENT_SLAS else None
        if not _is_number(value) or value <= 0 or (ceiling is not None and value > ceiling):
            limit = f"a number > 0 and <= {ceiling}" if ceiling else "a number > 0"
            yield check(
                "sla-value",
                f"SLA property {name!r} has value {value!r}; it must be {limit}",
                f"{path}.value" if value is not None else path,
                "Write the value as a bare number and the unit in `unit` (e.g. value: 15, unit: m).",
            )
