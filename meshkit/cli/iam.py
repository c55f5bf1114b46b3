"""`meshkit iam <product>`: the product's grants (purpose, expiry, status) and the GCP IAM and Azure
RBAC bindings they become. Expired grants and grants without purpose are reported, not fatal."""

from __future__ import annotations

import argparse
import json

from meshkit.cli._common import settings_from
from meshkit.cli.infra import grace_from, today_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", metavar="DOMAIN/PRODUCT", help="the product")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
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


def run(args: argparse.Namespace) -> int:
    from governance.access.render import binding_row
    from governance.infra.generate import access_plan
    from meshkit.cli.validate import render_check

    settings = settings_from(args)
    access = access_plan(settings, args.product, today=today_from(args.today), grace_days=grace_from(args.grace_days))
    if args.format == "json":
        payload = {
            "product": access.grants.product.ref,
            "grants": [
                {
                    "role": g.role,
                    "cloud": g.cloud,
                    "principal": g.principal,
                    "purpose": g.purpose,
                    "expires": g.expires.isoformat() if g.expires else None,
                    "status": g.status,
                }
                for g in access.grants.grants
            ],
            "bindings": [binding_row(b) for b in access.bindings],
            "checks": [c.to_dict() for c in access.checks],
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{access.grants.product.ref}: grants")
    for g in access.grants.grants:
        until = g.expires.isoformat() if g.expires else "never"
        print(f"  [{g.status}] {g.role} {g.cloud} {g.principal} until {until}: {g.purpose or 'NO PURPOSE'}")
    print("bindings")
    for b in access.bindings:
        where = b.resource + (f" [{', '.join(b.columns)}]" if b.columns != ("*",) else "")
        print(f"  {b.cloud} {b.role} on {b.resource_kind} {where} -> {b.principal}")
    for check in access.checks:
        print(render_check(check))
    return 0
