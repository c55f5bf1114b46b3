"""`meshkit cost`: the monthly cost estimate per product and for the mesh, and the SFTP comparison."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshkit.cli._common import settings_from
from meshkit.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--product", default=None, metavar="DOMAIN/PRODUCT", help="only this product")
    parser.add_argument("--prices", default=None, metavar="FILE", help="price table YAML (default: the shipped one)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")
    parser.add_argument(
        "--monitoring-budget",
        type=float,
        default=None,
        metavar="SHARE",
        help="flag products whose monitoring exceeds this share of their cost (default 0.10)",
    )


def run(args: argparse.Namespace) -> int:
    from governance.cost import DEFAULT_MONITORING_BUDGET_SHARE, estimate_cost
    from governance.cost.render import render_json, render_markdown, render_text
    from meshkit.products.discovery import discover, find_product

    budget = DEFAULT_MONITORING_BUDGET_SHARE if args.monitoring_budget is None else args.monitoring_budget
    if not 0 < budget <= 1:
        raise ConfigError(f"--monitoring-budget {budget} is out of range", hint="Give a share in (0, 1], e.g. 0.1.")
    settings = settings_from(args)
    only = find_product(settings.domains_dir, args.product).ref if args.product else None
    prices = Path(args.prices) if args.prices else None
    mesh = estimate_cost(settings, discover(settings.domains_dir), prices, budget, only)
    renderers = {"text": render_text, "json": render_json, "markdown": render_markdown}
    print(renderers[args.format](mesh))
    return 0
