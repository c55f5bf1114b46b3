"""The local profile's dashboard: per product, one point per run of freshness, throughput, dead letters
and error budget remaining, from the local metrics store, as one self-contained HTML page.

`build_dashboard` reads the store, the SLOs `monitoring.slo.derive` reads from each contract and the
budgets `monitoring.slo.budget` computes into an immutable `Dashboard`; `render_html` draws it with
`templates/dashboard.html.j2` (inline CSS and SVG, no scripts, everything escaped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment

from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover
from meshkit.products.model import DataProduct
from meshkit.templating import report_environment
from monitoring.dashboards.charts import ChartLayout, ChartSpec, Series, Threshold, format_value, layout_chart
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.budget import budget_over_time, parse_time
from monitoring.slo.model import Objective
from monitoring.slo.status import ProductSlos, SloSummary, product_slos, summarize

TEMPLATES_DIR = Path(__file__).parent / "templates"
DASHBOARD_FILE = "dashboard.html"
MAX_RUNS = 200  # runs drawn per product; budgets still count every run inside their window


@dataclass(frozen=True)
class ProductPanel:
    """One product's card: who owns it, where its alerts go, its SLOs now, and its charts."""

    ref: str
    owner: str | None
    support: str | None
    runs: int  # runs drawn
    failed_runs: int
    last_run: RunSummary | None
    charts: tuple[ChartLayout, ...]
    slos: ProductSlos | None  # None for a product the store knows but domains/ no longer has
    note: str | None = None


@dataclass(frozen=True)
class MeshFigures:
    """The header: totals over the runs the dashboard draws, and the SLOs' states now."""

    products: int
    products_run: int
    runs: int
    failed_runs: int
    events_in: int
    rows_written: int
    dead_letters: int
    dead_letter_share: float | None  # percent of events in
    slos: SloSummary


@dataclass(frozen=True)
class Dashboard:
    generated_at: str
    source: str  # how the header names the metrics store
    max_runs: int
    totals: MeshFigures
    products: tuple[ProductPanel, ...]


# --- series: one point per run, at the run's end ---

RunFigure = Callable[[RunSummary], float | None]


def _series(label: str, runs: Sequence[RunSummary], figure: RunFigure) -> Series:
    points = ((r.ended_at or r.started_at, figure(r)) for r in runs)
    return Series(label, tuple((ts, float(v)) for ts, v in points if v is not None))


def _dead_letter_share(run: RunSummary) -> float | None:
    return 100.0 * run.dead_letters / run.events_in if run.events_in else None


def product_charts(
    runs: Sequence[RunSummary], objectives: Sequence[Objective], budgets: Mapping[str, Sequence[tuple[str, float]]]
) -> tuple[ChartSpec, ...]:
    """A product's six charts from its runs (oldest first), its SLOs and each SLO's remaining budget
    (share, 1.0 = untouched) by time."""
    freshness = next((o for o in objectives if o.kind == "freshness"), None)
    validity = next((o for o in objectives if o.kind == "validity"), None)
    latency = freshness.threshold_seconds if freshness else None
    return (
        ChartSpec(
            "freshness",
            "Freshness",
            "seconds",
            (
                _series("largest lag in run", runs, lambda r: r.max_source_lag_seconds),
                _series("at run end", runs, lambda r: r.freshness_seconds),
            ),
            threshold=Threshold("contract latency", latency) if latency is not None else None,
            empty_text="No source timestamps in these runs.",
            note="lag: commit − source timestamp; at run end: now − newest source timestamp",
        ),
        ChartSpec("events_in", "Events in per run", "count", (_series("events", runs, lambda r: r.events_in),), "bar"),
        ChartSpec("throughput", "Throughput", "rate", (_series("events/s", runs, lambda r: r.throughput_eps),)),
        ChartSpec(
            "dead_letters", "Dead letters per run", "count", (_series("events", runs, lambda r: r.dead_letters),), "bar"
        ),
        ChartSpec(
            "dead_letter_share",
            "Dead-letter share",
            "percent",
            (_series("of events in", runs, _dead_letter_share),),
            threshold=Threshold("allowed", 100 * validity.error_budget) if validity else None,
        ),
        ChartSpec(
            "error_budget",
            "Error budget remaining",
            "percent",
            tuple(Series(o.kind, tuple((ts, 100 * v) for ts, v in budgets.get(o.name, ()))) for o in objectives),
            ceiling=100.0,
            clip_below=-100.0,  # an overspent budget can reach -10,000 %; the table has the figure
            empty_text="No SLO in the contract." if not objectives else "No measurement in the SLO windows yet.",
            note=", ".join(f"{o.kind} {o.target:.2%} over {o.window_days} d" for o in objectives) or None,
        ),
    )


# --- the dashboard ---


def _support(product: DataProduct) -> str | None:
    """The support channels of dataproduct.yaml (ODPS `support`), where the product's alerts go."""
    entries = getattr(product.descriptor, "support", None) or []
    channels = [str(e.get("channel")) for e in entries if isinstance(e, dict) and e.get("channel")]
    return ", ".join(channels) or None


def _panel(ref: str, product: DataProduct | None, runs: list[RunSummary], max_runs: int, now: datetime) -> ProductPanel:
    """A product's card; `runs` are all its recorded runs, oldest first (budgets need the whole window)."""
    owner = support = note = slos = None
    if product is None:
        note = "Recorded in the metrics store, but no product directory exists under domains/ any more."
    else:
        try:
            owner, support = product.descriptor.owner, _support(product)
        except MeshkitError as exc:
            note = f"Cannot load the product descriptor: {exc.message}"
        slos = product_slos(product, runs, now)
    objectives: list[Objective] = [s.objective for s in slos.statuses] if slos else []
    shown = runs[-max_runs:]
    charts: tuple[ChartLayout, ...] = ()
    if shown:
        since = parse_time(shown[0].ended_at)
        budgets = {
            o.name: [(ts, left) for ts, left in budget_over_time(o, runs) if parse_time(ts) >= since]
            for o in objectives
        }
        charts = tuple(layout_chart(spec) for spec in product_charts(shown, objectives, budgets))
    return ProductPanel(
        ref=ref,
        owner=owner,
        support=support,
        runs=len(shown),
        failed_runs=sum(r.status != "completed" for r in shown),
        last_run=shown[-1] if shown else None,
        charts=charts,
        slos=slos,
        note=note,
    )


def _totals(panels: Sequence[ProductPanel], runs: Sequence[RunSummary]) -> MeshFigures:
    events_in = sum(r.events_in for r in runs)
    dead_letters = sum(r.dead_letters for r in runs)
    return MeshFigures(
        products=len(panels),
        products_run=sum(p.runs > 0 for p in panels),
        runs=len(runs),
        failed_runs=sum(r.status != "completed" for r in runs),
        events_in=events_in,
        rows_written=sum(sum(r.rows_written.values()) for r in runs),
        dead_letters=dead_letters,
        dead_letter_share=100.0 * dead_letters / events_in if events_in else None,
        slos=summarize(p.slos for p in panels if p.slos is not None),
    )


def default_source(settings: Settings) -> str:
    """The metrics store's path as the header names it: relative to the project root when inside it."""
    path, root = settings.metrics_path.resolve(), settings.root.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def build_dashboard(
    settings: Settings, max_runs: int = MAX_RUNS, source: str | None = None, now: datetime | None = None
) -> Dashboard:
    """Every product under domains/ (and any other product the store holds runs of), its newest
    `max_runs` runs drawn. `source` names the store in the header (default: its path); `now` is the
    moment the SLO states are computed for (default: the clock)."""
    now = now or datetime.now(UTC)
    store = MetricsStore(settings.metrics_path)
    products = {p.ref: p for p in discover(settings.domains_dir)}
    panels: list[ProductPanel] = []
    drawn: list[RunSummary] = []
    for ref in sorted(products.keys() | store.latest_by_product().keys()):
        runs = store.runs(ref)[::-1]  # oldest first, as charts and budgets read
        panels.append(_panel(ref, products.get(ref), runs, max_runs, now))
        drawn.extend(runs[-max_runs:])
    return Dashboard(
        generated_at=now.isoformat(timespec="seconds"),
        source=source if source is not None else default_source(settings),
        max_runs=max_runs,
        totals=_totals(panels, drawn),
        products=tuple(panels),
    )


def _when(timestamp: str) -> str:
    return parse_time(timestamp).strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def _environment() -> Environment:
    return report_environment(
        TEMPLATES_DIR,
        {
            "thousands": lambda n: f"{n:,}",
            "value": format_value,
            "when": _when,
            "rate": lambda r: "–" if r is None else f"{format_value(r, 'count')}×",
        },
    )


def render_html(dashboard: Dashboard) -> str:
    """The self-contained page."""
    return _environment().get_template("dashboard.html.j2").render(dashboard=dashboard)


def write_dashboard(
    settings: Settings, out: Path | None = None, max_runs: int = MAX_RUNS, source: str | None = None
) -> Path:
    """Write the dashboard to `out` (default: `<reports_dir>/dashboard.html`) and return its path."""
    target = out or settings.reports_dir / DASHBOARD_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(build_dashboard(settings, max_runs, source)), encoding="utf-8")
    return target
