"""The one mapping from contract types (ODCS logicalType + physicalType) to Arrow types.

Every Arrow schema in meshkit (curated Parquet, DuckDB tables, validation) comes from `arrow_type`;
warehouse DDL derives from the Arrow type, so there is no second mapping tucked into a sink.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow loads only where Arrow types are built, so `meshkit validate` stays light
    import pyarrow as pa

LOGICAL_TYPES = ("string", "date", "timestamp", "time", "number", "integer", "object", "array", "boolean")

_DECIMAL = re.compile(r"^(?:NUMERIC|DECIMAL|BIGNUMERIC|BIGDECIMAL|NUMBER)\s*(?:\((\d+)\s*(?:,\s*(\d+))?\))?$")

# physicalType spellings (upper-cased, parameters stripped) that fit each logicalType.
PHYSICAL_FAMILIES: dict[str, frozenset[str]] = {
    "string": frozenset({"STRING", "VARCHAR", "CHAR", "TEXT", "NVARCHAR", "NCHAR", "UUID", "CHARACTER VARYING"}),
    "integer": frozenset({"INT64", "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "INT32", "LONG"}),
    "number": frozenset(
        {"NUMERIC", "DECIMAL", "BIGNUMERIC", "BIGDECIMAL", "NUMBER", "FLOAT64", "FLOAT", "DOUBLE", "REAL"}
    ),
    "boolean": frozenset({"BOOL", "BOOLEAN", "BIT"}),
    "date": frozenset({"DATE"}),
    "timestamp": frozenset({"TIMESTAMP", "DATETIME", "TIMESTAMPTZ", "TIMESTAMP_NTZ", "TIMESTAMP_TZ"}),
    "time": frozenset({"TIME"}),
    "object": frozenset({"JSON", "RECORD", "STRUCT", "OBJECT", "MAP", "VARIANT", "JSONB"}),
    "array": frozenset({"ARRAY", "REPEATED", "LIST"}),
}


def physical_base(physical_type: str) -> str:
    """`NUMERIC(18,2)` -> `NUMERIC`; `ARRAY<STRING>` -> `ARRAY`."""
    return re.split(r"[(<\s]", physical_type.strip().upper(), maxsplit=1)[0]


def fits(logical_type: str, physical_type: str) -> bool | None:
    """True/False when we know the physical type; None when it is outside our table (not judged)."""
    base = physical_base(physical_type)
    known = any(base in fam for fam in PHYSICAL_FAMILIES.values())
    if not known:
        return None
    return base in PHYSICAL_FAMILIES.get(logical_type, frozenset())


def decimal_params(physical_type: str | None) -> tuple[int, int] | None:
    """(precision, scale) for decimal physical types; BigQuery defaults when unparameterised."""
    if not physical_type:
        return None
    m = _DECIMAL.match(physical_type.strip().upper())
    if not m:
        return None
    if m.group(1):
        return int(m.group(1)), int(m.group(2) or 0)
    return (76, 38) if physical_type.upper().startswith("BIG") else (38, 9)


def arrow_type(logical_type: str, physical_type: str | None, options: dict[str, Any]) -> pa.DataType:
    """The Arrow type for one contract column."""
    import pyarrow as pa

    physical = physical_base(physical_type) if physical_type else ""
    if logical_type == "string":
        return pa.string()
    if logical_type == "integer":
        return pa.int64()
    if logical_type == "number":
        params = decimal_params(physical_type)
        if params:
            precision, scale = params
            return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        return pa.float64()
    if logical_type == "boolean":
        return pa.bool_()
    if logical_type == "date":
        return pa.date32()
    if logical_type == "timestamp":
        aware = options.get("timezone", physical in {"TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_TZ", ""})
        return pa.timestamp("us", tz="UTC") if aware else pa.timestamp("us")
    if logical_type == "time":
        return pa.time64("us")
    # object and array travel as canonical JSON text until a sink needs nested types
    return pa.string()
