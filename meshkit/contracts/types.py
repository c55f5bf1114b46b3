"""The one mapping from contract types (ODCS logicalType + physicalType) to BigQuery and Arrow types.

One decision per column, in two halves that are never used apart:

1. `bigquery_type(logical, physical, options)`: the (logicalType, physicalType) table `BIGQUERY_TYPES`
   picks the BigQuery type (with precision/scale for decimals, TIMESTAMP vs DATETIME by time zone);
2. `ARROW_OF_BIGQUERY`: the Arrow type of each BigQuery type, so `arrow_type` is the BigQuery decision
   seen through Arrow. `bigquery_of_arrow` is its inverse (an Arrow or DuckDB schema read back).

Every Arrow schema in meshkit (curated Parquet, DuckDB tables, validation) comes from `arrow_type` or
`column_type`; BigQuery schemas and DDL come from `column_type`, so there is no second mapping tucked
into a sink. JSON travels in Arrow and Parquet as canonical JSON text (a string), the one place where
the Arrow type alone cannot tell two BigQuery types apart (`bigquery_of_arrow` says STRING).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshkit.errors import ContractError

if TYPE_CHECKING:  # pyarrow loads only where Arrow types are built, so `meshkit validate` stays light
    import pyarrow as pa

    from meshkit.contracts.model import Column

LOGICAL_TYPES = ("string", "date", "timestamp", "time", "number", "integer", "object", "array", "boolean")

_DECIMAL = re.compile(r"^(?:NUMERIC|DECIMAL|BIGNUMERIC|BIGDECIMAL|NUMBER)\s*(?:\((\d+)\s*(?:,\s*(\d+))?\))?$")

# (logicalType, physicalType spelling, upper-cased, parameters stripped) -> BigQuery type.
# "" stands for "no physicalType": the logical type's default.
BIGQUERY_TYPES: dict[tuple[str, str], str] = {
    **{
        ("string", p): "STRING"
        for p in ("", "STRING", "VARCHAR", "CHAR", "TEXT", "NVARCHAR", "NCHAR", "UUID", "CHARACTER VARYING")
    },
    **{("string", p): "BYTES" for p in ("BYTES", "BINARY", "VARBINARY")},
    **{
        ("integer", p): "INT64"
        for p in ("", "INT64", "INTEGER", "INT", "BIGINT", "SMALLINT", "TINYINT", "INT32", "LONG")
    },
    **{("number", p): "NUMERIC" for p in ("NUMERIC", "DECIMAL", "NUMBER")},
    **{("number", p): "BIGNUMERIC" for p in ("BIGNUMERIC", "BIGDECIMAL")},
    **{("number", p): "FLOAT64" for p in ("", "FLOAT64", "FLOAT", "DOUBLE", "REAL")},
    **{("boolean", p): "BOOL" for p in ("", "BOOL", "BOOLEAN", "BIT")},
    **{("date", p): "DATE" for p in ("", "DATE")},
    # TIMESTAMP (an instant, UTC) or DATETIME (wall clock, no zone): decided by `timestamp_is_aware`
    **{("timestamp", p): "TIMESTAMP" for p in ("", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_TZ")},
    **{("timestamp", p): "DATETIME" for p in ("DATETIME", "TIMESTAMP_NTZ")},
    **{("time", p): "TIME" for p in ("", "TIME")},
    # an object with nested `properties` is a RECORD; without them (or declared JSON) it is JSON
    **{("object", p): "RECORD" for p in ("", "RECORD", "STRUCT", "OBJECT")},
    **{("object", p): "JSON" for p in ("JSON", "MAP", "VARIANT", "JSONB")},
    # an array with `items` is a REPEATED column of the item's type; without `items`, JSON text
    **{("array", p): "REPEATED" for p in ("", "ARRAY", "REPEATED", "LIST")},
}

# physicalType spellings (upper-cased, parameters stripped) that fit each logicalType.
PHYSICAL_FAMILIES: dict[str, frozenset[str]] = {
    logical: frozenset(p for (lt, p) in BIGQUERY_TYPES if lt == logical and p) for logical in LOGICAL_TYPES
}

# NUMERIC holds precision - scale <= 29 integer digits and scale <= 9; anything wider is BIGNUMERIC.
NUMERIC_MAX_INTEGER_DIGITS, NUMERIC_MAX_SCALE = 29, 9


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


def timestamp_is_aware(physical_type: str | None, options: dict[str, Any]) -> bool:
    """`logicalTypeOptions.timezone` decides; without it, TIMESTAMP-like physical types are aware."""
    physical = physical_base(physical_type) if physical_type else ""
    return bool(options.get("timezone", BIGQUERY_TYPES.get(("timestamp", physical), "TIMESTAMP") == "TIMESTAMP"))


@dataclass(frozen=True)
class BigQueryType:
    """A BigQuery column type: `name` is a standard SQL type (RECORD for STRUCT); decimals carry
    precision and scale; a RECORD carries its fields; `repeated` makes it an ARRAY of this type."""

    name: str
    precision: int | None = None
    scale: int | None = None
    fields: tuple[tuple[str, BigQueryType, bool], ...] = ()  # (name, type, required) of a RECORD
    repeated: bool = False

    @property
    def sql(self) -> str:
        """The GoogleSQL spelling: `NUMERIC(18, 2)`, `STRUCT<a STRING>`, `ARRAY<INT64>`."""
        if self.name == "RECORD":
            inner = ", ".join(f"`{n}` {t.sql}{' NOT NULL' if req else ''}" for n, t, req in self.fields)
            base = f"STRUCT<{inner}>"
        elif self.precision is not None:
            base = f"{self.name}({self.precision}, {self.scale or 0})"
        else:
            base = self.name
        return f"ARRAY<{base}>" if self.repeated else base

    def element(self) -> BigQueryType:
        return BigQueryType(self.name, self.precision, self.scale, self.fields)

    def arrow(self) -> pa.DataType:
        """The Arrow type of this BigQuery type (`ARROW_OF_BIGQUERY`)."""
        import pyarrow as pa

        if self.repeated:
            return pa.list_(self.element().arrow())
        if self.name == "RECORD":
            return pa.struct([pa.field(n, t.arrow(), nullable=not req) for n, t, req in self.fields])
        return ARROW_OF_BIGQUERY[self.name](self.precision or 0, self.scale or 0)


def _decimal(precision: int, scale: int) -> pa.DataType:
    import pyarrow as pa

    return pa.decimal128(precision, scale)


def _bigdecimal(precision: int, scale: int) -> pa.DataType:
    import pyarrow as pa

    return pa.decimal256(precision, scale)


def _simple(name: str, *args: Any) -> Callable[[int, int], pa.DataType]:
    def build(_precision: int, _scale: int) -> pa.DataType:
        import pyarrow as pa

        data_type: pa.DataType = getattr(pa, name)(*args)
        return data_type

    return build


# BigQuery type -> Arrow type (precision, scale) -> DataType: the second half of the one mapping.
ARROW_OF_BIGQUERY: dict[str, Callable[[int, int], pa.DataType]] = {
    "STRING": _simple("string"),
    "BYTES": _simple("binary"),
    "INT64": _simple("int64"),
    "FLOAT64": _simple("float64"),
    "NUMERIC": _decimal,
    "BIGNUMERIC": _bigdecimal,
    "BOOL": _simple("bool_"),
    "DATE": _simple("date32"),
    "TIMESTAMP": lambda _p, _s: _timestamp(aware=True),  # an instant, stored in UTC
    "DATETIME": lambda _p, _s: _timestamp(aware=False),
    "TIME": _simple("time64", "us"),
    "JSON": _simple("string"),  # canonical JSON text
}


def _timestamp(*, aware: bool) -> pa.DataType:
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC") if aware else pa.timestamp("us")


def _decimal_type(name: str, physical_type: str | None) -> BigQueryType:
    precision, scale = decimal_params(physical_type) or ((76, 38) if name == "BIGNUMERIC" else (38, 9))
    fits_numeric = scale <= NUMERIC_MAX_SCALE and precision - scale <= NUMERIC_MAX_INTEGER_DIGITS
    return BigQueryType("NUMERIC" if name == "NUMERIC" and fits_numeric else "BIGNUMERIC", precision, scale)


def bigquery_type(logical_type: str, physical_type: str | None, options: dict[str, Any]) -> BigQueryType:
    """The BigQuery type of a flat column (object and array without nested declarations are JSON)."""
    physical = physical_base(physical_type) if physical_type else ""
    name = BIGQUERY_TYPES.get((logical_type, physical)) or BIGQUERY_TYPES.get((logical_type, ""), "STRING")
    if name in ("NUMERIC", "BIGNUMERIC"):
        return _decimal_type(name, physical_type)
    if logical_type == "timestamp":
        return BigQueryType("TIMESTAMP" if timestamp_is_aware(physical_type, options) else "DATETIME")
    if name in ("RECORD", "REPEATED"):  # nothing nested is known here: the value travels as JSON text
        return BigQueryType("JSON")
    return BigQueryType(name)


def column_type(column: Column) -> BigQueryType:
    """The BigQuery type of a contract column, nested `properties` and array `items` included."""
    if column.logical_type == "object" and column.fields:
        physical = physical_base(column.physical_type) if column.physical_type else ""
        if BIGQUERY_TYPES.get(("object", physical), "RECORD") == "RECORD":
            return BigQueryType("RECORD", fields=tuple((f.name, column_type(f), f.required) for f in column.fields))
    if column.logical_type == "array" and column.items is not None:
        element = column_type(column.items)
        if element.repeated:
            raise ContractError(
                f"column `{column.name}` is an array of arrays, which BigQuery cannot hold",
                hint="Wrap the inner array in an object (`logicalType: object` with one array property).",
            )
        return BigQueryType(element.name, element.precision, element.scale, element.fields, repeated=True)
    return bigquery_type(column.logical_type, column.physical_type, column.options)


def arrow_type(logical_type: str, physical_type: str | None, options: dict[str, Any]) -> pa.DataType:
    """The Arrow type of one flat contract column (`column_type(column).arrow()` for nested ones)."""
    return bigquery_type(logical_type, physical_type, options).arrow()


def bigquery_of_arrow(data_type: pa.DataType) -> BigQueryType:
    """The inverse of `ARROW_OF_BIGQUERY`, for schemas read back from Arrow, Parquet or DuckDB."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_list(data_type) or pt.is_large_list(data_type) or pt.is_fixed_size_list(data_type):
        element = bigquery_of_arrow(data_type.value_type)
        return BigQueryType(element.name, element.precision, element.scale, element.fields, repeated=True)
    if pt.is_struct(data_type):
        fields = tuple(
            (f.name, bigquery_of_arrow(f.type), not f.nullable)
            for f in (data_type.field(i) for i in range(data_type.num_fields))
        )
        return BigQueryType("RECORD", fields=fields)
    if pt.is_decimal(data_type):
        name = "BIGNUMERIC" if isinstance(data_type, pa.Decimal256Type) else "NUMERIC"
        return BigQueryType(name, data_type.precision, data_type.scale)
    if pt.is_timestamp(data_type):
        return BigQueryType("TIMESTAMP" if data_type.tz else "DATETIME")
    checks: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
        (pt.is_boolean, "BOOL"),
        (pt.is_integer, "INT64"),
        (pt.is_floating, "FLOAT64"),
        (pt.is_date, "DATE"),
        (pt.is_time, "TIME"),
        (lambda t: pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t), "STRING"),
        (lambda t: pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t), "BYTES"),
    )
    for check, name in checks:
        if check(data_type):
            return BigQueryType(name)
    if isinstance(data_type, pa.ExtensionType):
        return (
            BigQueryType("JSON")
            if data_type.extension_name == "arrow.json"
            else bigquery_of_arrow(data_type.storage_type)
        )
    raise ContractError(
        f"no BigQuery type for the Arrow type {data_type}", hint="See docs/bigquery.md for the mapping."
    )
