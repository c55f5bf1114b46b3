"""`meshkit demo`: the whole mesh end to end on the local profile, then the review report."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from meshkit.cli._common import render_summary, settings_from

if TYPE_CHECKING:
    from pipelines.demo_postgres import PostgresDemoResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=3000, help="change events simulated per source product")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (same seed, same feeds)")
    parser.add_argument("--workspace", default=None, help="where the local profile keeps its state (default .meshkit)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="skip running customers/users a second time from a local PostgreSQL (logical replication)",
    )


def run(args: argparse.Namespace) -> int:
    from governance.review.report import build_review, write_review
    from monitoring.dashboards.local import write_dashboard
    from monitoring.lineage.render import write_lineage_page
    from pipelines.demo import run_demo

    settings = settings_from(args, workspace=args.workspace)
    result = run_demo(settings, events=args.events, seed=args.seed, postgres=not args.no_postgres)
    reports = write_review(build_review(settings), settings.reports_dir)
    reports["lineage"] = write_lineage_page(settings, column="cpf")
    reports["dashboard"] = write_dashboard(settings)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "published": result.published,
                    "runs": [s.to_dict() for s in result.summaries],
                    "reports": {k: str(v) for k, v in reports.items()},
                    "lineage": str(settings.lineage_path),
                    "postgres": _postgres_json(result.postgres, result.postgres_skipped),
                },
                indent=2,
            )
        )
        return 0
    for summary in result.summaries:
        published = result.published.get(summary.product)
        if published is not None:
            print(f"relayed {published:,} simulated change-feed items into the event log for {summary.product}")
        print(render_summary(summary.to_dict()))
        print()
    postgres_line = _postgres_line(result.postgres, result.postgres_skipped)
    if postgres_line:
        print(postgres_line)
        print()
    print(f"Lineage events (OpenLineage NDJSON): {settings.lineage_path}")
    print(f"Run metrics (SQLite):                {settings.metrics_path}")
    print(f"Warehouse (DuckDB, stands in for BigQuery): {settings.warehouse_path}")
    print(f"Review report (HTML):     {reports['html']}")
    print(f"Review report (Markdown): {reports['markdown']}")
    print(f"Lineage graph (cpf's path highlighted): {reports['lineage']}")
    print(f"Dashboard (freshness, throughput, dead letters, error budgets): {reports['dashboard']}")
    print("SLO status: meshkit slo status")
    print(f"\nOpen the review: {reports['html'].resolve().as_uri()}")
    return 0


def _postgres_line(pg: PostgresDemoResult | None, skipped: str | None) -> str | None:
    """The PostgreSQL part in one line (with the warehouse it wrote), or why it was skipped."""
    if pg is None:
        if skipped is None:
            return None  # --no-postgres
        return f"PostgreSQL not found: skipped (install postgresql to see the second source; {skipped})"
    verdict = (
        f"current state equals the PostgreSQL table ({pg.rows_in_current:,} rows)"
        if pg.equal
        else f"current state DIFFERS from the PostgreSQL table, e.g. {'; '.join(pg.differences[:2])}"
    )
    return (
        f"customers/users from PostgreSQL (logical replication): {pg.snapshot_rows + pg.changes_relayed:,} changes "
        f"relayed ({pg.snapshot_rows:,} snapshot rows, then {pg.changes_relayed:,} streamed), {verdict}\n"
        f"  warehouse of that run: {pg.warehouse_path}"
    )


def _postgres_json(pg: PostgresDemoResult | None, skipped: str | None) -> dict[str, Any] | None:
    if pg is None:
        return {"skipped": skipped} if skipped else None
    return {
        "rowsInPostgres": pg.rows_in_postgres,
        "snapshotRows": pg.snapshot_rows,
        "changesRelayed": pg.changes_relayed,
        "eventsIn": pg.events_in,
        "rowsInCurrent": pg.rows_in_current,
        "equal": pg.equal,
        "differences": list(pg.differences),
        "warehouse": str(pg.warehouse_path),
        "seconds": pg.seconds,
    }
