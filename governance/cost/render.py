"""`meshkit cost` output: text, JSON and Markdown renderings of one `MeshCost` and its scenario."""

from __future__ import annotations

import json

from governance.cost.model import MeshCost, ProductCost
from governance.cost.scenario import compare_with_sftp

SERVICES = ("cosmos", "eventhubs", "network", "dataflow", "gcs", "bigquery", "monitoring")


def product_rows(mesh: MeshCost) -> list[tuple[str, ...]]:
    """One row per product: cost per service, total, monitoring share and its flag."""
    rows = []
    for p in mesh.products:
        by = p.by_service()
        flag = "OVER BUDGET" if p.monitoring_share > mesh.budget_share else "ok"
        rows.append(
            (
                p.product,
                *(f"{by.get(s, 0.0):,.2f}" for s in SERVICES),
                f"{p.total:,.2f}",
                f"{p.monitoring_share:.1%}",
                flag,
            )
        )
    return rows


COLUMNS = ("product", *SERVICES, "total", "monitoring share", "budget")


def _items(p: ProductCost) -> list[str]:
    return [
        f"    {i.service:<10} {i.item:<32} {i.quantity:>14,.3f} {i.unit:<10} x {i.unit_price:<9g}"
        f" = {i.monthly_usd:>9,.2f}   {i.basis}"
        for i in p.items
    ]


def render_text(mesh: MeshCost, details: bool = True) -> str:
    cur = mesh.prices.currency
    lines = [f"Monthly cost estimate ({cur}, price table {mesh.prices.version}: {mesh.prices.path}) — list prices"]
    for p in mesh.products:
        v = p.volume
        lines.append(
            f"\n{p.product}  [{v.mode}]  {v.events_per_day:,.0f} changes/day ({v.events_origin}), "
            f"{v.event_bytes:,.0f} B/event ({v.bytes_origin})"
        )
        if details:
            lines.extend(_items(p))
        share = f"{p.monitoring_share:.1%}"
        flag = f"  OVER the {mesh.budget_share:.0%} monitoring budget" if p.monitoring_share > mesh.budget_share else ""
        lines.append(f"  total {p.total:,.2f} {cur}/month, monitoring {p.monitoring:,.2f} ({share}){flag}")
    lines.append(f"\nmesh total {mesh.total:,.2f} {cur}/month, monitoring {mesh.monitoring:,.2f}")
    scenario = compare_with_sftp(mesh)
    lines.append("\nScenario                                        cost/month  freshness")
    lines.extend(f"  {r.option:<45} {r.monthly_usd:>10,.2f}  {r.freshness}" for r in scenario.rows)
    lines.append(scenario.summary)
    return "\n".join(lines)


def render_markdown(mesh: MeshCost) -> str:
    cur = mesh.prices.currency
    out = [f"## Monthly cost estimate ({cur}, list prices, table {mesh.prices.version})", ""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "---|" * len(COLUMNS))
    out.extend("| " + " | ".join(row) + " |" for row in product_rows(mesh))
    out.append(f"\nMesh total: **{mesh.total:,.2f} {cur}/month** (monitoring {mesh.monitoring:,.2f}).\n")
    scenario = compare_with_sftp(mesh)
    out.append("| option | cost/month | freshness | source locking | operational effort |")
    out.append("|---|---|---|---|---|")
    out.extend(
        f"| {r.option} | {r.monthly_usd:,.2f} | {r.freshness} | {r.source_locking} | {r.operational_effort} |"
        for r in scenario.rows
    )
    out.append(f"\n{scenario.summary}")
    return "\n".join(out)


def render_json(mesh: MeshCost) -> str:
    return json.dumps({**mesh.to_dict(), "scenario": compare_with_sftp(mesh).to_dict()}, indent=2)
