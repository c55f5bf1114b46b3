"""`meshkit dashboard`: write the local dashboard (freshness, throughput, dead letters, error budgets)."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshkit.cli._common import settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="file to write (default: <reports dir>/dashboard.html)")


def run(args: argparse.Namespace) -> int:
    from monitoring.dashboards.local import write_dashboard

    path = write_dashboard(settings_from(args), Path(args.out) if args.out else None)
    print(path)
    return 0
