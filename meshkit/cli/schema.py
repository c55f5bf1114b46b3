"""`meshkit schema <domain>/<product>`: the product's BigQuery schema JSON, Arrow schema or DDL.

Everything printed is derived from the contract (`meshkit.contracts.bigquery`); `--kind` picks the
table: the contract's own, or the pipeline's `<table>_changelog` / `<table>_current`.
"""

from __future__ import annotations

import argparse
import json
import sys

from meshkit.cli._common import settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", metavar="DOMAIN/PRODUCT", help="the data product, e.g. customers/users")
    parser.add_argument(
        "--target",
        choices=("bigquery", "arrow", "ddl"),
        default="bigquery",
        help="bigquery: TableFieldSchema JSON with partitioning and clustering (default); arrow; ddl",
    )
    parser.add_argument(
        "--kind",
        choices=("contract", "changelog", "current"),
        default="contract",
        help="the contract's table (default) or the pipeline's changelog / current-state table",
    )
    parser.add_argument("--dataset", default=None, help="dataset for the DDL (default: the contract's lake server)")


def run(args: argparse.Namespace) -> int:
    from meshkit.contracts.bigquery import arrow_schema, bigquery_ddl, bigquery_schema, table_options
    from meshkit.products.discovery import find_product

    settings = settings_from(args)
    contract = find_product(settings.domains_dir, args.product).contract
    if args.target == "arrow":
        print(arrow_schema(contract, args.kind).to_string(show_schema_metadata=False))
        return 0
    if args.target == "ddl":
        lake = contract.server("bigquery")
        dataset = args.dataset or (
            f"{lake.project}.{lake.dataset}" if lake and lake.project and lake.dataset else contract.domain
        )
        print(bigquery_ddl(contract, dataset, args.kind), end="")
        return 0
    taxonomy = settings.policy_tag_taxonomy
    if taxonomy is None:
        print(
            "note: policy_tag_taxonomy is not set (MESHKIT_POLICY_TAG_TAXONOMY or meshkit.yaml): "
            "the schema carries no policy tags",
            file=sys.stderr,
        )
    options = table_options(contract, args.kind)
    table = {
        "tableId": options.table,
        "description": options.description,
        "schema": {"fields": bigquery_schema(contract, policy_taxonomy=taxonomy, kind=args.kind)},
        **options.to_api(),
    }
    print(json.dumps(table, indent=2, ensure_ascii=False))
    return 0
