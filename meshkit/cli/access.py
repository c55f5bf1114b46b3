"""`meshkit access`: the effective access matrix (principal x product x resource/column x privilege)
from every product's generated bindings; with --live-gcp/--live-azure, the drift against exported
live IAM. Exits 1 when drift is found (grants nobody declared, or declared grants missing)."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshkit.cli._common import settings_from
from meshkit.cli.infra import grace_from, today_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "csv", "json", "html"), default="table", help="output format")
    parser.add_argument("--product", default=None, metavar="DOMAIN/PRODUCT", help="only this product")
    parser.add_argument(
        "--live-gcp", default=None, metavar="FILE", help="gcloud get-iam-policy or Cloud Asset Inventory JSON"
    )
    parser.add_argument(
        "--live-azure", default=None, metavar="FILE", help="az role assignment list JSON (optionally with identities)"
    )
    parser.add_argument("--out", default=None, metavar="FILE", help="write the report here instead of printing it")
    parser.add_argument(
        "--grace-days", type=int, default=None, metavar="N", help="days an expired grant stays (default 30)"
    )
    parser.add_argument(
        "--today", default=None, metavar="YYYY-MM-DD", help="evaluate expiry on this date instead of today"
    )


def run(args: argparse.Namespace) -> int:
    from governance.access.drift import detect_drift
    from governance.access.live import LiveGrant, load_azure, load_gcp
    from governance.access.matrix import access_matrix
    from governance.access.render import RENDERERS
    from meshkit.products.discovery import discover, find_product

    settings = settings_from(args)
    products = [find_product(settings.domains_dir, args.product)] if args.product else discover(settings.domains_dir)
    matrix = access_matrix(settings, products, today=today_from(args.today), grace_days=grace_from(args.grace_days))
    live: list[LiveGrant] = []
    clouds = []
    if args.live_gcp:
        live += load_gcp(Path(args.live_gcp))
        clouds.append("gcp")
    if args.live_azure:
        live += load_azure(Path(args.live_azure))
        clouds.append("azure")
    drift = detect_drift(matrix.bindings, live, clouds) if clouds else None
    text = RENDERERS[args.format](matrix, drift)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(args.out)
    else:
        print(text)
    return 1 if drift is not None and not drift.clean else 0
