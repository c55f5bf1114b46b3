"""`meshkit import <bigquery|cosmos|postgres|avro> <source> --product <domain>/<product>`: a draft
contract from what a team already has (docs/interop.md). The module is `import_` because `import` is a
Python keyword."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshkit.cli._common import settings_from

KINDS = ("bigquery", "cosmos", "postgres", "avro")  # governance.interop.product.IMPORT_KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to import from")
    parser.add_argument(
        "source",
        help="bigquery: project.dataset.table; cosmos: <database>/<container>; postgres: <schema>.<table> "
        "(MESHKIT_POSTGRES_DSN); avro: an .avsc file",
    )
    parser.add_argument("--product", required=True, metavar="DOMAIN/PRODUCT", help="the product to write")
    parser.add_argument("--out", type=Path, default=None, help="folder holding the domain folders (default: domains/)")
    parser.add_argument("--force", action="store_true", help="replace the product's existing contract")
    parser.add_argument("--sample-size", type=int, default=500, help="cosmos: documents to sample (default 500)")


def run(args: argparse.Namespace) -> int:
    from governance.interop.product import import_product
    from meshkit.checks import Status
    from meshkit.cli.validate import render_check

    result = import_product(
        settings_from(args),
        args.kind,
        args.source,
        args.product,
        out=args.out,
        force=args.force,
        sample_size=args.sample_size,
    )
    for path in result.written:
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"Wrote {shown}")
    problems = [c for c in result.checks if c.status is not Status.PASSED]
    for check in problems:
        print(render_check(check))
    errors = [c for c in problems if c.status in (Status.FAILED, Status.ERROR)]
    warnings = len(problems) - len(errors)
    print(
        f"Imported contract: {len(errors)} error(s), {warnings} warning(s) to review "
        "(TODO classifications, inferred types and required flags); then `meshkit validate`."
    )
    return 1 if errors else 0
