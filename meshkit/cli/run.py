"""`meshkit run <domain>/<product>`: run the product's Beam pipeline once over what is available."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshkit.cli._common import render_summary, settings_from
from meshkit.errors import ConfigError

RUNNERS = {"direct": "DirectRunner"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", help="<domain>/<product>, e.g. payments/transactions")
    parser.add_argument(
        "--from-file", type=Path, help="replay a JSON-lines file of change-feed items (either Cosmos format)"
    )
    parser.add_argument("--runner", default="direct", help="direct (default); dataflow arrives with the GCP profile")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    if args.runner not in RUNNERS:
        raise ConfigError(f"unknown runner {args.runner!r}", hint=f"Valid values are: {', '.join(RUNNERS)}.")
    from meshkit.products.discovery import find_product

    settings = settings_from(args)
    product = find_product(settings.domains_dir, args.product)
    # Beam loads only once the product is known: a mistyped name fails in a fraction of a second
    from pipelines.runners.local import run_product

    summary = run_product(settings, product, from_file=args.from_file, runner=RUNNERS[args.runner]).to_dict()
    print(json.dumps(summary, indent=2) if args.format == "json" else render_summary(summary))
    return 0
