"""The contract's quality rules that a run can judge itself, measured on a product's warehouse table.

Property- and table-level ODCS rules with a `rowCount`, `nullValues`, `invalidValues` or
`duplicateValues` metric become `QualityRule`s; `measure_table` counts them in one query and `judge`
compares a count with the rule's bound. SQL and custom rules are left to the contract tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshkit.config import Settings
from meshkit.contracts.model import Contract
from meshkit.products.model import DataProduct
from monitoring.lineage.facets import CheckResult
from pipelines.sinks.factory import warehouse_for
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables

if TYPE_CHECKING:
    from open_data_contract_standard.model import DataQuality

# ODCS comparison operators of a quality rule: the symbol shown and how a measured count is compared
_COMPARE: dict[str, tuple[str, Callable[[float, Any], bool]]] = {
    "mustBe": ("=", lambda v, t: v == float(t)),
    "mustNotBe": ("!=", lambda v, t: v != float(t)),
    "mustBeGreaterThan": (">", lambda v, t: v > float(t)),
    "mustBeGreaterOrEqualTo": (">=", lambda v, t: v >= float(t)),
    "mustBeLessThan": ("<", lambda v, t: v < float(t)),
    "mustBeLessOrEqualTo": ("<=", lambda v, t: v <= float(t)),
    "mustBeBetween": ("between", lambda v, t: float(t[0]) <= v <= float(t[1])),
    "mustNotBeBetween": ("not between", lambda v, t: not float(t[0]) <= v <= float(t[1])),
}
JUDGED_METRICS = ("rowCount", "nullValues", "invalidValues", "duplicateValues")


@dataclass(frozen=True)
class QualityRule:
    """A library quality rule of the contract that a run can measure on its output table."""

    name: str
    metric: str
    columns: tuple[str, ...]
    severity: str | None
    percent: bool
    bound: tuple[str, Any] | None  # (ODCS operator, threshold)
    valid_values: tuple[Any, ...] | None


@dataclass(frozen=True)
class TableMeasure:
    """Counts on a warehouse table after a run: rows, nulls per column, each rule's metric by rule name."""

    rows: int
    nulls: dict[str, int]
    rules: dict[str, int]


def quality_rules(contract: Contract) -> tuple[QualityRule, ...]:
    """Property- and table-level rules with a metric a run measures; SQL and custom rules need their
    engine and are left to the contract tests."""
    found: list[tuple[DataQuality, tuple[str, ...]]] = []
    for prop in contract.table.properties or ():
        found += [(rule, (prop.name or "",)) for rule in prop.quality or ()]
    for rule in contract.table.quality or ():
        found.append((rule, tuple(str(p) for p in (rule.arguments or {}).get("properties") or ())))
    rules = []
    for i, (rule, columns) in enumerate(found):
        if rule.metric in JUDGED_METRICS:
            bound = next(((op, getattr(rule, op)) for op in _COMPARE if getattr(rule, op) is not None), None)
            valid = (rule.arguments or {}).get("validValues")
            name = rule.name or rule.id or f"{rule.metric}:{'+'.join(columns) or 'table'}:{i}"
            percent = (rule.unit or "").lower() == "percent"
            valid_values = tuple(valid) if isinstance(valid, list) else None
            rules.append(QualityRule(name, str(rule.metric), columns, rule.severity, percent, bound, valid_values))
    return tuple(rules)


def judge(rule: QualityRule, measured: int, rows: int) -> CheckResult:
    """The rule's verdict on a measured count (a share of `rows` when the rule's unit is percent)."""
    value = 100.0 * measured / rows if rule.percent and rows else float(measured)
    expected, success = None, True
    if rule.bound is not None:
        symbol, compare = _COMPARE[rule.bound[0]]
        threshold = rule.bound[1]
        success = compare(value, threshold)
        shown = " and ".join(map(str, threshold)) if isinstance(threshold, list) else str(threshold)
        expected = f"{symbol} {shown}{' %' if rule.percent else ''}"
    column = rule.columns[0] if len(rule.columns) == 1 else None
    return CheckResult(rule.name, rule.metric, success, column, rule.severity, expected, f"{value:g}")


def measure_table(settings: Settings, product: DataProduct, kind: str) -> TableMeasure:
    """Rows, nulls per contract column and each rule's metric on one of the product's tables, in one
    query (valid values are bound parameters); zeros when the table does not exist yet."""
    contract, warehouse = product.contract, warehouse_for(settings)
    tables = WarehouseTables.of(product.domain, contract.table_name)
    columns = [c.name for c in contract.columns]
    rules = [r for r in quality_rules(contract) if r.metric != "invalidValues" or r.valid_values]
    if not warehouse.exists(tables, kind):
        return TableMeasure(0, dict.fromkeys(columns, 0), {r.name: 0 for r in rules})
    sql = _BIGQUERY if settings.warehouse == "bigquery" else _DUCKDB
    quoted = {c: sql.quote(c) for c in {*columns, *(c for r in rules for c in r.columns)}}
    exprs = ["count(*)", *(f"count(*) - count({quoted[c]})" for c in columns)]
    params: list[str] = []
    for rule in rules:
        cols = [quoted[c] for c in rule.columns]
        if rule.metric == "rowCount" or not cols:
            exprs.append("count(*)")
        elif rule.metric == "nullValues":
            exprs.append(f"count(*) - count({cols[0]})")
        elif rule.metric == "invalidValues":
            marks = ", ".join("?" * len(rule.valid_values or ()))
            exprs.append(f"countif({cols[0]} IS NOT NULL AND CAST({cols[0]} AS {sql.text}) NOT IN ({marks}))")
            params += [str(v) for v in rule.valid_values or ()]
        else:  # duplicateValues: rows beyond the first of each distinct non-null value
            key = cols[0] if len(cols) == 1 else sql.row(cols)
            exprs.append(f"count({key}) - count(DISTINCT {key})")
    query = f"SELECT {', '.join(exprs)} FROM {sql.table(warehouse, tables, kind)}"
    if isinstance(warehouse, DuckDBWarehouse):
        with warehouse.connect() as con:
            row: Sequence[Any] | None = con.execute(query, params).fetchone()
    else:
        row = warehouse.query_row(query, params)
    values = [int(v or 0) for v in row or [0] * len(exprs)]
    nulls = dict(zip(columns, values[1 : 1 + len(columns)], strict=True))
    return TableMeasure(values[0], nulls, {r.name: v for r, v in zip(rules, values[1 + len(columns) :], strict=True)})


@dataclass(frozen=True)
class _Dialect:
    """The few spellings in which DuckDB's SQL and GoogleSQL differ for these measures (both accept
    `countif` and positional `?` parameters)."""

    quote: Callable[[str], str]
    text: str
    row: Callable[[list[str]], str]
    table: Callable[[Any, WarehouseTables, str], str]


_DUCKDB = _Dialect(
    quote=lambda c: '"' + c.replace('"', '""') + '"',
    text="VARCHAR",
    row=lambda cols: f"({', '.join(cols)})",
    table=lambda wh, t, kind: t.name(kind),
)
_BIGQUERY = _Dialect(
    quote=lambda c: f"`{c}`",
    text="STRING",
    # GoogleSQL cannot count DISTINCT structs: compare their JSON text (a null column still counts)
    row=lambda cols: f"TO_JSON_STRING(STRUCT({', '.join(cols)}))",
    table=lambda wh, t, kind: wh.name(t, kind),
)
