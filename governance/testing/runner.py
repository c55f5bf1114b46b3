"""Run a contract's checks where the product's data lives: one aggregate scan for every countable
check, then one small statement per reference, custom SQL rule and sample of failing keys.

Samples are primary-key values only. A key column holding personal data is shown as its HMAC
(`pipelines.transforms.mask.hmac_hex` with `meshkit.secrets.masking_key`, as the pipeline hashes
join keys); a key already stored hashed is shown as stored. No other value leaves the engine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance.testing.compile import compile_checks
from governance.testing.model import (
    CheckOutcome,
    ColumnType,
    ContractCheck,
    ContractTestRun,
    CustomSql,
    Duplicates,
    FailingRows,
    MaxAge,
    NotRun,
    Reference,
    Status,
)
from governance.testing.sql import KEY_SEPARATOR, ScanPlan, aggregated, custom_sql, reference_sql, sample_sql, scan_plan
from governance.testing.targets import DataTarget, open_target, product_tables
from meshkit.config import Settings
from meshkit.contracts.model import Contract
from meshkit.products.discovery import discover, find_product
from meshkit.products.model import DataProduct

# engine type names (DuckDB, then BigQuery) a logical type accepts, by prefix
_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("VARCHAR", "UUID", "STRING", "JSON"),
    "integer": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                "UBIGINT", "INT64", "INT"),
    "number": ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC", "BIGNUMERIC", "TINYINT", "SMALLINT", "INTEGER",
               "BIGINT", "HUGEINT", "INT64", "FLOAT64"),
    "boolean": ("BOOLEAN", "BOOL"),
    "date": ("DATE",),
    "timestamp": ("TIMESTAMP", "DATETIME"),
    "object": ("VARCHAR", "STRING", "JSON", "STRUCT", "MAP", "RECORD"),
    "array": ("VARCHAR", "STRING", "JSON", "[]", "LIST", "RECORD"),
}  # fmt: skip
KeyMasker = Callable[[str], str]


@dataclass(frozen=True)
class RunOptions:
    """How `meshkit test` reads the data (see `targets.py`)."""

    server: str = "local"
    source: str = "lake"
    path: str | None = None
    masked: bool | None = None
    samples: bool = True


def type_matches(logical: str, engine_type: str) -> bool:
    accepted = _TYPES.get(logical)
    kind = engine_type.upper()
    return accepted is None or any(kind.startswith(a) or (a == "[]" and kind.endswith("[]")) for a in accepted)


def run_contract_tests(
    settings: Settings,
    product: DataProduct | str,
    options: RunOptions = RunOptions(),
    *,
    now: datetime | None = None,
    client: Any = None,
    key_masker: KeyMasker | None = None,
) -> ContractTestRun:
    """Every check of the product's contract on its data; never raises for a failed check."""
    if isinstance(product, str):
        product = find_product(settings.domains_dir, product)
    started, clock = datetime.now(UTC), time.perf_counter()
    target = open_target(settings, product, server=options.server, source=options.source, path=options.path,
                         masked=options.masked, client=client)  # fmt: skip
    try:
        products = discover(settings.domains_dir)
        checks = compile_checks(product.contract, masked=target.masked, tables=product_tables(products))
        execution = _Execution(target, product, products, now or datetime.now(UTC), key_masker or _masker(settings))
        outcomes = execution.run(checks, options.samples)
    finally:
        target.close()
    ended = datetime.now(UTC)
    rows = execution.rows
    return ContractTestRun(
        product=product.ref,
        contract_version=product.contract.version,
        server=options.server,
        dataset=target.dataset,
        run_id=str(uuid.uuid4()),
        started_at=started.isoformat(),
        ended_at=ended.isoformat(),
        duration_seconds=round(time.perf_counter() - clock, 3),
        rows=rows,
        outcomes=tuple(outcomes),
        validity=execution.sli.get("validity"),
        completeness=execution.sli.get("completeness"),
        queries=execution.queries,
        notes=tuple(execution.notes),
    )


def _masker(settings: Settings) -> KeyMasker:
    """HMAC of a personal key value with the product's masking key (read only when first needed)."""
    key: list[bytes] = []

    def mask(value: str) -> str:
        from meshkit.secrets import masking_key
        from pipelines.transforms.mask import hmac_hex

        if not key:
            key.append(masking_key(settings))
        return hmac_hex(key[0], value)

    return mask


class _Execution:
    """The statements of one test run and what they measured."""

    def __init__(
        self, target: DataTarget, product: DataProduct, products: Sequence[DataProduct], now: datetime,
        masker: KeyMasker,
    ) -> None:  # fmt: skip
        self.target, self.product, self.products, self.now, self.masker = target, product, products, now, masker
        self.contract: Contract = product.contract
        self.rows = 0
        self.queries = 0
        self.sli: dict[str, float] = {}
        self.notes: list[str] = []
        self.measured: dict[str, float | None] = {}
        self.errors: dict[str, str] = {}
        self.sampled: dict[str, list[str]] = {}
        self.keys: list[str] = []
        self.sample_cache: dict[str, list[str]] = {}

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        self.queries += 1
        return self.target.query(sql)

    def run(self, checks: Sequence[ContractCheck], samples: bool) -> list[CheckOutcome]:
        columns = {name.lower(): kind for name, kind in self.target.columns().items()}
        missing = {c.column for c in checks if c.column and c.column.lower() not in columns}
        runnable = [c for c in checks if not (c.column in missing and aggregated(c))]
        keys = list(self.contract.primary_key)
        self.keys = keys if samples and keys and all(k.lower() in columns for k in keys) else []
        self._scan(runnable)
        outcomes = []
        for check in checks:
            outcome = self._judge(check, columns, missing)
            if self.keys and outcome.status in ("failed", "warning") and outcome.measured:
                outcome = self._with_sample(outcome)
            outcomes.append(outcome)
        return outcomes

    def _scan(self, checks: Sequence[ContractCheck]) -> None:
        """The single aggregate statement; if the engine refuses it, each check alone, so one bad
        expression (say, a pattern RE2 rejects) costs only its own check."""
        d, relation = self.target.dialect, self.target.relation
        try:
            self._read_scan(scan_plan(d, relation, checks, self.keys))
        except Exception as exc:
            self.notes.append(f"the single scan failed ({type(exc).__name__}); checks were run one by one")
            self._read_scan(scan_plan(d, relation, []))
            for check in (c for c in checks if aggregated(c)):
                try:
                    self._read_scan(scan_plan(d, relation, [check], self.keys))
                except Exception as one:
                    self.errors[check.id] = f"{type(one).__name__}: {str(one).splitlines()[0][:200]}"

    def _read_scan(self, plan: ScanPlan) -> None:
        row = self._query(plan.sql)[0]
        self.rows = int(row[0] or 0)
        for check_id, index in plan.measures.items():
            self.measured[check_id] = None if row[index] is None else float(row[index])
        for check_id, index in plan.samples.items():
            found = row[index]
            keys = found.split(KEY_SEPARATOR) if isinstance(found, str) else list(found or ())
            self.sampled[check_id] = [str(v) for v in keys if v != ""]
        for name, index in plan.sli.items():
            failing = int(row[index] or 0)
            self.sli[name] = 1.0 - failing / self.rows if self.rows else 1.0

    def _judge(self, check: ContractCheck, columns: dict[str, str], missing: set[str]) -> CheckOutcome:
        m = check.measure
        if check.skip_reason is not None:
            return CheckOutcome(check, "skipped", reason=check.skip_reason)
        if isinstance(m, NotRun):  # stated by the contract but not runnable here (say, a look-ahead pattern)
            return CheckOutcome(check, "error" if check.severity == "error" else "warning", reason=m.reason)
        if check.column in missing:
            return self._verdict(check, 1.0, f"column {check.column} is missing from the data", missing=True)
        if check.id in self.errors:
            return CheckOutcome(check, "error", reason=self.errors[check.id])
        if isinstance(m, ColumnType):
            found = columns[m.column.lower()]
            ok = type_matches(m.logical_type, found)
            return self._verdict(check, 0.0 if ok else 1.0, f"stored as {found}")
        if isinstance(m, FailingRows | Duplicates) or check.kind == "rowCount":
            return self._counted(check)
        if isinstance(m, MaxAge):
            newest = self.measured.get(check.id)
            if newest is None:
                return CheckOutcome(check, "failed" if check.severity == "error" else "warning",
                                    reason=f"no {m.column} value to judge freshness by")  # fmt: skip
            age = round(self.now.timestamp() - newest, 3)
            return self._verdict(check, age, f"newest {m.column} is {age:g} s old")
        try:
            value = self._separate(check)
        except Exception as exc:
            return CheckOutcome(check, "error", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        if value is None:
            return CheckOutcome(check, "warning", reason="the referenced product has no data to compare with")
        return self._verdict(check, value)

    def _counted(self, check: ContractCheck) -> CheckOutcome:
        count = self.measured.get(check.id) or 0.0
        if check.kind == "rowCount":
            return self._verdict(check, count, f"{count:g} rows")
        value = 100.0 * count / self.rows if check.threshold.unit == "percent" and self.rows else count
        shown = f"{count:g} of {self.rows} rows"
        return self._verdict(check, round(value, 6), shown, failing=count)

    def _verdict(
        self,
        check: ContractCheck,
        value: float,
        detail: str = "",
        *,
        failing: float | None = None,
        missing: bool = False,
    ) -> CheckOutcome:
        if missing or not check.threshold.holds(value):
            status: Status = "failed" if check.severity == "error" else "warning"
            reason = f"measured {value:g}, expected {check.threshold}" + (f" ({detail})" if detail else "")
            return CheckOutcome(check, status, value, reason)
        return CheckOutcome(check, "passed", value, detail)

    def _separate(self, check: ContractCheck) -> float | None:
        d, m = self.target.dialect, check.measure
        if isinstance(m, Reference):
            target = self._reference_relation(m)
            if target is None:
                return None
            return float(self._query(reference_sql(d, self.target.relation, m, target))[0][0] or 0)
        assert isinstance(m, CustomSql)
        where = self.contract.document.location("schema[0].quality")
        rows = self._query(custom_sql(d, m, self.target.relation, check.column, where))
        value = rows[0][0] if rows and rows[0] else None
        return float(value or 0)

    def _reference_relation(self, m: Reference) -> str | None:
        other = next((p for p in self.products if p.ref == m.target_product), None)
        return self.target.reference(other) if other is not None else None

    def _with_sample(self, outcome: CheckOutcome) -> CheckOutcome:
        """Failing keys: from the scan for row checks, one small query for duplicates and references."""
        m = outcome.check.measure
        if isinstance(m, FailingRows):
            found = self.sampled.get(outcome.check.id, [])
        elif isinstance(m, Duplicates | Reference):
            target = self._reference_relation(m) if isinstance(m, Reference) else None
            sql = sample_sql(self.target.dialect, self.target.relation, outcome.check, self.keys, target)
            try:
                if sql not in self.sample_cache:  # `unique` and a duplicateValues rule often ask the same
                    self.sample_cache[sql] = [
                        "|".join("" if v is None else str(v) for v in r) for r in self._query(sql)
                    ]
                found = self.sample_cache[sql]
            except Exception as exc:
                self.notes.append(f"no sample for {outcome.check.id}: {type(exc).__name__}")
                return outcome
        else:
            return outcome
        shown = tuple(self._shown_key(key) for key in found)
        return CheckOutcome(outcome.check, outcome.status, outcome.measured, outcome.reason, shown)

    def _shown_key(self, key: str) -> str:
        """A key as the sample shows it: personal parts HMAC'd unless already stored hashed."""
        parts = key.split("|") if len(self.keys) > 1 else [key]
        shown = []
        for name, part in zip(self.keys, parts, strict=False):
            column = self.contract.column(name)
            hashed = self.target.masked and column.masking == "hash"
            shown.append(self.masker(part) if column.personal and not hashed else part)
        return "|".join(shown)
