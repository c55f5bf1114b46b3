"""The governance review: every product's contract, masking, validation findings, last run, SLOs and lineage.

`build_review` gathers one immutable `Review` from what the other parts produce (validation checks,
the metrics store, the product graph); `write_review` renders it with the Jinja2 templates beside
this module into one self-contained HTML file and a Markdown summary for pull-request comments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from meshkit.checks import Check, CheckRun, Status
from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover, lineage_edges
from meshkit.products.model import DataProduct
from monitoring.lineage.graph import LineageGraph, build_graph, load_graph
from monitoring.lineage.layout import GraphLayout, View, layout
from monitoring.lineage.render import mermaid, product_view, svg
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.budget import MEASURED_IN
from monitoring.slo.derive import human_duration
from monitoring.slo.status import ObjectiveStatus, ProductSlos, SloSummary, judge, summarize

TEMPLATES_DIR = Path(__file__).parent / "templates"
HTML_FILE = "review.html"
MARKDOWN_FILE = "review.md"
# beyond this many boxes a Mermaid block is too big for a pull-request comment to render
MERMAID_MAX_NODES = 120


@dataclass(frozen=True)
class MaskedColumn:
    """A personal column and how the pipeline masks it outside the raw zone."""

    name: str
    classification: str | None
    masking: str


@dataclass(frozen=True)
class ProductReview:
    """Everything the review says about one product."""

    ref: str
    domain: str
    name: str
    owner: str | None
    lifecycle: str | None
    contract_id: str | None
    contract_version: str | None
    description: str | None
    column_count: int
    personal_columns: tuple[MaskedColumn, ...]
    checks: tuple[Check, ...]
    last_run: RunSummary | None
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    load_error: str | None = None
    slos: ProductSlos | None = None  # objectives from the contract's SLA, judged on the recorded runs

    @property
    def status(self) -> Status:
        """failed when a check failed or errored (or the product cannot load), warning, else passed."""
        if self.load_error or any(c.status in (Status.FAILED, Status.ERROR) for c in self.checks):
            return Status.FAILED
        return Status.WARNING if any(c.status is Status.WARNING for c in self.checks) else Status.PASSED

    @property
    def findings(self) -> tuple[Check, ...]:
        """Checks worth a reader's attention (everything that did not pass)."""
        return tuple(c for c in self.checks if c.status is not Status.PASSED)


@dataclass(frozen=True)
class MeshTotals:
    """Figures for the header of the review."""

    products: int
    domains: int
    passed: int
    warning: int
    failed: int
    checks_failed: int
    checks_warning: int
    personal_columns: int
    products_run: int
    events_in: int
    rows_written: int
    dead_letters: int


@dataclass(frozen=True)
class Review:
    """One review of the whole mesh at `generated_at`."""

    generated_at: str
    products: tuple[ProductReview, ...]
    edges: tuple[tuple[str, str], ...]
    mesh_checks: tuple[Check, ...]  # findings that belong to no single product
    totals: MeshTotals
    lineage: LineageGraph | None = None  # from the OpenLineage events, when any were emitted
    slo_summary: SloSummary | None = None  # objectives by state across the mesh (information, not a gate)

    @property
    def ok(self) -> bool:
        """False when any validation check failed or errored."""
        checks = [*self.mesh_checks, *(c for p in self.products for c in p.checks)]
        return CheckRun(checks).ok


def build_review(settings: Settings, validation: CheckRun | None = None, now: datetime | None = None) -> Review:
    """Review every product under `settings.domains_dir`; runs validation unless `validation` is given.
    SLO budgets are judged at `now` (default: the current time)."""
    if validation is None:
        from governance.validation.products import validate

        validation = validate([], settings)
    products = discover(settings.domains_dir)
    by_product, mesh_checks = _group_checks(validation.checks, products, settings)
    edges = tuple(lineage_edges(products))
    upstream: dict[str, list[str]] = defaultdict(list)
    downstream: dict[str, list[str]] = defaultdict(list)
    for up, down in edges:
        upstream[down].append(up)
        downstream[up].append(down)
    when = now or datetime.now(UTC)
    store = MetricsStore(settings.metrics_path)
    last_runs = store.latest_by_product()
    slos = judge(products, store.runs(), when)  # one read of the store for every product
    reviews = tuple(
        _product_review(
            p,
            tuple(by_product.get(p.ref, ())),
            last_runs.get(p.ref),
            tuple(sorted(upstream[p.ref])),
            tuple(sorted(downstream[p.ref])),
            product_slos,
        )
        for p, product_slos in zip(products, slos, strict=True)
    )
    return Review(
        generated_at=when.isoformat(timespec="seconds"),
        products=reviews,
        edges=edges,
        mesh_checks=tuple(mesh_checks),
        totals=_totals(reviews, mesh_checks),
        lineage=load_graph(settings.lineage_path) if settings.lineage_path.is_file() else None,
        slo_summary=summarize(slos),
    )


def _group_checks(
    checks: list[Check], products: list[DataProduct], settings: Settings
) -> tuple[dict[str, list[Check]], list[Check]]:
    """Checks by the product directory their file lies in (paths made root-relative), and the rest."""
    root = settings.root.resolve()
    domains = settings.domains_dir.resolve()
    known = {p.ref for p in products}
    by_product: dict[str, list[Check]] = defaultdict(list)
    rest: list[Check] = []
    for check in checks:
        if not check.file:
            rest.append(check)
            continue
        path = Path(check.file)
        path = (path if path.is_absolute() else root / path).resolve()
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else check.file
        check = replace(check, file=shown)  # noqa: PLW2901 - the same check, with a readable path
        parts = path.relative_to(domains).parts if path.is_relative_to(domains) else ()
        ref = "/".join(parts[:2]) if len(parts) >= 2 else ""
        (by_product[ref] if ref in known else rest).append(check)
    return by_product, rest


def _description(product: DataProduct) -> str | None:
    odcs_description = product.contract.odcs.description
    if odcs_description is not None and odcs_description.purpose:
        return odcs_description.purpose.strip()
    extra = getattr(product.descriptor, "description", None)
    purpose = extra.get("purpose") if isinstance(extra, dict) else None
    return str(purpose).strip() if purpose else None


def _product_review(
    product: DataProduct,
    checks: tuple[Check, ...],
    last_run: RunSummary | None,
    upstream: tuple[str, ...],
    downstream: tuple[str, ...],
    slos: ProductSlos | None = None,
) -> ProductReview:
    fields: dict[str, Any] = {
        "slos": slos,
        "ref": product.ref,
        "domain": product.domain,
        "name": product.name,
        "checks": checks,
        "last_run": last_run,
        "upstream": upstream,
        "downstream": downstream,
        "owner": None,
        "lifecycle": None,
        "contract_id": None,
        "contract_version": None,
        "description": None,
        "column_count": 0,
        "personal_columns": (),
    }
    try:
        descriptor = product.descriptor
        fields.update(owner=descriptor.owner, lifecycle=descriptor.status)
        contract = product.contract
        fields.update(
            contract_id=contract.id,
            contract_version=contract.version,
            description=_description(product),
            column_count=len(contract.columns),
            personal_columns=tuple(
                MaskedColumn(c.name, c.classification, c.masking) for c in contract.personal_columns
            ),
        )
    except MeshkitError as exc:
        fields["load_error"] = exc.message  # validation reports it in detail; the card says it briefly
    return ProductReview(**fields)


def _totals(products: tuple[ProductReview, ...], mesh_checks: list[Check]) -> MeshTotals:
    checks = [*mesh_checks, *(c for p in products for c in p.checks)]
    runs = [p.last_run for p in products if p.last_run is not None]
    statuses = [p.status for p in products]
    return MeshTotals(
        products=len(products),
        domains=len({p.domain for p in products}),
        passed=statuses.count(Status.PASSED),
        warning=statuses.count(Status.WARNING),
        failed=statuses.count(Status.FAILED),
        checks_failed=sum(c.status in (Status.FAILED, Status.ERROR) for c in checks),
        checks_warning=sum(c.status is Status.WARNING for c in checks),
        personal_columns=sum(len(p.personal_columns) for p in products),
        products_run=len(runs),
        events_in=sum(r.events_in for r in runs),
        rows_written=sum(sum(r.rows_written.values()) for r in runs),
        dead_letters=sum(r.dead_letters for r in runs),
    )


def lineage_view(review: Review) -> View:
    """Products (coloured by review status) and the sources they read, from the lineage events;
    port edges that no event shows yet are added, so a mesh that never ran still has its picture."""
    graph = review.lineage or build_graph([])
    return product_view(graph, {p.ref: str(p.status) for p in review.products}, review.edges)


def lineage_graph(review: Review) -> GraphLayout:
    """The product-level lineage picture, laid out by monitoring.lineage's one renderer."""
    return layout(lineage_view(review))


def _markdown_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: no HTML, no column breaks, one line."""
    text = "" if value is None else str(value)
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return " ".join(text.split())


def _percent(share: float | None, digits: int = 1) -> str:
    """`0.995` -> `99.5%`; targets keep their significant digits (`digits=-1`), None is a dash."""
    if share is None:
        return "–"
    if digits < 0:
        return f"{share * 100:.3f}".rstrip("0").rstrip(".") + "%"
    return f"{share * 100:.{digits}f}%"


def _measured(status: ObjectiveStatus) -> str:
    """Good / total in the objective's own unit: runs, events, or time for the frequency SLI."""
    counts = status.counts
    if not counts.total:
        return "–"
    unit = MEASURED_IN[status.objective.kind]
    if unit == "seconds":
        return f"{_duration(counts.good)} / {_duration(counts.total)}"
    return f"{counts.good:,.0f} / {counts.total:,.0f} {unit}"


def _burn(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1f}x"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


@cache
def _environment() -> Environment:
    """HTML templates (`*.html.j2`) autoescape; the Markdown template escapes through the `md` filter."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _markdown_cell
    env.filters["duration"] = _duration
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["percent"] = _percent
    env.filters["burn"] = _burn
    env.filters["measured"] = _measured
    env.filters["threshold"] = human_duration
    return env


def render_html(review: Review) -> str:
    """The self-contained HTML page (inline CSS and SVG, no scripts, everything escaped)."""
    picture: Markup = svg(lineage_graph(review))
    return _environment().get_template("review.html.j2").render(review=review, lineage_svg=picture)


def render_markdown(review: Review) -> str:
    """A pull-request comment: one summary table of products, then each product's findings."""
    view = lineage_view(review)
    diagram = mermaid(view) if len(view.nodes) <= MERMAID_MAX_NODES else None
    return _environment().get_template("review.md.j2").render(review=review, lineage_mermaid=diagram)


def write_review(review: Review, out_dir: Path) -> dict[str, Path]:
    """Write review.html and review.md into `out_dir`; returns {"html": path, "markdown": path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / HTML_FILE, "markdown": out_dir / MARKDOWN_FILE}
    paths["html"].write_text(render_html(review), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(review), encoding="utf-8")
    return paths
