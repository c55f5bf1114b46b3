"""`meshkit export <domain>/<product> --format jsonschema|avro|bigquery-ddl|dbt [--out FILE]`: the
contract as other tools read it (docs/interop.md); printed unless --out names a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshkit.cli._common import settings_from

FORMATS = ("jsonschema", "avro", "bigquery-ddl", "dbt")  # governance.interop.product.EXPORT_FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", metavar="DOMAIN/PRODUCT", help="the data product, e.g. payments/transactions")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--out", type=Path, default=None, help="write to this file instead of standard output")
    parser.add_argument("--dataset", default=None, help="bigquery-ddl: dataset (default: the contract's lake server)")
    parser.add_argument(
        "--shape",
        choices=("document", "row"),
        default="document",
        help="jsonschema: the source document (source field names; default) or a row of the product's table",
    )


def run(args: argparse.Namespace) -> int:
    from governance.interop.product import export_text
    from meshkit.products.discovery import find_product

    settings = settings_from(args)
    contract = find_product(settings.domains_dir, args.product).contract
    text = export_text(contract, args.format, dataset=args.dataset, shape=args.shape)
    if args.out is None:
        print(text, end="")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"Wrote {args.out}")
    return 0
