"""`meshkit simulate <domain>/<product>`: a seeded Cosmos DB change feed from the product's contract,
written to a JSON-lines file (for `meshkit run --from-file`) or relayed into the local event log."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshkit.cli._common import settings_from
from meshkit.errors import ConfigError


def _mix(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("expected three weights create,update,delete such as 0.35,0.55,0.10")
    return parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", help="<domain>/<product> with a Cosmos DB source server")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write change-feed items as JSON lines to this file")
    target.add_argument("--publish", action="store_true", help="relay the items into the local event log")
    parser.add_argument("--events", type=int, default=2000, help="valid changes to simulate (default 2000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mix", type=_mix, default=(0.35, 0.55, 0.10), help="create,update,delete weights")
    parser.add_argument("--rate", type=float, default=None, help="changes per second (default: the contract's)")
    parser.add_argument("--mode", choices=("latestVersion", "allVersionsAndDeletes"), default=None)
    parser.add_argument("--hot-key-share", type=float, default=0.2)
    parser.add_argument("--duplicate-rate", type=float, default=0.02)
    parser.add_argument("--out-of-order-rate", type=float, default=0.02)
    parser.add_argument("--malformed-rate", type=float, default=0.01)


def run(args: argparse.Namespace) -> int:
    from meshkit.products.discovery import find_product
    from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

    settings = settings_from(args)
    product = find_product(settings.domains_dir, args.product)
    if product.contract.source is None:
        raise ConfigError(
            f"{args.product} has no source server to simulate",
            hint="Only products whose contract has a server with customProperty `sourceKind` are simulated.",
        )
    config = SimulationConfig(
        events=args.events,
        seed=args.seed,
        mix=args.mix,
        rate_per_second=args.rate,
        mode=args.mode,
        hot_key_share=args.hot_key_share,
        duplicate_rate=args.duplicate_rate,
        out_of_order_rate=args.out_of_order_rate,
        malformed_rate=args.malformed_rate,
    )
    feed = ChangeFeedSimulator(product.contract, config).generate()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(b"".join(item + b"\n" for item in feed.items))
        where = str(args.out)
    else:
        from pipelines.demo import publish_feed

        publish_feed(settings, product, feed)
        where = f"event log topic {product.domain}.{product.name} in {settings.eventlog_dir}"
    stats = {"items": len(feed.items), "operations": feed.stats.operations, "duplicates": feed.stats.duplicates}
    stats |= {"out_of_order": feed.stats.out_of_order, "malformed": feed.stats.malformed, "written_to": where}
    print(json.dumps(stats, indent=2))
    return 0
