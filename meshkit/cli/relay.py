"""`meshkit relay <domain>/<product>`: the product's source onto the event bus, checkpointed: the Cosmos DB
change feed, or PostgreSQL logical replication (Debezium envelopes), whichever the contract's source is.

Run several relays for one product and they share its feed ranges through leases; stop one (Ctrl-C,
SIGTERM) and it checkpoints, releases its leases and exits; kill it and its ranges are taken over
once their leases expire. `--status` prints the leases (owner, progress, lag) without reading the feed.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from meshkit.cli._common import duration, settings_from
from meshkit.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", help="<domain>/<product> whose contract has a Cosmos DB source server")
    parser.add_argument(
        "--start",
        default=None,
        help="where a range without a checkpoint starts: beginning, now, or an ISO-8601 time such as "
        "2026-11-01T00:00:00Z (default: beginning; now in all-versions-and-deletes mode, the only start it allows)",
    )
    parser.add_argument(
        "--backfill", action="store_true", help="publish a query snapshot of the container first, then follow the feed"
    )
    parser.add_argument("--until-caught-up", action="store_true", help="stop once every feed range is caught up")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="pause when caught up (default 1 s)")
    parser.add_argument("--owner", default=None, help="lease owner name (default: host-pid-random)")
    parser.add_argument(
        "--status",
        action="store_true",
        help="Cosmos DB: leases, progress and lag per range; PostgreSQL: the slot's lag",
    )
    parser.add_argument("--drop-slot", action="store_true", help="PostgreSQL: drop the replication slot (frees WAL)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from meshkit.products.discovery import find_product

    settings = settings_from(args)
    product = find_product(settings.domains_dir, args.product)
    source = product.contract.source
    if source is not None and source.kind == "postgres":
        return _postgres(args, settings, product)
    if args.drop_slot:
        raise ConfigError("--drop-slot is for PostgreSQL sources", hint=f"{product.ref} reads Cosmos DB.")
    if args.status:
        return _status(settings, product, args.format)

    from pipelines.sources.cosmos.feed import parse_start
    from pipelines.sources.cosmos.relay import RelayOptions
    from pipelines.sources.cosmos.service import run_relay

    options = RelayOptions(
        start=parse_start(args.start) if args.start else None,
        backfill=args.backfill,
        until_caught_up=args.until_caught_up,
        max_seconds=args.max_seconds,
        poll_seconds=args.poll_seconds,
    )
    report, summary = run_relay(settings, product, options, owner=args.owner)
    if args.format == "json":
        ranges = {
            rid: {
                "phase": s.phase,
                "items": s.items,
                "caughtUp": s.caught_up,
                "lsnLag": s.lag.lsn_lag if s.lag else None,
                "secondsBehind": s.lag.seconds_behind if s.lag else None,
            }
            for rid, s in sorted(report.ranges.items())
        }
        print(json.dumps({"summary": summary.to_dict(), "ranges": ranges}, indent=2))
        return 0
    rate = f"{summary.throughput_eps:,.0f} items/s" if summary.throughput_eps else "-"
    print(
        f"{product.ref}  relay run {summary.run_id}  {report.items_read:,} items read, {report.published:,} "
        f"published in {duration(report.seconds)} ({rate})"
    )
    print(
        f"  request units {report.request_units:,.1f}   retries {report.retries}   "
        f"lease changes {report.ownership_changes}   leases lost {report.leases_lost}"
    )
    for rid, s in sorted(report.ranges.items()):
        print("  " + _range_line(rid, s.phase, s.caught_up, s.lag.lsn_lag if s.lag else None,
                                 s.lag.seconds_behind if s.lag else None))  # fmt: skip
    return 0


def _postgres(args: argparse.Namespace, settings: Any, product: Any) -> int:
    """The PostgreSQL relay: slot and publication, snapshot handover, flush LSN confirmed after the bus acked."""
    cosmos_only = [
        flag for flag, used in (("--start", args.start), ("--backfill", args.backfill), ("--owner", args.owner)) if used
    ]
    if cosmos_only:
        raise ConfigError(
            f"{', '.join(cosmos_only)} apply to Cosmos DB sources; {product.ref} reads PostgreSQL",
            hint="The PostgreSQL relay always snapshots the table first and then streams from its slot.",
        )
    if args.drop_slot:
        from pipelines.sources.postgres.replication import drop_slot

        print("slot dropped" if drop_slot(settings, product) else "no slot to drop")
        return 0
    if args.status:
        from pipelines.sources.postgres.service import slot_status

        lag = slot_status(settings, product)
        status = None if lag is None else {"slot": lag.slot, "lagBytes": lag.lag_bytes}
        if args.format == "json":
            print(json.dumps(status))
        else:
            print(
                f"{product.ref}: "
                + ("no replication slot" if lag is None else f"slot {lag.slot} holds {lag.lag_bytes:,} bytes of WAL")
            )
        return 0
    from pipelines.sources.postgres.relay import PgRelayOptions
    from pipelines.sources.postgres.service import run_pg_relay

    options = PgRelayOptions(
        until_caught_up=args.until_caught_up, max_seconds=args.max_seconds, poll_seconds=args.poll_seconds
    )
    report, summary = run_pg_relay(settings, product, options)
    if args.format == "json":
        print(
            json.dumps(
                {"summary": summary.to_dict(), "phase": report.phase, "flushedLsn": report.flushed_lsn}, indent=2
            )
        )
        return 0
    print(
        f"{product.ref}  relay run {summary.run_id}  {report.snapshot_rows:,} snapshot rows, "
        f"{report.changes:,} changes, {report.published:,} published in {duration(report.seconds)}; "
        f"phase {report.phase}"
    )
    held = "-" if report.slot_lag_bytes is None else f"{report.slot_lag_bytes:,} bytes"
    print(f"  retries {report.retries}   slot lag (largest) {held}   lag warnings {report.lag_warnings}")
    return 0


def _range_line(rid: str, phase: str, caught_up: bool | None, lsn_lag: Any, behind: Any) -> str:
    lag = "-" if lsn_lag is None else f"{lsn_lag:,} LSNs"
    seconds = "-" if behind is None else duration(float(behind))
    state = "caught up" if caught_up else phase
    return f"range {rid:<14} {state:<10} behind by {lag:<12} {seconds}"


def _status(settings: Any, product: Any, fmt: str) -> int:
    from pipelines.sources.cosmos.service import lease_table

    leases = lease_table(settings, product)
    now = time.time()
    rows: list[dict[str, Any]] = [
        {
            "range": lease.range_id,
            "owner": lease.owner if lease.expires_at > now else None,
            "expiresIn": round(max(0.0, lease.expires_at - now), 1),
            **{k: lease.state.get(k) for k in ("phase", "lastLsn", "latestLsn", "lsnLag", "secondsBehind", "at")},
        }
        for lease in leases
    ]
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"{product.ref}: no leases yet (the relay has not run with this checkpoint store)")
        return 0
    for row in rows:
        owner = row["owner"] or "(free)"
        line = _range_line(row["range"], row["phase"] or "-", row["lsnLag"] == 0, row["lsnLag"], row["secondsBehind"])
        print(f"  {line}  owner {owner}  checkpoint {row['at'] or '-'}")
    return 0
