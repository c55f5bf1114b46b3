"""Shared pieces of the CLI commands: settings from global flags, summary rendering."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from meshkit.config import Settings, load_settings


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    root = Path(args.root) if getattr(args, "root", None) else None
    return load_settings(root, overrides={"profile": getattr(args, "profile", None), **overrides})


def render_summary(summary: dict[str, Any]) -> str:
    """A run summary (RunSummary.to_dict()) as a few aligned lines for people."""
    lines = [f"{summary['product']}  run {summary['run_id']}  {summary['status']} in {summary['duration_seconds']}s"]
    lines.append(
        f"  events in {summary['events_in']:>9,}   dead letters {summary['dead_letters']:,}"
        f"   duplicates dropped {summary['duplicates_dropped']:,}"
    )
    for name, rows in summary["rows_written"].items():
        lines.append(f"  rows written  {name:<10} {rows:>9,}")
    for reason, count in summary["dead_letters_by_reason"].items():
        lines.append(f"  dead letter   {reason:<28} {count:>6,}")
    if summary.get("freshness_seconds") is not None:
        lines.append(f"  freshness     {summary['freshness_seconds']:,.1f}s since the newest source change")
    for name, where in summary["outputs"].items():
        lines.append(f"  output        {name:<10} {where}")
    return "\n".join(lines)
