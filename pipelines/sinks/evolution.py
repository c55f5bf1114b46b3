"""Schema evolution of the warehouse tables: additive changes are applied, breaking ones refused.

Rules (BigQuery's documented schema modifications, mirrored for DuckDB and Parquet):

- allowed: a new NULLABLE or REPEATED column (old rows read NULL / empty: no data loss); REQUIRED ->
  NULLABLE (relaxing); the type widenings BigQuery's `ALTER COLUMN SET DATA TYPE` accepts: INT64 ->
  NUMERIC/BIGNUMERIC (with at least 19 integer digits) or FLOAT64, NUMERIC -> BIGNUMERIC or FLOAT64,
  NUMERIC(p,s) -> NUMERIC(p',s') with s' >= s and p'-s' >= p-s;
- refused: a column removed; any other type change (narrowing such as NUMERIC(18,2) -> INT64 or
  STRING -> INT64, DATE <-> TIMESTAMP, TIMESTAMP <-> DATETIME, a column becoming or ceasing to be
  REPEATED); a new REQUIRED column; NULLABLE -> REQUIRED; a changed primary key.

JSON and STRING are the same column here: JSON travels in Arrow and Parquet as JSON text.

Curated Parquet needs no migration: new files carry the new column and readers union files by name
(DuckDB `read_parquet(..., union_by_name=true)`; BigQuery external tables / loads with
`ALLOW_FIELD_ADDITION`), so old files read NULL for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa

from meshkit.contracts.bigquery import PIPELINE_COLUMNS, bigquery_schema, field_type
from meshkit.contracts.types import BigQueryType, bigquery_of_arrow
from meshkit.errors import ContractError

if TYPE_CHECKING:
    from meshkit.config import Settings
    from meshkit.contracts.model import Contract

UNTYPED = "NULL"  # the type of an Arrow column holding only NULLs
INT64_DIGITS = 19  # every INT64 fits a decimal with 19 integer digits
# an Arrow schema, REST field dicts or google.cloud.bigquery SchemaFields
SchemaLike: TypeAlias = pa.Schema | Sequence[Any]

_LOG = logging.getLogger(__name__)
_UNCHECKED: set[str] = set()  # warehouse classes already reported as not checked before a run

_HINTS = {
    "removed": "keep the column (say it is deprecated in its description) or publish a new major version "
    "of the contract with a new table",
    "type": "keep the old type and add a new column with the new type, or publish a new major version of "
    "the contract with a new table",
    "required": "make the column nullable (`required: false`; the pipeline still rejects events without it) "
    "or publish a new major version of the contract with a new table",
    "key": "a new primary key is a new table: publish a new major version of the contract with a new table",
}


@dataclass(frozen=True)
class ColumnChange:
    """One difference between the table and what is wanted; `column` is a dotted path for nested fields."""

    column: str
    kind: str  # added | relaxed | widened | removed | type | required | key
    before: str | None
    after: str | None
    breaking: bool

    def describe(self) -> str:
        what = {
            "added": f"is new ({self.after})",
            "relaxed": f"becomes nullable ({self.before} -> {self.after})",
            "widened": f"widens {self.before} -> {self.after}",
            "removed": f"was removed (it is {self.before} in the table)",
            "type": f"changed type {self.before} -> {self.after}, which existing values may not fit",
            "required": f"became required ({self.before} -> {self.after}) but existing rows may hold NULL",
            "key": f"primary key changed ({self.before} -> {self.after})",
        }[self.kind]
        return f"column `{self.column}` {what}" if self.kind != "key" else what


class SchemaEvolutionError(ContractError):
    """A contract change the existing tables cannot take without losing or rewriting data."""

    def __init__(self, product: str, table: str, changes: Sequence[ColumnChange]) -> None:
        self.product, self.table, self.changes = product, table, tuple(changes)
        listed = "; ".join(c.describe() for c in changes)
        hints = "; ".join(dict.fromkeys(f"for `{c.column}`: {_HINTS[c.kind]}" for c in changes))
        super().__init__(
            f"product {product or '?'}: table {table} cannot take the contract's schema: {listed}. Nothing was written",
            hint=f"To fix: {hints}.",
        )


@dataclass(frozen=True)
class EvolutionPlan:
    """What changing `table` from its current schema to the wanted one means."""

    product: str
    table: str
    changes: tuple[ColumnChange, ...]
    current_fields: tuple[dict[str, Any], ...]
    wanted_fields: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def breaking(self) -> tuple[ColumnChange, ...]:
        return tuple(c for c in self.changes if c.breaking)

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.changes if c.kind == "added" and "." not in c.column)

    @property
    def widened(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.changes if c.kind == "widened" and "." not in c.column)

    def raise_if_breaking(self) -> None:
        if self.breaking:
            raise SchemaEvolutionError(self.product, self.table, self.breaking)

    def updated_fields(self) -> list[dict[str, Any]]:
        """The table's schema after the allowed changes, in REST form: existing fields in their order
        (relaxed and widened as wanted), then the added ones; what `client.update_table(t, ["schema"])`
        needs. Refuses a breaking plan."""
        self.raise_if_breaking()
        wanted = {f["name"]: f for f in self.wanted_fields}
        out = [wanted.get(f["name"], f) if self._changed(f["name"]) else f for f in self.current_fields]
        have = {f["name"] for f in self.current_fields}
        return out + [f for f in self.wanted_fields if f["name"] not in have]

    def _changed(self, name: str) -> bool:
        return any(c.column == name or c.column.startswith(f"{name}.") for c in self.changes)


def _as_api(field_: Any) -> dict[str, Any]:
    if isinstance(field_, Mapping):
        return dict(field_)
    return dict(field_.to_api_repr())  # google.cloud.bigquery.SchemaField


def _arrow_field(f: pa.Field) -> dict[str, Any]:
    if pa.types.is_null(f.type):  # a batch column that is all NULL: fits any existing type
        return {"name": f.name, "type": UNTYPED, "mode": "NULLABLE"}
    bq = bigquery_of_arrow(f.type)
    out: dict[str, Any] = {"name": f.name, "type": bq.name}
    out["mode"] = "REPEATED" if bq.repeated else ("NULLABLE" if f.nullable else "REQUIRED")
    if bq.precision is not None:
        out["precision"], out["scale"] = str(bq.precision), str(bq.scale or 0)
    item = f.type.value_type if bq.repeated else f.type
    if bq.name == "RECORD":
        out["fields"] = [_arrow_field(item.field(i)) for i in range(item.num_fields)]
    return out


def api_fields(schema: SchemaLike) -> list[dict[str, Any]]:
    """Any accepted schema as REST `TableFieldSchema` dicts (Arrow through the one type mapping)."""
    if isinstance(schema, pa.Schema):
        return [_arrow_field(f) for f in schema]
    return [_as_api(f) for f in schema]


def _mode(f: Mapping[str, Any]) -> str:
    return str(f.get("mode") or "NULLABLE").upper()


def _label(f: Mapping[str, Any]) -> str:
    return f"{field_type({**f, 'mode': 'NULLABLE'}).sql} {_mode(f)}"


def _decimal_widens(before: BigQueryType, after: BigQueryType) -> bool:
    p, s = before.precision or 0, before.scale or 0
    p2, s2 = after.precision or 0, after.scale or 0
    return s2 >= s and p2 - s2 >= p - s


def type_change(before: BigQueryType, after: BigQueryType) -> str | None:
    """None when equal, `widened` when BigQuery (and DuckDB) convert every old value, else `type`."""
    if before.repeated != after.repeated:
        return "type"
    a, b = before.name, after.name
    if UNTYPED in (a, b):
        return None
    if {a, b} <= {"STRING", "JSON"} or (a == b and a not in ("NUMERIC", "BIGNUMERIC", "RECORD")):
        return None
    if a == "RECORD" and b == "RECORD":
        return None  # nested fields are compared one by one
    if a in ("NUMERIC", "BIGNUMERIC") and b in ("NUMERIC", "BIGNUMERIC"):
        if (a, b) == ("BIGNUMERIC", "NUMERIC") or not _decimal_widens(before, after):
            return "type"
        return None if (a, before.precision, before.scale) == (b, after.precision, after.scale) else "widened"
    if a == "INT64" and b == "FLOAT64":
        return "widened"
    if a == "INT64" and b in ("NUMERIC", "BIGNUMERIC"):
        whole = (after.precision or 38) - (after.scale or 0)
        return "widened" if whole >= INT64_DIGITS else "type"
    if a in ("NUMERIC", "BIGNUMERIC") and b == "FLOAT64":
        return "widened"
    return "type"


def _compare(
    current: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]], prefix: str, modes: bool
) -> list[ColumnChange]:
    changes: list[ColumnChange] = []
    have = {f["name"]: f for f in current}
    want = {f["name"]: f for f in wanted}
    for name, old in have.items():
        if name not in want:
            changes.append(ColumnChange(prefix + name, "removed", _label(old), None, breaking=True))
    for name, w in want.items():
        path = prefix + name
        f = have.get(name)
        if f is None:
            required = modes and _mode(w) == "REQUIRED"
            added = "required" if required else "added"
            changes.append(ColumnChange(path, added, "absent", _label(w), breaking=required))
            continue
        before, after = field_type(f), field_type(w)
        kind = type_change(before, after)
        if kind:
            changes.append(ColumnChange(path, kind, _label(f), _label(w), breaking=kind == "type"))
        if modes and _mode(f) != _mode(w) and "REPEATED" not in (_mode(f), _mode(w)):
            relaxed = _mode(w) == "NULLABLE"
            changes.append(ColumnChange(path, "relaxed" if relaxed else "required", _mode(f), _mode(w), not relaxed))
        if before.name == "RECORD" and after.name == "RECORD" and kind != "type":
            changes += _compare(f.get("fields") or (), w.get("fields") or (), f"{path}.", modes)
    return changes


def inferred_key(fields: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The key columns of a table the pipeline wrote: its REQUIRED columns that are not the pipeline's own
    (the decoder makes only key columns non-nullable)."""
    return tuple(f["name"] for f in fields if _mode(f) == "REQUIRED" and f["name"] not in PIPELINE_COLUMNS)


def plan_evolution(
    current: SchemaLike,
    wanted: SchemaLike,
    *,
    product: str = "",
    table: str = "",
    modes: bool = True,
    current_key: Sequence[str] | None = None,
    wanted_key: Sequence[str] | None = None,
) -> EvolutionPlan:
    """Compare a table's schema (Arrow, REST dicts or live `SchemaField`s) with the wanted one.

    `modes=False` ignores NULLABLE/REQUIRED differences (DuckDB does not keep the contract's modes; the
    warehouse checks new required columns against the data instead). Keys are compared when both are
    given and non-empty."""
    have, want = api_fields(current), api_fields(wanted)
    changes = _compare(have, want, "", modes)
    if current_key and wanted_key and tuple(current_key) != tuple(wanted_key):
        column = ", ".join(wanted_key)
        changes.append(ColumnChange(column, "key", ", ".join(current_key), column, breaking=True))
    return EvolutionPlan(product, table, tuple(changes), tuple(have), tuple(want))


def bigquery_schema_fields(
    source: EvolutionPlan | Contract, *, kind: str = "current", policy_taxonomy: str | None = None
) -> list[Any]:
    """`google.cloud.bigquery.SchemaField`s: a plan's updated schema (for `update_table(t, ["schema"])`)
    or a contract's table of `kind` (for `create_table`)."""
    from google.cloud import bigquery

    if isinstance(source, EvolutionPlan):
        fields = source.updated_fields()
    else:
        fields = bigquery_schema(source, policy_taxonomy=policy_taxonomy, kind=kind)  # type: ignore[arg-type]
    return [bigquery.SchemaField.from_api_repr(f) for f in fields]


def check_evolution(settings: Settings, product: str, *, warehouse: Any = None) -> list[EvolutionPlan]:
    """Pre-flight for a run: compare the product's existing warehouse tables with what its contract now
    produces; raise `SchemaEvolutionError` on a breaking change before anything is written, return the
    plans (their additions are applied by the warehouse when the first batch arrives).

    `warehouse` (default: the configured one) answers through `check_contract(product, contract)`; one
    without it is a named no-op (logged once): its `apply_changes` still refuses a breaking batch."""
    from meshkit.products.discovery import find_product
    from pipelines.sinks.factory import warehouse_for

    contract = find_product(settings.domains_dir, product).contract
    if warehouse is None:
        if settings.warehouse == "duckdb" and not settings.warehouse_path.is_file():
            return []  # nothing written yet: nothing to evolve
        warehouse = warehouse_for(settings)
    check = getattr(warehouse, "check_contract", None)
    if check is None:
        if type(warehouse).__name__ not in _UNCHECKED:
            _UNCHECKED.add(type(warehouse).__name__)
            _LOG.warning(
                "schema pre-flight skipped: %s has no check_contract; breaking batches are still refused "
                "before they are written",
                type(warehouse).__name__,
            )
        return []
    plans: list[EvolutionPlan] = check(product, contract)
    return plans
