"""Shared pieces of the CLI commands: settings from global flags, summary rendering."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from meshkit.config import Settings, load_settings


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    root = Path(args.root) if getattr(args, "root", None) else None
    return load_settings(root, overrides={"profile": getattr(args, "profile", None), **overrides})


def duration(seconds: float) -> str:
    """`93784.5` -> `1 d 2 h 3 min`; under a minute, seconds with one decimal."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p)


def render_summary(summary: dict[str, Any]) -> str:
    """A run summary (RunSummary.to_dict()) as a few aligned lines for people."""
    lines = [f"{summary['product']}  run {summary['run_id']}  {summary['status']} in {summary['duration_seconds']}s"]
    lines.append(
        f"  events in {summary['events_in']:>9,}   dead letters {summary['dead_letters']:,}"
        f"   duplicates dropped {summary['duplicates_dropped']:,}   replayed {summary.get('replayed', 0):,}"
    )
    if summary.get("throughput_eps") is not None:
        merge = summary.get("merge_seconds")
        merge_text = f", warehouse MERGE {merge:.2f} s" if merge is not None else ""
        lag = sum(summary.get("lag_by_partition", {}).values())
        lag_text = f", {lag:,} events were waiting on the bus" if summary.get("lag_by_partition") else ""
        lines.append(f"  throughput    {summary['throughput_eps']:,.0f} events/s{merge_text}{lag_text}")
    for name, rows in summary["rows_written"].items():
        lines.append(f"  rows written  {name:<10} {rows:>9,}")
    reasons = sorted(summary["dead_letters_by_reason"].items(), key=lambda item: (-item[1], item[0]))
    if reasons:
        text = ", ".join(f"{reason} {count:,}" for reason, count in reasons)
        wrapped = textwrap.wrap(text, width=96, initial_indent="  dead letters  ", subsequent_indent=" " * 16)
        lines.extend(wrapped)
    if summary.get("freshness_seconds") is not None:
        lines.append(f"  freshness     {duration(summary['freshness_seconds'])} since the newest source change")
    for name, where in summary["outputs"].items():
        lines.append(f"  output        {name:<10} {where}")
    return "\n".join(lines)
