"""The review's "cost" section: the per-product table, and a warning per product whose monitoring
spend exceeds its budget share."""

from __future__ import annotations

from governance.cost import estimate_cost
from governance.cost.render import COLUMNS, product_rows
from governance.cost.scenario import compare_with_sftp
from governance.review.sections import ReviewContext, ReviewSection, ReviewTable
from meshkit.checks import Check, Severity, Status

RULE = "cost.monitoring-budget"
VOLUME_RULE = "cost.volume-unknown"


def review_section(context: ReviewContext) -> ReviewSection:
    mesh = estimate_cost(context.settings, context.products)
    files = {p.ref: str(p.contract_path) for p in context.products}
    per_product: dict[str, tuple[Check, ...]] = {}
    for p in mesh.over_budget():
        per_product[p.product] = (
            Check(
                rule=RULE,
                status=Status.WARNING,
                reason=(
                    f"{p.product}: monitoring is {p.monitoring_share:.1%} of its estimated monthly cost "
                    f"({p.monitoring:,.2f} of {p.total:,.2f} {mesh.prices.currency}), above the "
                    f"{mesh.budget_share:.0%} budget"
                ),
                file=files.get(p.product),
                hint="Drop labels or series it does not need, lengthen the write interval, or accept the share "
                "in the product's slo.yaml.",
                severity=Severity.WARNING,
            ),
        )
    for p in mesh.products:
        if p.volume.events_per_day == 0:  # no silent zero: say the estimate has no volume behind it
            unknown = Check(
                rule=VOLUME_RULE,
                status=Status.WARNING,
                reason=f"{p.product}: no volume to price ({p.volume.events_origin})",
                file=files.get(p.product),
                hint="Set expectedChangesPerDay on the contract's source server, or run the product once.",
                severity=Severity.WARNING,
            )
            per_product[p.product] = (*per_product.get(p.product, ()), unknown)
    scenario = compare_with_sftp(mesh)
    return ReviewSection(
        key="cost",
        title="Cost",
        summary=(
            f"Estimated {mesh.total:,.2f} {mesh.prices.currency}/month for {len(mesh.products)} products "
            f"(list prices, table {mesh.prices.version}); monitoring {mesh.monitoring:,.2f}. "
            f"{len(mesh.over_budget())} over the {mesh.budget_share:.0%} monitoring budget. {scenario.summary}"
        ),
        checks=tuple(c for checks in per_product.values() for c in checks),
        per_product=per_product,
        tables=(
            ReviewTable(COLUMNS, tuple(product_rows(mesh))),
            ReviewTable(
                ("option", "cost/month", "freshness", "source locking", "operational effort"),
                tuple(
                    (r.option, f"{r.monthly_usd:,.2f}", r.freshness, r.source_locking, r.operational_effort)
                    for r in scenario.rows
                ),
            ),
        ),
        data={**mesh.to_dict(), "scenario": scenario.to_dict()},
    )
