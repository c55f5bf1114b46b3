"""`meshkit new <domain>/<product>`: scaffold a change-feed data product that validates and runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshkit.cli._common import settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", metavar="<domain>/<product>", help="e.g. payments/refunds (lower-case kebab-case)")
    parser.add_argument("--owner", metavar="EMAIL", help="owner's e-mail (default: <domain>-data-owners@example.com)")
    parser.add_argument("--force", action="store_true", help="overwrite the generated files of an existing product")


def run(args: argparse.Namespace) -> int:
    from meshkit.scaffold import scaffold_product

    settings = settings_from(args)
    written = scaffold_product(settings.domains_dir, args.product, owner=args.owner, force=args.force)
    folder = written[0].parent
    if folder.is_relative_to(Path.cwd()):
        folder = folder.relative_to(Path.cwd())
    print(f"Created {folder}/: {', '.join(p.name for p in written)}")
    print(f"Next: describe your documents in {folder / 'datacontract.yaml'}, then `meshkit validate {folder}`.")
    return 0
