"""`meshkit demo`: the whole mesh end to end on the local profile, then the review report."""

from __future__ import annotations

import argparse
import json

from meshkit.cli._common import render_summary, settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=3000, help="change events simulated per source product")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (same seed, same feeds)")
    parser.add_argument("--workspace", default=None, help="where the local profile keeps its state (default .meshkit)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from governance.review.report import build_review, write_review
    from monitoring.dashboards.local import write_dashboard
    from monitoring.lineage.render import write_lineage_page
    from pipelines.demo import run_demo

    settings = settings_from(args, workspace=args.workspace)
    result = run_demo(settings, events=args.events, seed=args.seed)
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
