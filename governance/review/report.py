"""The governance review: every product's contract, masking, validation findings, last run, SLOs and lineage.

`build_review` gathers one immutable `Review` from what the other parts produce (validation checks,
the metrics store, the product graph); `write_review` renders it with the Jinja2 templates beside
this module into one self-contained HTML file and a Markdown summary for pull-request comments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from governance.review import filters
from governance.review.scorecards import domain_scorecards, product_scorecards
from governance.review.sections import ReviewContext, ReviewSection
from meshkit.checks import Check, CheckRun, Status
from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover, lineage_edges
from meshkit.products.model import DataProduct
from meshkit.templating import report_environment
from monitoring.lineage.graph import LineageGraph, build_graph, load_graph
from monitoring.lineage.layout import GraphLayout, View, layout
from monitoring.lineage.render import mermaid, product_view, svg
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.derive import human_duration
from monitoring.slo.status import ProductSlos, SloSummary, judge, summarize

TEMPLATES_DIR = Path(__file__).parent / "templates"
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
    section_checks: tuple[Check, ...] = ()  # what the sections (policies, diff, cost, access) say of it

    @property
    def all_checks(self) -> tuple[Check, ...]:
        return (*self.checks, *self.section_checks)

    @property
    def status(self) -> Status:
        """failed when a check failed or errored (or the product cannot load), warning, else passed."""
        checks = self.all_checks
        if self.load_error or any(c.status in (Status.FAILED, Status.ERROR) for c in checks):
            return Status.FAILED
        return Status.WARNING if any(c.status is Status.WARNING for c in checks) else Status.PASSED

    @property
    def findings(self) -> tuple[Check, ...]:
        """Validation checks worth a reader's attention (everything that did not pass)."""
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
    sections: tuple[ReviewSection, ...] = ()  # policies, diff, cost, access: in provider order
    base_revision: str | None = None

    @property
    def all_checks(self) -> tuple[Check, ...]:
        """Every check once: mesh-wide and provider notes, validation, then each section's."""
        return (
            *self.mesh_checks,
            *(c for p in self.products for c in p.checks),
            *(c for s in self.sections for c in s.checks),
        )

    @property
    def ok(self) -> bool:
        """False when any check failed or errored."""
        return CheckRun(list(self.all_checks)).ok


def build_review(
    settings: Settings,
    validation: CheckRun | None = None,
    now: datetime | None = None,
    *,
    base_revision: str | None = None,
    providers: Sequence[str] | None = None,
) -> Review:
    """Review every product under `settings.domains_dir`; runs validation unless `validation` is given.
    SLO budgets are judged at `now` (default: the current time); `providers` default to the
    module paths in governance.review.providers."""
    from governance.review.providers import PROVIDERS, collect_sections

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
    context = ReviewContext(settings, tuple(products), when.date(), base_revision)
    collected = collect_sections(context, PROVIDERS if providers is None else providers)
    mesh_checks.extend(collected.checks)
    reviews = tuple(_with_sections(r, collected.sections) for r in reviews)
    return Review(
        generated_at=when.isoformat(timespec="seconds"),
        products=reviews,
        edges=edges,
        mesh_checks=tuple(mesh_checks),
        totals=_totals(reviews, [*mesh_checks, *(c for s in collected.sections for c in s.checks)]),
        lineage=load_graph(settings.lineage_path) if settings.lineage_path.is_file() else None,
        slo_summary=summarize(slos),
        sections=collected.sections,
        base_revision=base_revision,
    )


def _with_sections(review: ProductReview, sections: tuple[ReviewSection, ...]) -> ProductReview:
    checks = tuple(c for s in sections for c in s.per_product.get(review.ref, ()))
    return replace(review, section_checks=checks) if checks else review


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
        shown, ref = _locate(check.file, root, domains)
        check = replace(check, file=shown)  # noqa: PLW2901 - the same check, with a readable path
        (by_product[ref] if ref in known else rest).append(check)
    return by_product, rest


@cache
def _locate(file: str, root: Path, domains: Path) -> tuple[str, str]:
    """(root-relative path, product ref or ""), resolved once per distinct file."""
    path = Path(file)
    path = (path if path.is_absolute() else root / path).resolve()
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else file
    parts = path.relative_to(domains).parts if path.is_relative_to(domains) else ()
    return shown, "/".join(parts[:2]) if len(parts) >= 2 else ""


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


@cache
def _environment() -> Environment:
    """HTML templates (`*.html.j2`) autoescape; the Markdown template escapes through the `md` filter."""
    return report_environment(
        TEMPLATES_DIR,
        {
            "md": filters.markdown_cell,
            "duration": filters.duration,
            "thousands": lambda n: f"{n:,}",
            "percent": filters.percent,
            "burn": filters.burn,
            "measured": filters.measured,
            "threshold": human_duration,
            "money": filters.money,
            "score": filters.score,
        },
    )


def render_html(review: Review) -> str:
    """The self-contained HTML page (inline CSS and SVG, no scripts, everything escaped)."""
    picture: Markup = svg(lineage_graph(review))
    return (
        _environment()
        .get_template("review.html.j2")
        .render(
            review=review,
            lineage_svg=picture,
            product_cards=product_scorecards(review),
            domain_cards=domain_scorecards(review),
        )
    )


def render_markdown(review: Review) -> str:
    """A pull-request comment: one summary table of products, then each product's findings."""
    view = lineage_view(review)
    diagram = mermaid(view) if len(view.nodes) <= MERMAID_MAX_NODES else None
    return (
        _environment()
        .get_template("review.md.j2")
        .render(review=review, lineage_mermaid=diagram, domain_cards=domain_scorecards(review))
    )


def write_review(review: Review, out_dir: Path, formats: Sequence[str] | None = None) -> dict[str, Path]:
    """Write the review into `out_dir` in `formats` (names of governance.review.formats.FORMATS;
    default all); returns {"html": path, "markdown": path, "json": …, "junit": …, "sarif": …}."""
    from governance.review.formats import FORMATS, write_formats

    return write_formats(review, out_dir, tuple(FORMATS) if formats is None else formats)
