"""The contract tests' result model: compiled checks, what each measures, and their outcomes.

A `ContractCheck` is a pure function of the contract: what to count (`Measure`), the bound it must hold
(`Threshold`) and how bad a breach is. The runner turns each into a `CheckOutcome`; every output
(text, JSON, JUnit, lineage, SLI metrics, the review) renders that one `ContractTestRun`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "warning", "skipped", "error"]
Unit = Literal["rows", "percent", "seconds", "value"]

# ODCS comparison operators: symbol shown, and how a measured value is judged
OPERATORS: dict[str, tuple[str, Callable[[float, Any], bool]]] = {
    "mustBe": ("=", lambda v, t: v == float(t)),
    "mustNotBe": ("!=", lambda v, t: v != float(t)),
    "mustBeGreaterThan": (">", lambda v, t: v > float(t)),
    "mustBeGreaterOrEqualTo": (">=", lambda v, t: v >= float(t)),
    "mustBeLessThan": ("<", lambda v, t: v < float(t)),
    "mustBeLessOrEqualTo": ("<=", lambda v, t: v <= float(t)),
    "mustBeBetween": ("between", lambda v, t: float(t[0]) <= v <= float(t[1])),
    "mustNotBeBetween": ("not between", lambda v, t: not float(t[0]) <= v <= float(t[1])),
}
_UNIT_SHOWN = {"rows": " rows", "percent": " %", "seconds": " s", "value": ""}


@dataclass(frozen=True)
class Threshold:
    """An ODCS bound (`mustBe: 0`, `mustBeLessThan: 5` with `unit: percent`, ...) on a measured value."""

    operator: str
    value: Any
    unit: Unit = "rows"

    def holds(self, measured: float) -> bool:
        return OPERATORS[self.operator][1](measured, self.value)

    def __str__(self) -> str:
        symbol = OPERATORS[self.operator][0]
        shown = (
            " and ".join(f"{float(v):g}" for v in self.value)
            if isinstance(self.value, list | tuple)
            else (f"{float(self.value):g}")
        )
        return f"{symbol} {shown}{_UNIT_SHOWN[self.unit]}"


NO_FAILING_ROWS = Threshold("mustBe", 0)


# --- what a check measures (dialect-neutral; `sql.py` spells it per engine) ---------------------


@dataclass(frozen=True)
class IsNull:
    pass


@dataclass(frozen=True)
class NotIn:
    """Not one of `values` (compared as text, like the pipeline's enum check)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class InList:
    """Null or one of `values`: ODCS `missingValues`."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class NoMatch:
    """Does not contain a match of `pattern` (RE2, already translated from ECMA)."""

    pattern: str


@dataclass(frozen=True)
class Length:
    op: Literal["<", ">"]
    bound: int


@dataclass(frozen=True)
class Compare:
    """Fails when `column <op> bound` holds (e.g. `<` 0 for `minimum: 0`)."""

    op: Literal["<", ">", "<=", ">="]
    bound: float


Predicate = IsNull | NotIn | InList | NoMatch | Length | Compare


@dataclass(frozen=True)
class FailingRows:
    """Rows where `predicate` holds on `column` (a non-null test ignores nulls: required says those)."""

    column: str
    predicate: Predicate


@dataclass(frozen=True)
class Duplicates:
    """Non-null rows beyond the first of each distinct value (of the columns together)."""

    columns: tuple[str, ...]


@dataclass(frozen=True)
class RowCount:
    pass


@dataclass(frozen=True)
class MaxAge:
    """Seconds from the newest value of a timestamp column to now."""

    column: str


@dataclass(frozen=True)
class Reference:
    """Non-null values of `column` absent from `target_column` of another product's data."""

    column: str
    target_product: str
    target_table: str
    target_column: str


@dataclass(frozen=True)
class CustomSql:
    """A contract's `type: sql` rule: a query returning one number."""

    query: str


@dataclass(frozen=True)
class ColumnType:
    """The column exists, with a type the logical type allows."""

    column: str
    logical_type: str


@dataclass(frozen=True)
class NotRun:
    """A check meshkit states but does not execute (`type: custom` engines, `type: text`)."""

    reason: str


Measure = FailingRows | Duplicates | RowCount | MaxAge | Reference | CustomSql | ColumnType | NotRun


@dataclass(frozen=True)
class ContractCheck:
    """One schema, quality, SLA or relationship check of a contract, compiled and not yet run."""

    id: str  # stable: `<table>.<column>.<kind>`, or the quality rule's name
    kind: str  # required, unique, enum, pattern, format, minLength, ..., rowCount, freshness, reference, sql
    column: str | None
    measure: Measure
    threshold: Threshold
    severity: Literal["error", "warning"]
    dimension: str  # completeness, validity, uniqueness, conformity, timeliness, consistency, ...
    origin: str  # where in the contract: `schema`, `quality`, `sla`, `relationship`
    description: str = ""
    skip_reason: str | None = None  # set when the check does not apply to this data (e.g. masked values)


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict: the measured value against its threshold, and failing keys (masked)."""

    check: ContractCheck
    status: Status
    measured: float | None = None
    reason: str = ""
    sample_keys: tuple[str, ...] = ()

    @property
    def measured_text(self) -> str:
        if self.measured is None:
            return "–"
        unit = self.check.threshold.unit
        return f"{self.measured:g}{_UNIT_SHOWN[unit]}"

    def to_dict(self) -> dict[str, Any]:
        c = self.check
        return {
            "id": c.id,
            "kind": c.kind,
            "column": c.column,
            "dimension": c.dimension,
            "severity": c.severity,
            "origin": c.origin,
            "threshold": str(c.threshold),
            "measured": self.measured,
            "status": self.status,
            "reason": self.reason,
            "sample_keys": list(self.sample_keys),
        }


@dataclass(frozen=True)
class ContractTestRun:
    """All checks of one product on one server, with the SLIs they imply."""

    product: str  # "<domain>/<product>"
    contract_version: str
    server: str
    dataset: str  # what was read: a URI or a table name
    run_id: str
    started_at: str
    ended_at: str
    duration_seconds: float
    rows: int
    outcomes: tuple[CheckOutcome, ...]
    validity: float | None = None  # share of rows passing every validity check
    completeness: float | None = None  # share of rows with every required value present
    queries: int = 0  # SQL statements sent to the engine
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """False when a check of error severity failed or could not run."""
        return not any(o.status in ("failed", "error") for o in self.outcomes)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "contract_version": self.contract_version,
            "server": self.server,
            "dataset": self.dataset,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_seconds": self.duration_seconds,
            "rows": self.rows,
            "ok": self.ok,
            "summary": {s: self.count(s) for s in ("passed", "failed", "warning", "skipped", "error")},
            "validity": self.validity,
            "completeness": self.completeness,
            "queries": self.queries,
            "notes": list(self.notes),
            "checks": [o.to_dict() for o in self.outcomes],
        }
