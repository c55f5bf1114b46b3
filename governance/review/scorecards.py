"""Scorecards of the review, per product and per domain: check counts, SLO state, cost, policy score.

Read from the one `Review` model, so the HTML, Markdown and JSON reports agree on every figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshkit.checks import Check, Status

if TYPE_CHECKING:
    from governance.review.report import ProductReview, Review

# worst first: a domain's SLO state is the worst of its products'
SLO_ORDER = ("exhausted", "at-risk", "ok", "no-data")


@dataclass(frozen=True)
class Scorecard:
    """Figures for one product or one domain."""

    name: str
    status: str
    passed: int
    warning: int
    failed: int
    slo_state: str  # ok, at-risk, exhausted, no-data, or "–" when no objective is measured
    monthly_cost: float | None  # from the cost section, when it landed
    policy_score: float | None  # share of policy checks passed, 0..1, when the policies section landed

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _counts(checks: Iterable[Check]) -> tuple[int, int, int]:
    statuses = [c.status for c in checks]
    failed = sum(s in (Status.FAILED, Status.ERROR) for s in statuses)
    return statuses.count(Status.PASSED), statuses.count(Status.WARNING), failed


def _costs(review: Review) -> dict[str, float]:
    """Monthly cost per product from the cost section's data (`products`: a list of
    {"product", "total_monthly_usd"} or a mapping ref -> number), when that section landed."""
    costs: dict[str, float] = {}
    for section in review.sections:
        if section.key != "cost":
            continue
        products = section.data.get("products") or {}
        items = products.items() if isinstance(products, dict) else ((p.get("product"), p) for p in products)
        for ref, entry in items:
            value = entry.get("total_monthly_usd", entry.get("monthly_total")) if isinstance(entry, dict) else entry
            if isinstance(ref, str) and isinstance(value, int | float):
                costs[ref] = float(value)
    return costs


def _policy_checks(review: Review, ref: str) -> tuple[Check, ...] | None:
    for section in review.sections:
        if section.key == "policies":
            return section.per_product.get(ref, ())
    return None


def _score(checks: tuple[Check, ...] | None) -> float | None:
    if not checks:
        return None
    return sum(c.status is Status.PASSED for c in checks) / len(checks)


def product_scorecard(review: Review, product: ProductReview, costs: dict[str, float]) -> Scorecard:
    passed, warning, failed = _counts(product.all_checks)
    slos = product.slos
    return Scorecard(
        name=product.ref,
        status=str(product.status),
        passed=passed,
        warning=warning,
        failed=failed + (1 if product.load_error else 0),
        slo_state=slos.state if slos is not None and slos.statuses else "–",
        monthly_cost=costs.get(product.ref),
        policy_score=_score(_policy_checks(review, product.ref)),
    )


def product_scorecards(review: Review) -> tuple[Scorecard, ...]:
    costs = _costs(review)
    return tuple(product_scorecard(review, p, costs) for p in review.products)


def domain_scorecards(review: Review) -> tuple[Scorecard, ...]:
    """One card per domain, summing its products' cards; status and SLO state are the worst."""
    by_domain: dict[str, list[Scorecard]] = defaultdict(list)
    refs: dict[str, list[str]] = defaultdict(list)
    for product, card in zip(review.products, product_scorecards(review), strict=True):
        by_domain[product.domain].append(card)
        refs[product.domain].append(product.ref)
    cards = []
    for domain, members in sorted(by_domain.items()):
        statuses = {c.status for c in members}
        status = next((s for s in ("failed", "warning") if s in statuses), "passed")
        slo_states = [c.slo_state for c in members if c.slo_state in SLO_ORDER]
        costs = [c.monthly_cost for c in members if c.monthly_cost is not None]
        policy_checks = [c for ref in refs[domain] for c in _policy_checks(review, ref) or ()]
        cards.append(
            Scorecard(
                name=domain,
                status=status,
                passed=sum(c.passed for c in members),
                warning=sum(c.warning for c in members),
                failed=sum(c.failed for c in members),
                slo_state=min(slo_states, key=SLO_ORDER.index) if slo_states else "–",
                monthly_cost=sum(costs) if costs else None,
                policy_score=_score(tuple(policy_checks)),
            )
        )
    return tuple(cards)
