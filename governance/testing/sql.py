"""The checks as SQL: one aggregate statement per table for everything countable in one scan, plus
small statements for samples, references and custom rules. Pure text, no engine: `SqlDialect`
spells what DuckDB and BigQuery (GoogleSQL) write differently.

Only contract metadata reaches the SQL (column names quoted, valid values and patterns as escaped
literals); relation names come from validated product names, never from free text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from governance.testing.model import (
    ContractCheck,
    CustomSql,
    Duplicates,
    FailingRows,
    InList,
    IsNull,
    Length,
    MaxAge,
    NoMatch,
    NotIn,
    Predicate,
    Reference,
    RowCount,
)
from meshkit.errors import ContractError, Location

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class SqlDialect:
    """The spellings that differ between DuckDB and GoogleSQL."""

    name: str
    text_type: str

    def ident(self, name: str) -> str:
        if self.name == "bigquery":
            return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
        return '"' + name.replace('"', '""') + '"'

    def literal(self, value: str) -> str:
        if self.name == "bigquery":
            escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
            return f"'{escaped}'"
        return "'" + value.replace("'", "''") + "'"

    def count_if(self, predicate: str) -> str:
        return f"COUNTIF({predicate})" if self.name == "bigquery" else f"count(*) FILTER (WHERE {predicate})"

    def regex_contains(self, expr: str, pattern: str) -> str:
        fn = "REGEXP_CONTAINS" if self.name == "bigquery" else "regexp_matches"
        return f"{fn}({expr}, {self.literal(pattern)})"

    def length(self, expr: str) -> str:
        return f"CHAR_LENGTH({expr})" if self.name == "bigquery" else f"length({expr})"

    def as_text(self, expr: str) -> str:
        return f"CAST({expr} AS {self.text_type})"

    def epoch_seconds(self, expr: str) -> str:
        if self.name == "bigquery":
            return f"UNIX_MICROS(TIMESTAMP({expr})) / 1000000"
        return f"epoch(CAST({expr} AS TIMESTAMPTZ))"

    def distinct_rows(self, cols: Sequence[str], non_null: str) -> str:
        if len(cols) == 1:
            return f"count(DISTINCT {cols[0]})"
        if self.name == "bigquery":
            return f"COUNT(DISTINCT IF({non_null}, TO_JSON_STRING(STRUCT({', '.join(cols)})), NULL))"
        return f"count(DISTINCT ({', '.join(cols)})) FILTER (WHERE {non_null})"


DUCKDB = SqlDialect("duckdb", "VARCHAR")
BIGQUERY = SqlDialect("bigquery", "STRING")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def predicate_sql(d: SqlDialect, column: str, predicate: Predicate, alias: str = "") -> str:
    """The condition under which a row FAILS the check (`alias`: a table alias with its dot)."""
    c = alias + d.ident(column)
    if isinstance(predicate, IsNull):
        return f"{c} IS NULL"
    if isinstance(predicate, NotIn):
        values = ", ".join(d.literal(v) for v in predicate.values) or "NULL"
        return f"({c} IS NOT NULL AND {d.as_text(c)} NOT IN ({values}))"
    if isinstance(predicate, InList):
        if not predicate.values:
            return f"{c} IS NULL"
        return f"({c} IS NULL OR {d.as_text(c)} IN ({', '.join(d.literal(v) for v in predicate.values)}))"
    if isinstance(predicate, NoMatch):
        return f"({c} IS NOT NULL AND NOT {d.regex_contains(d.as_text(c), predicate.pattern)})"
    if isinstance(predicate, Length):
        return f"{d.length(c)} {predicate.op} {predicate.bound}"
    return f"{c} {predicate.op} {_number(predicate.bound)}"


def aggregated(check: ContractCheck) -> bool:
    """Whether the check is measured by the table's single scan."""
    return check.skip_reason is None and isinstance(check.measure, FailingRows | Duplicates | RowCount | MaxAge)


@dataclass(frozen=True)
class ScanPlan:
    """The one statement that measures every aggregated check, the SLIs and failing-key samples.

    Output column 0 is the row count; `measures` and `samples` map a check id to its column, `sli`
    a dimension to the column counting rows that fail any check of that dimension.
    """

    sql: str
    measures: dict[str, int]
    samples: dict[str, int]
    sli: dict[str, int]


SLI_DIMENSIONS: dict[str, frozenset[str]] = {
    "validity": frozenset({"validity", "conformity"}),
    "completeness": frozenset({"completeness"}),
}


def key_sql(d: SqlDialect, keys: Sequence[str]) -> str:
    """The primary key as one value (parts joined by `|` when composite)."""
    if len(keys) == 1:
        return d.ident(keys[0])
    parts = ", ".join(d.as_text(d.ident(k)) for k in keys)
    return f"ARRAY_TO_STRING([{parts}], '|')" if d.name == "bigquery" else f"concat_ws('|', {parts})"


KEY_SEPARATOR = "\x1f"  # between sampled keys in GoogleSQL's one-string form (ASCII unit separator)


def _first_keys(d: SqlDialect, flag: str, key: str) -> str:
    """The first failing keys in key order: a list in DuckDB; in GoogleSQL one string (a result row
    cannot hold an array with a NULL element, which the emulator trips on for `IGNORE NULLS`)."""
    if d.name == "bigquery":
        agg = (
            f"ARRAY_AGG(IF({flag}, {d.as_text(key)}, NULL) IGNORE NULLS ORDER BY {d.as_text(key)} LIMIT {SAMPLE_SIZE})"
        )
        return f"ARRAY_TO_STRING({agg}, '\\x1f')"
    return f"min({key}, {SAMPLE_SIZE}) FILTER (WHERE {flag})"


def scan_plan(d: SqlDialect, relation: str, checks: Sequence[ContractCheck], keys: Sequence[str] = ()) -> ScanPlan:
    """One scan: an inner projection evaluates each distinct row predicate once (`_p0`, `_p1`, ...);
    the outer aggregate counts them, counts rows failing any predicate per SLI, keeps the first
    failing keys of each predicate, and measures duplicates, row count and the newest timestamps.
    Identical measures (an enum stated twice, as `enum` and as a quality rule) share one column."""
    chosen = [c for c in checks if aggregated(c)]
    flags: dict[str, str] = {}  # predicate SQL -> alias
    raw: dict[str, None] = dict.fromkeys(keys)
    for c in chosen:
        m = c.measure
        if isinstance(m, FailingRows):
            flags.setdefault(predicate_sql(d, m.column, m.predicate), f"_p{len(flags)}")
        elif isinstance(m, Duplicates):
            raw.update(dict.fromkeys(m.columns))
        elif isinstance(m, MaxAge):
            raw[m.column] = None
    exprs: dict[str, int] = {"count(*)": 0}

    def column(expr: str) -> int:
        return exprs.setdefault(expr, len(exprs))

    measures, samples, sli = {}, {}, {}
    key = key_sql(d, keys) if keys else None
    for c in chosen:
        m = c.measure
        if isinstance(m, FailingRows):
            flag = flags[predicate_sql(d, m.column, m.predicate)]
            measures[c.id] = column(d.count_if(flag))
            if key is not None:
                samples[c.id] = column(_first_keys(d, flag, key))
        elif isinstance(m, RowCount):
            measures[c.id] = 0
        elif isinstance(m, MaxAge):
            measures[c.id] = column(d.epoch_seconds(f"max({d.ident(m.column)})"))
        elif isinstance(m, Duplicates):
            cols = [d.ident(col) for col in m.columns]
            non_null = " AND ".join(f"{col} IS NOT NULL" for col in cols)
            measures[c.id] = column(f"{d.count_if(non_null)} - {d.distinct_rows(cols, non_null)}")
    for name, dimensions in SLI_DIMENSIONS.items():
        chosen_flags = sorted(
            {
                flags[predicate_sql(d, c.measure.column, c.measure.predicate)]
                for c in chosen
                if isinstance(c.measure, FailingRows) and c.dimension in dimensions
            }
        )
        if chosen_flags:
            sli[name] = column(d.count_if(" OR ".join(chosen_flags)))
    projection = [d.ident(col) for col in raw] + [f"{sql} AS {alias}" for sql, alias in flags.items()]
    inner = f"SELECT {', '.join(projection) or '1 AS _one'} FROM {relation}"
    body = ",\n  ".join(exprs)
    return ScanPlan(f"SELECT\n  {body}\nFROM ({inner}) AS scan", measures, samples, sli)


def sample_sql(
    d: SqlDialect, relation: str, check: ContractCheck, keys: Sequence[str], target: str | None = None
) -> str:
    """Up to SAMPLE_SIZE key tuples of failing rows, in key order."""
    key_list = ", ".join(f"t.{d.ident(k)}" for k in keys)
    order = f" ORDER BY {key_list} LIMIT {SAMPLE_SIZE}"
    m = check.measure
    if isinstance(m, FailingRows):
        where = predicate_sql(d, m.column, m.predicate, "t.")
        return f"SELECT {key_list} FROM {relation} AS t WHERE {where}{order}"
    if isinstance(m, Duplicates) and list(m.columns) == list(keys):
        # duplicated keys themselves: one grouping, no join back
        cols = [d.ident(c) for c in m.columns]
        not_null = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        return (
            f"SELECT {', '.join(cols)} FROM {relation} WHERE {not_null} GROUP BY {', '.join(cols)} "
            f"HAVING count(*) > 1 ORDER BY {', '.join(cols)} LIMIT {SAMPLE_SIZE}"
        )
    if isinstance(m, Duplicates):
        cols = [d.ident(c) for c in m.columns]
        inner = (
            f"SELECT {', '.join(cols)} FROM {relation} WHERE {' AND '.join(f'{c} IS NOT NULL' for c in cols)} "
            f"GROUP BY {', '.join(cols)} HAVING count(*) > 1"
        )
        on = " AND ".join(f"t.{c} = dup.{c}" for c in cols)
        return f"SELECT DISTINCT {key_list} FROM {relation} AS t JOIN ({inner}) AS dup ON {on}{order}"
    if isinstance(m, Reference) and target is not None:
        return f"SELECT {key_list} FROM {relation} AS t {_orphans(d, m, target)}{order}"
    raise ValueError(f"no sample for {check.kind}")


def _orphans(d: SqlDialect, m: Reference, target: str) -> str:
    c, tc = d.ident(m.column), d.ident(m.target_column)
    return (
        f"LEFT JOIN (SELECT DISTINCT {tc} AS k FROM {target}) AS ref ON t.{c} = ref.k "
        f"WHERE t.{c} IS NOT NULL AND ref.k IS NULL"
    )


def reference_sql(d: SqlDialect, relation: str, m: Reference, target: str) -> str:
    """Rows whose reference finds no key in the target product's data."""
    return f"SELECT count(*) FROM {relation} AS t {_orphans(d, m, target)}"


_PLACEHOLDER = re.compile(r"\$?\{(model|table|object|property|column)\}")


def custom_sql(d: SqlDialect, m: CustomSql, relation: str, column: str | None, where: Location | None = None) -> str:
    """A `type: sql` rule's query with `{model}`/`{table}`/`{object}` (also `${...}`) replaced by the
    product's relation and `{property}`/`{column}` by the rule's column, both quoted identifiers."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1) in ("property", "column"):
            if column is None:
                raise ContractError(
                    f"quality rule query uses {match.group(0)} but the rule belongs to no property",
                    location=where,
                    hint="Move the rule under the property, or write the column name.",
                )
            return d.ident(column)
        return relation

    return _PLACEHOLDER.sub(substitute, m.query).strip().rstrip(";")
