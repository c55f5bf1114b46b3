"""`meshkit test <domain>/<product>`: the contract's checks where the data lives (docs/testing.md).

Exit 1 when a check of error severity failed or could not run; warnings are reported only. Results
also go to lineage (job `<domain>.<product>.test`), the metrics store and the review, unless
`--no-publish`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshkit.cli._common import settings_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", help="the product to test, <domain>/<product>")
    parser.add_argument("--server", choices=("local", "bigquery", "gcs"), default="local",
                        help="where the data lives (default: local)")  # fmt: skip
    parser.add_argument("--source", choices=("lake", "warehouse"), default="lake",
                        help="local server: the product's lake Parquet (default) or the DuckDB warehouse")  # fmt: skip
    parser.add_argument("--path", default=None, help="test this Parquet file or glob instead of the product's data")
    masked = parser.add_mutually_exclusive_group()
    masked.add_argument("--masked", dest="masked", action="store_true", default=None,
                        help="personal columns in --path hold masked values (as in curated)")  # fmt: skip
    masked.add_argument("--unmasked", dest="masked", action="store_false",
                        help="personal columns hold source values (the default for --path)")  # fmt: skip
    parser.add_argument("--format", choices=("text", "json", "junit"), default="text")
    parser.add_argument("--out", type=Path, default=None, help="write the results to FILE instead of standard output")
    parser.add_argument("--verbose", "-v", action="store_true", help="text: list passed checks too")
    parser.add_argument("--no-samples", action="store_true", help="do not query failing keys")
    parser.add_argument("--no-publish", action="store_true",
                        help="no lineage event, metrics or stored results (a dry look at the data)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from governance.testing.render import render_json, render_junit, render_text
    from governance.testing.runner import RunOptions, run_contract_tests
    from meshkit.products.discovery import find_product

    settings = settings_from(args)
    product = find_product(settings.domains_dir, args.product)
    options = RunOptions(args.server, args.source, args.path, args.masked, samples=not args.no_samples)
    result = run_contract_tests(settings, product, options)
    if not args.no_publish:
        from governance.testing.publish import emit_lineage, record_metrics, save_results

        save_results(settings, result)
        record_metrics(settings, result)
        emit_lineage(settings, product, result)
    if args.format == "json":
        text = render_json(result)
    elif args.format == "junit":
        text = render_junit(result)
    else:
        text = render_text(result, verbose=args.verbose)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        if args.format != "text":
            print(render_text(result).splitlines()[-1], file=sys.stderr)
    else:
        print(text)
    return 0 if result.ok else 1
