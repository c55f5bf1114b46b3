"""Every schema, quality, SLA and relationship check of a contract as `ContractCheck`s: a pure function
of the contract, whether the data holds masked personal values, and where referenced tables live.

Schema checks follow the pipeline's own rules (`pipelines.transforms.rules`): required, unique,
valid values, pattern (ECMA, translated to RE2), format (uuid, email), string lengths and numeric
ranges. Masked data (curated zone, warehouse) cannot answer value checks on masked columns: a hashed
CPF never matches `^[0-9]{11}$`. Those checks are stated as skipped with the reason; the pipeline
already judged those values before masking them (rejects are dead letters).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from open_data_contract_standard.model import DataQuality

from governance.testing.model import (
    NO_FAILING_ROWS,
    OPERATORS,
    ColumnType,
    Compare,
    ContractCheck,
    CustomSql,
    Duplicates,
    FailingRows,
    InList,
    IsNull,
    Length,
    MaxAge,
    Measure,
    NoMatch,
    NotIn,
    NotRun,
    Reference,
    RowCount,
    Threshold,
    Unit,
)
from governance.testing.regex import UnsupportedPattern, re2_pattern
from meshkit.contracts.model import Column, Contract
from monitoring.slo.derive import duration_seconds

# The pipeline's formats (`pipelines.transforms.rules._FORMATS`), in ECMA spelling; a unit test holds
# them equal.
FORMAT_PATTERNS = {
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
}
_BOUNDS: tuple[tuple[str, Literal["<", ">", "<=", ">="], str], ...] = (
    ("minimum", "<", "less than"),
    ("maximum", ">", "greater than"),
    ("exclusiveMinimum", "<=", "not greater than"),
    ("exclusiveMaximum", ">=", "not less than"),
)
_VALUE_KINDS = frozenset({"type", "enum", "pattern", "format", "minLength", "maxLength", *(b[0] for b in _BOUNDS)})
_WARNING_SEVERITIES = frozenset({"warning", "warn", "info", "low", "minor"})
_LATENCY_PROPERTIES = ("latency", "freshness", "ly")
_METRIC_DIMENSION = {
    "rowCount": "completeness",
    "nullValues": "completeness",
    "missingValues": "completeness",
    "invalidValues": "validity",
    "duplicateValues": "uniqueness",
}


def masked_skip(column: Column | None, kind: str, masked: bool) -> str | None:
    """Why a check cannot run on masked data, or None when it can."""
    if column is None or not masked or column.masking == "none":
        return None
    why = f"{column.name} is stored masked ({column.masking})"
    if column.masking == "redact":
        return f"{why}: nothing to check; the pipeline checked it before masking"
    if kind in _VALUE_KINDS:
        return f"{why}: its values were checked by the pipeline before masking (rejects are dead letters)"
    if kind in ("unique", "duplicateValues") and column.masking != "hash":
        return f"{why}: partial masking merges distinct values, so duplicates cannot be counted"
    return None


def compile_checks(
    contract: Contract, *, masked: bool, tables: Mapping[str, str] | None = None
) -> tuple[ContractCheck, ...]:
    """The contract's checks in contract order; `tables` maps a referenced table name to its product."""
    table = contract.table_name
    found: list[ContractCheck] = [
        ContractCheck(
            f"{table}.rows",
            "rowCount",
            None,
            RowCount(),
            Threshold("mustBeGreaterOrEqualTo", 0),
            "error",
            "completeness",
            "schema",
            "the data can be read",
        )
    ]
    unique = {p.name for p in contract.table.properties or () if p.unique}
    for column in contract.columns:
        found += _column_checks(table, column, masked, column.name in unique)
    found += _quality_checks(contract, masked)
    found += _relationship_checks(contract, tables or {}, masked)
    found += _freshness_checks(contract)
    return tuple(found)


def _check(
    table: str,
    column: Column,
    kind: str,
    measure: Measure,
    dimension: str,
    masked: bool,
    description: str,
    threshold: Threshold = NO_FAILING_ROWS,
) -> ContractCheck:
    return ContractCheck(
        id=f"{table}.{column.name}.{kind}",
        kind=kind,
        column=column.name,
        measure=measure,
        threshold=threshold,
        severity="error",
        dimension=dimension,
        origin="schema",
        description=description,
        skip_reason=masked_skip(column, kind, masked),
    )


def _column_checks(table: str, column: Column, masked: bool, unique: bool) -> Iterator[ContractCheck]:
    name, opts = column.name, column.options
    type_measure = ColumnType(name, column.logical_type)
    yield _check(table, column, "type", type_measure, "conformity", masked, f"{name} is a {column.logical_type}",
                 Threshold("mustBe", 0, "value"))  # fmt: skip
    if column.required:
        yield _check(table, column, "required", FailingRows(name, IsNull()), "completeness", masked,
                     f"{name} is never null")  # fmt: skip
    if column.primary_key or unique:
        yield _check(table, column, "unique", Duplicates((name,)), "uniqueness", masked, f"{name} is unique")
    if column.valid_values is not None:
        values = tuple(str(v) for v in column.valid_values)
        yield _check(table, column, "enum", FailingRows(name, NotIn(values)), "validity", masked,
                     f"{name} is one of {len(values)} valid values")  # fmt: skip
    if column.logical_type == "string":
        if pattern := opts.get("pattern"):
            yield _pattern_check(table, column, "pattern", str(pattern), masked)
        if (fmt := opts.get("format")) in FORMAT_PATTERNS:
            yield _pattern_check(table, column, "format", FORMAT_PATTERNS[str(fmt)], masked, f"a valid {fmt}")
        lengths: tuple[tuple[str, Literal["<", ">"]], ...] = (("minLength", "<"), ("maxLength", ">"))
        for key, op in lengths:
            if (bound := opts.get(key)) is not None:
                words = "shorter" if op == "<" else "longer"
                yield _check(table, column, key, FailingRows(name, Length(op, int(bound))), "validity", masked,
                             f"{name} is not {words} than {bound} characters")  # fmt: skip
    if column.logical_type in ("number", "integer"):
        for key, fails_when, words in _BOUNDS:
            if (bound := opts.get(key)) is not None and not isinstance(bound, bool):
                measure = FailingRows(name, Compare(fails_when, float(bound)))
                yield _check(table, column, key, measure, "validity", masked, f"{name} is not {words} {bound}")


def _pattern_check(
    table: str, column: Column, kind: str, pattern: str, masked: bool, what: str | None = None
) -> ContractCheck:
    description = f"{column.name} is {what}" if what else f"{column.name} matches {pattern}"
    try:
        measure: Measure = FailingRows(column.name, NoMatch(re2_pattern(pattern)))
    except UnsupportedPattern as exc:
        measure = NotRun(f"pattern {pattern!r} cannot run on RE2: {exc}")
    return _check(table, column, kind, measure, "validity", masked, description)


# --- quality rules --------------------------------------------------------------------------------


def _quality_checks(contract: Contract, masked: bool) -> Iterator[ContractCheck]:
    table = contract.table_name
    rules: list[tuple[DataQuality, tuple[str, ...]]] = []
    for prop in contract.table.properties or ():
        rules += [(rule, (prop.name or "",)) for rule in prop.quality or ()]
    for rule in contract.table.quality or ():
        rules.append((rule, tuple(str(p) for p in (rule.arguments or {}).get("properties") or ())))
    by_name = {c.name: c for c in contract.columns}
    for i, (rule, columns) in enumerate(rules):
        yield _quality_check(table, i, rule, columns, by_name, masked)


def _threshold(rule: DataQuality, unit: Unit, default: Threshold) -> Threshold:
    for op in OPERATORS:
        value = getattr(rule, op, None)
        if value is not None:
            return Threshold(op, value, unit)
    return Threshold(default.operator, default.value, unit)


def _quality_check(
    table: str, index: int, rule: DataQuality, columns: tuple[str, ...], by_name: Mapping[str, Column], masked: bool
) -> ContractCheck:
    kind = str(rule.metric or rule.type or "custom")
    column = columns[0] if len(columns) == 1 else None
    check_id = rule.name or rule.id or f"{table}.{'+'.join(columns) or 'table'}.{kind}.{index}"
    unit: Unit = "percent" if (rule.unit or "").lower() in ("percent", "%") else "rows"
    severity: Literal["error", "warning"] = (
        "warning" if (rule.severity or "").lower() in _WARNING_SEVERITIES else "error"
    )
    args: dict[str, Any] = dict(rule.arguments or {})
    default = Threshold("mustBeGreaterThan", 0) if kind == "rowCount" else NO_FAILING_ROWS
    threshold = _threshold(rule, unit, default)
    measure, skip = _quality_measure(rule, kind, column, columns, args)
    target = by_name.get(column) if column else None
    skip = skip or masked_skip(target, kind, masked)
    for name in columns:
        if skip is None and len(columns) > 1 and name in by_name:
            skip = masked_skip(by_name[name], kind, masked)
    if isinstance(measure, CustomSql):
        threshold = _threshold(rule, "value", NO_FAILING_ROWS)
    return ContractCheck(
        id=check_id,
        kind=kind,
        column=column,
        measure=measure,
        threshold=threshold,
        severity=severity,
        dimension=str(rule.dimension or _METRIC_DIMENSION.get(kind, "validity")).lower(),
        origin="quality",
        description=rule.description or "",
        skip_reason=skip,
    )


def _quality_measure(
    rule: DataQuality, kind: str, column: str | None, columns: tuple[str, ...], args: dict[str, Any]
) -> tuple[Measure, str | None]:
    rule_type = (rule.type or "library").lower()
    if rule_type == "sql":
        return (CustomSql(rule.query), None) if rule.query else (NotRun("a `type: sql` rule without `query`"), None)
    if rule_type in ("custom", "text"):
        engine = f" (engine {rule.engine})" if rule.engine else ""
        return NotRun(f"a `type: {rule_type}` rule{engine} is not executed by meshkit"), "not executable here"
    if kind == "rowCount":
        return RowCount(), None
    if kind == "duplicateValues" and columns:
        return Duplicates(columns), None
    if column is None:
        return NotRun(f"metric {kind} needs one property (`arguments.properties`)"), None
    if kind == "nullValues":
        return FailingRows(column, IsNull()), None
    if kind == "missingValues":
        missing = args.get("missingValues") or []
        return FailingRows(column, InList(tuple(str(v) for v in missing if v is not None))), None
    if kind == "invalidValues":
        if isinstance(args.get("validValues"), list):
            return FailingRows(column, NotIn(tuple(str(v) for v in args["validValues"]))), None
        if isinstance(args.get("pattern"), str):
            try:
                return FailingRows(column, NoMatch(re2_pattern(args["pattern"]))), None
            except UnsupportedPattern as exc:
                return NotRun(f"pattern cannot run on RE2: {exc}"), None
        return NotRun("invalidValues needs `arguments.validValues` or `arguments.pattern`"), None
    return NotRun(f"metric {kind!r} is not one meshkit measures"), None


# --- relationships and freshness ------------------------------------------------------------------


def _relationship_checks(contract: Contract, tables: Mapping[str, str], masked: bool) -> Iterator[ContractCheck]:
    """Foreign keys to another product's table (`to: users.user_id`); references within this
    contract's own table are checked by validation, not here."""
    own = contract.table_name
    for column in contract.columns:
        prop = next((p for p in contract.table.properties or () if p.name == column.name), None)
        for rel in (prop.relationships if prop else None) or ():
            target = rel.to if isinstance(rel.to, str) else None
            if (rel.type or "foreignKey").lower() != "foreignkey" or not target or "." not in target:
                continue
            target_table, target_column = target.rsplit(".", 1)
            if target_table in (own, contract.table.name):
                continue
            product = tables.get(target_table)
            measure: Measure = (
                Reference(column.name, product, target_table, target_column)
                if product
                else NotRun(f"no product in domains/ publishes table {target_table!r}")
            )
            yield ContractCheck(
                id=f"{own}.{column.name}.reference",
                kind="reference",
                column=column.name,
                measure=measure,
                threshold=NO_FAILING_ROWS,
                # change feeds of two products arrive independently (a transaction may land before its
                # customer), so an orphan is a warning, not a failed load
                severity="warning",
                dimension="consistency",
                origin="relationship",
                description=f"every {column.name} is a {target} of {product or 'an unknown product'}",
                skip_reason=(
                    f"{column.name} is stored masked ({column.masking}): its values cannot be compared"
                    if masked and column.masking in ("partial", "redact")
                    else None
                ),
            )


def _freshness_checks(contract: Contract) -> Iterator[ContractCheck]:
    """SLA `latency` (or `freshness`) on its element (or `slaDefaultElement`): newest value vs now."""
    default_element = contract.odcs.slaDefaultElement
    for prop in contract.odcs.slaProperties or ():
        if (prop.property or "").lower() not in _LATENCY_PROPERTIES or prop.value is None:
            continue
        element = prop.element or default_element or ""
        column = element.rsplit(".", 1)[-1] if element else ""
        names = {c.name: c for c in contract.columns}
        try:
            seconds = duration_seconds(prop.value, prop.unit)
        except ValueError as exc:
            measure: Measure = NotRun(f"SLA {prop.property} is not a duration: {exc}")
            seconds = 0.0
        else:
            measure = (
                MaxAge(column)
                if column in names and names[column].logical_type in ("timestamp", "date")
                else NotRun(f"SLA element {element!r} is not a timestamp column of this table")
            )
        yield ContractCheck(
            id=f"{contract.table_name}.freshness",
            kind="freshness",
            column=column or None,
            measure=measure,
            threshold=Threshold("mustBeLessOrEqualTo", seconds, "seconds"),
            # the freshness SLO's burn-rate alerts own this promise; a test on data at rest reports it
            severity="warning",
            dimension="timeliness",
            origin="sla",
            description=f"newest {column} is at most {prop.value} {prop.unit or ''} old".strip(),
        )
