"""The SLO status of the mesh: every product's objectives (from its contract) judged on its recorded runs.

One read of the metrics store serves every product, so the review of a thousand products stays fast.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover, find_product
from meshkit.products.model import DataProduct
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.budget import (
    MEASURED_IN,
    BurnRateAlert,
    ObservationSeries,
    WindowCounts,
    alerts_at,
    observations,
    rate,
    remaining,
    slo_window,
    window_label,
)
from monitoring.slo.derive import CONTRACT_TEST_SLI_METRICS, DerivationNote, derive_slos
from monitoring.slo.model import DEFAULT_BURN_RATE_WINDOWS, BurnRateWindow, Objective

State = Literal["ok", "at-risk", "exhausted", "no-data"]
STATES: tuple[State, ...] = ("ok", "at-risk", "exhausted", "no-data")
AT_RISK_REMAINING = 0.25  # below a quarter of the budget left, an objective is at risk


@dataclass(frozen=True)
class ObjectiveStatus:
    """An objective at `now`: SLI, budget, burn rates over the alert windows, alerts, and a state."""

    objective: Objective
    now: datetime
    counts: WindowCounts
    remaining_budget: float | None
    burn_rates: dict[str, float | None]  # long window label ("1h", "6h", "3d") -> burn rate
    alerts: tuple[BurnRateAlert, ...] = field(default=())

    @property
    def sli(self) -> float | None:
        return self.counts.sli

    @property
    def firing(self) -> tuple[BurnRateAlert, ...]:
        return tuple(a for a in self.alerts if a.firing)

    @property
    def state(self) -> State:
        """no-data without measurements; exhausted at or below zero budget; at-risk with an alert firing or
        less than a quarter of the budget left; else ok."""
        if self.remaining_budget is None:
            return "no-data"
        if self.remaining_budget <= 0:
            return "exhausted"
        if self.firing or self.remaining_budget < AT_RISK_REMAINING:
            return "at-risk"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        o = self.objective
        return {
            "objective": o.name,
            "kind": o.kind,
            "target": o.target,
            "window_days": o.window_days,
            "threshold_seconds": o.threshold_seconds,
            "source_property": o.source_property,
            "measured_in": MEASURED_IN[o.kind],
            "good": _rounded(self.counts.good),
            "total": _rounded(self.counts.total),
            "sli": _rounded(self.sli),
            "remaining_budget": _rounded(self.remaining_budget),
            "burn_rates": {label: _rounded(value) for label, value in self.burn_rates.items()},
            "alerts": [a.to_dict() for a in self.alerts],
            "state": self.state,
        }


def _rounded(value: float | None) -> float | None:
    """Nine decimals: enough for any target, without binary floating-point noise in JSON."""
    return None if value is None else round(value, 9)


def objective_status(
    objective: Objective,
    runs: Iterable[RunSummary],
    now: datetime,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> ObjectiveStatus:
    """Everything `meshkit slo status` and the review show for one objective."""
    series = ObservationSeries(observations(objective, runs, now))
    counts = series.window(now, slo_window(objective))
    return ObjectiveStatus(
        objective=objective,
        now=now,
        counts=counts,
        remaining_budget=remaining(counts, objective),
        burn_rates={
            window_label(w.long_window_minutes): rate(
                series.window(now, timedelta(minutes=w.long_window_minutes)), objective
            )
            for w in windows
        },
        alerts=alerts_at(objective, series, now, windows),
    )


@dataclass(frozen=True)
class ProductSlos:
    """One product's objectives at `now`, the notes on SLA entries that gave none, and its run count."""

    product: str
    statuses: tuple[ObjectiveStatus, ...]
    notes: tuple[DerivationNote, ...]
    runs: int
    error: str | None = None  # the contract could not be loaded or a run could not be read
    # the latest `meshkit test` SLIs measured on the data at rest: kind -> (when, ratio)
    at_rest: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def state(self) -> State:
        """The worst state of the product's objectives (no-data only when none has data)."""
        states = {s.state for s in self.statuses}
        worst: tuple[State, ...] = ("exhausted", "at-risk", "ok")
        return next((state for state in worst if state in states), "no-data")

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "state": self.state,
            "runs": self.runs,
            "objectives": [s.to_dict() for s in self.statuses],
            "notes": [{"property": n.sla_property, "reason": n.reason} for n in self.notes],
            "error": self.error,
            "at_rest": {kind: {"at": at, "sli": ratio} for kind, (at, ratio) in sorted(self.at_rest.items())},
        }


@dataclass(frozen=True)
class SloSummary:
    """Counts of objectives by state across the mesh, for the review's header line."""

    products: int
    objectives: int
    by_state: dict[str, int]
    firing: int

    @property
    def line(self) -> str:
        counts = ", ".join(f"{self.by_state.get(state, 0)} {state.replace('-', ' ')}" for state in STATES)
        alerts = f"; {self.firing} burn-rate alert{'s' if self.firing != 1 else ''} firing" if self.firing else ""
        return f"{self.objectives} objectives in {self.products} products: {counts}{alerts}"


def product_slos(product: DataProduct, runs: Iterable[RunSummary], now: datetime) -> ProductSlos:
    """A product's objectives judged at `now` on its runs; an unreadable contract becomes `error`."""
    mine = [r for r in runs if r.product == product.ref]
    try:
        derivation = derive_slos(product.contract, product.ref)
    except MeshkitError as exc:
        return ProductSlos(product.ref, (), (), len(mine), error=exc.message)
    try:
        statuses = tuple(objective_status(o, mine, now) for o in derivation.objectives)
    except ValueError as exc:  # a run with an unreadable timestamp
        return ProductSlos(product.ref, (), derivation.notes, len(mine), error=f"cannot read the runs: {exc}")
    return ProductSlos(product.ref, statuses, derivation.notes, len(mine))


def mesh_slos(settings: Settings, product: str | None = None, now: datetime | None = None) -> list[ProductSlos]:
    """The SLO status of every product under `settings.domains_dir` (or of one), from the metrics store."""
    when = now or datetime.now(UTC)
    products = [find_product(settings.domains_dir, product)] if product else discover(settings.domains_dir)
    store = MetricsStore(settings.metrics_path)
    runs = store.runs(product) if product else store.runs()
    judged = judge(products, runs, when)
    return [dataclasses.replace(p, at_rest=_at_rest(store, p.product)) for p in judged]


def _at_rest(store: MetricsStore, product: str) -> dict[str, tuple[str, float]]:
    """The newest validity and completeness `meshkit test` measured on the product's data at rest."""
    latest: dict[str, tuple[str, float]] = {}
    for kind, metric in CONTRACT_TEST_SLI_METRICS.items():
        points = store.points(product, metric)
        if points:
            latest[kind] = points[-1]
    return latest


def judge(products: Sequence[DataProduct], runs: Iterable[RunSummary], now: datetime) -> list[ProductSlos]:
    """Every product's objectives on runs of the whole mesh, grouped once."""
    by_product: dict[str, list[RunSummary]] = defaultdict(list)
    for run in runs:
        by_product[run.product].append(run)
    return [product_slos(p, by_product.get(p.ref, []), now) for p in products]


def summarize(products: Iterable[ProductSlos]) -> SloSummary:
    listed = list(products)
    statuses = [s for p in listed for s in p.statuses]
    return SloSummary(
        products=len(listed),
        objectives=len(statuses),
        by_state=dict(Counter(s.state for s in statuses)),
        firing=sum(len(s.firing) for s in statuses),
    )
