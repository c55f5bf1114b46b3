"""Avro types read back as contract properties: the inverse of `meshkit.contracts.avro.AVRO_OF_BIGQUERY`.

Each Avro type becomes the BigQuery type `AVRO_OF_BIGQUERY` maps to it (plus Avro's `int`, `float`,
millisecond logical types, enums, maps and fixed), then the contract type through `document.typed`,
so contract -> Avro -> contract keeps every column's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governance.interop.document import column, typed, valid_values_rule
from meshkit.contracts.avro import JSON_ATTRIBUTE
from meshkit.contracts.types import NUMERIC_MAX_INTEGER_DIGITS, NUMERIC_MAX_SCALE
from meshkit.errors import ContractError

_AVRO_PRIMITIVES = {"string": "STRING", "bytes": "BYTES", "int": "INT64", "long": "INT64", "float": "FLOAT64"}
_AVRO_PRIMITIVES |= {"double": "FLOAT64", "boolean": "BOOL"}
_AVRO_LOGICAL = {
    "timestamp-micros": "TIMESTAMP",
    "timestamp-millis": "TIMESTAMP",
    "local-timestamp-micros": "DATETIME",
    "local-timestamp-millis": "DATETIME",
    "date": "DATE",
    "time-micros": "TIME",
    "time-millis": "TIME",
}


class AvroSchemaReader:
    """Walks one Avro schema, remembering named types so later references resolve."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def field_types(self, avro: Any, where: str) -> tuple[dict[str, Any], bool, str | None]:
        """(types, nullable, note) of an Avro type; a union with null is nullable."""
        if isinstance(avro, list):
            branches = [b for b in avro if b != "null"]
            nullable = len(branches) < len(avro)
            if len(branches) == 1:
                return self.types(branches[0], where), nullable, None
            names = ", ".join(b if isinstance(b, str) else str(b.get("type")) for b in branches)
            return typed("JSON"), nullable, f"an Avro union of {names}: TODO pick one type"
        return self.types(avro, where), False, None

    def types(self, avro: Any, where: str) -> dict[str, Any]:
        if isinstance(avro, str):
            if avro in _AVRO_PRIMITIVES:
                return typed(_AVRO_PRIMITIVES[avro])
            if avro in self.named:
                return self.types(self.named[avro], where)
            raise ContractError(
                f"Avro field {where} has type {avro!r}, which is neither a primitive nor a type defined before it",
                hint="Define named types before their first use, or inline them.",
            )
        if not isinstance(avro, dict):
            raise ContractError(f"Avro field {where} has an unreadable type {avro!r}", hint="Check the schema.")
        kind, logical = avro.get("type"), avro.get("logicalType")
        if isinstance(kind, list | dict):
            return self.field_types(kind, where)[0]
        if avro.get("name") and kind in ("record", "enum", "fixed"):
            full = str(avro["name"]) if "." in str(avro["name"]) else f"{avro.get('namespace', '')}.{avro['name']}"
            self.named[str(avro["name"])] = self.named[full.lstrip(".")] = avro
        if logical == "decimal":
            precision, scale = int(avro.get("precision", 38)), int(avro.get("scale", 0))
            wide = scale > NUMERIC_MAX_SCALE or precision - scale > NUMERIC_MAX_INTEGER_DIGITS
            return typed("BIGNUMERIC" if wide else "NUMERIC", precision=precision, scale=scale)
        if logical in _AVRO_LOGICAL:
            return typed(_AVRO_LOGICAL[str(logical)])
        if logical == "uuid":
            return {**typed("STRING"), "logicalTypeOptions": {"format": "uuid"}}
        if kind == "string" and avro.get(JSON_ATTRIBUTE):
            return typed("JSON")
        if kind == "record":
            return {**typed("RECORD"), "properties": self.properties(avro, where, nested=True)}
        if kind == "array":
            return {"logicalType": "array", "physicalType": "ARRAY", "items": self.types(avro.get("items"), where)}
        if kind == "map":
            return typed("JSON")
        if kind in ("enum", "fixed"):
            return typed("STRING" if kind == "enum" else "BYTES")
        return self.types(kind, where)

    def properties(self, record: Mapping[str, Any], where: str, *, nested: bool) -> list[dict[str, Any]]:
        out = []
        for field in record.get("fields") or ():
            name = str(field.get("name"))
            path = f"{where}.{name}" if where else name
            types, nullable, note = self.field_types(field.get("type"), path)
            description = field.get("doc") or ""
            if note:
                description = f"{description} ({note})".strip()
            prop = column(name, types, required=not nullable, description=description or None, nested=nested)
            values = _valid_values(field.get("type"))
            if values is not None:
                prop["quality"] = [valid_values_rule(name, values)]
            out.append(prop)
        return out


def _valid_values(avro: Any) -> list[Any] | None:
    """Enum symbols, or meshkit's `validValues` attribute on a string (contract -> Avro keeps them there)."""
    for branch in avro if isinstance(avro, list) else [avro]:
        if isinstance(branch, dict):
            if branch.get("type") == "enum":
                return list(branch.get("symbols") or [])
            if isinstance(branch.get("validValues"), list):
                return list(branch["validValues"])
    return None
