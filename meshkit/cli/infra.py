"""`meshkit infra <product> [--out DIR]` writes the product's Terraform stack;
`meshkit infra check <dir>` runs the project's policies and checkov (offline) on any Terraform folder
and exits 1 when a check of error severity fails."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from meshkit.cli._common import settings_from
from meshkit.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="<product>|check", help="DOMAIN/PRODUCT to generate, or `check`")
    parser.add_argument("folder", nargs="?", default=None, metavar="DIR", help="with `check`: the Terraform folder")
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where to write the stack (default: build/<domain>/<product>/terraform)",
    )
    parser.add_argument(
        "--grace-days",
        type=int,
        default=None,
        metavar="N",
        help="days an expired grant stays before it is dropped (default 30)",
    )
    parser.add_argument(
        "--today", default=None, metavar="YYYY-MM-DD", help="evaluate expiry on this date instead of today"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output of `check`")
    parser.add_argument(
        "--checkov",
        choices=("auto", "required", "off"),
        default="auto",
        help="`check`: run checkov when installed (auto), demand it (required) or skip it (off)",
    )


def today_from(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--today {value!r} is not a date", hint="Write it as YYYY-MM-DD, e.g. 2026-12-31.") from exc


def grace_from(value: int | None) -> int:
    from governance.iam.grants import DEFAULT_GRACE_DAYS

    if value is None:
        return DEFAULT_GRACE_DAYS
    if value < 0:
        raise ConfigError(f"--grace-days {value} is negative", hint="Give 0 or more days, e.g. 30.")
    return value


def run(args: argparse.Namespace) -> int:
    if args.target == "check":
        return _check(args)
    if args.folder is not None:
        raise ConfigError(
            f"unexpected argument {args.folder!r} after the product",
            hint="Use --out DIR to choose where the stack goes.",
        )
    return _generate(args)


def _generate(args: argparse.Namespace) -> int:
    from governance.infra.generate import generate_stack
    from meshkit.cli.validate import render_check

    settings = settings_from(args)
    result = generate_stack(
        settings,
        args.target,
        today=today_from(args.today),
        out=Path(args.out) if args.out else None,
        grace_days=grace_from(args.grace_days),
    )
    for path in result.written:
        print(path)
    for check in result.access.checks:
        if check.rule != "access.azure-no-binding":
            print(render_check(check))
    counts = {cloud: len(result.access.on(cloud)) for cloud in ("gcp", "azure")}
    print(
        f"{result.access.grants.product.ref}: {counts['gcp']} GCP IAM and {counts['azure']} Azure RBAC bindings; "
        f"{len(result.access.grants.dropped)} expired grants dropped."
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from governance.infra.check import check_folder, error_failures
    from meshkit.checks import Status
    from meshkit.cli.validate import render_check

    if args.folder is None:
        raise ConfigError(
            "`meshkit infra check` needs a folder",
            hint="Run e.g. `meshkit infra check build/payments/transactions/terraform`.",
        )
    settings = settings_from(args)
    run_ = check_folder(Path(args.folder), root=settings.root, checkov=args.checkov)
    errors = error_failures(run_)
    if args.format == "json":
        print(json.dumps(run_.to_dict(), indent=2))
    else:
        for check in run_.checks:
            if check.status is not Status.PASSED:
                print(render_check(check))
        passed = sum(c.status is Status.PASSED for c in run_.checks)
        print(f"{args.folder}: {len(errors)} errors, {len(run_.warnings)} warnings, {passed} checks passed.")
    return 1 if errors else 0
