"""`meshkit slo status | export`: error budgets and burn rates per objective; OpenSLO files per product.

Status is information: it exits 0 whatever the budgets say (alerts page people, not exit codes).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshkit.cli._common import duration, settings_from
from meshkit.errors import ConfigError

if TYPE_CHECKING:
    from monitoring.slo.status import ObjectiveStatus

_STATE_MARK = {"ok": "ok", "at-risk": "AT RISK", "exhausted": "EXHAUSTED", "no-data": "no data"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slo_command", metavar="<subcommand>", required=True)
    status = sub.add_parser(
        "status", help="SLI, error budget, burn rates and firing alerts per objective", description=__doc__
    )
    status.add_argument("--product", default=None, metavar="DOMAIN/PRODUCT", help="only this product")
    status.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    status.add_argument(
        "--at", default=None, metavar="TIMESTAMP", help="evaluate at this ISO-8601 time instead of now (UTC)"
    )
    export = sub.add_parser("export", help="write the objectives as OpenSLO v1 YAML, one file per product")
    export.add_argument(
        "--out", default=None, metavar="DIR", help="folder for <domain>/<product>/openslo.yaml (default: build/)"
    )
    export.add_argument("--product", default=None, metavar="DOMAIN/PRODUCT", help="only this product")
    build = sub.add_parser(
        "build",
        help="generate OpenSLO, Cloud Monitoring dashboards (per product and mesh) and alert policies into build/",
    )
    build.add_argument("--product", default=None, metavar="DOMAIN/PRODUCT", help="only this product")


def run(args: argparse.Namespace) -> int:
    if args.slo_command == "build":
        return _build(args)
    return _export(args) if args.slo_command == "export" else _status(args)


def _build(args: argparse.Namespace) -> int:
    from monitoring.cloud.artifacts import build_monitoring

    settings = settings_from(args)
    result = build_monitoring(settings, args.product)
    for path in result.written:
        print(path)
    for product, reason in result.errors.items():
        print(f"{product}: not generated: {reason}", file=sys.stderr)
    return 1 if result.errors else 0


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--at {text!r} is not an ISO-8601 timestamp", hint="Write it like 2026-03-01T12:00:00+00:00."
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _status(args: argparse.Namespace) -> int:
    from monitoring.slo.status import mesh_slos, summarize

    settings = settings_from(args)
    now = _now(args.at)
    products = mesh_slos(settings, args.product, now)
    runs = sum(p.runs for p in products)
    empty = (
        f"No runs recorded yet in {settings.metrics_path}: every objective has no data. "
        "Run `meshkit demo` or `meshkit run <product>` first."
    )
    if args.format == "json":
        document: dict[str, Any] = {
            "evaluated_at": now.isoformat(),
            "runs": runs,
            "summary": summarize(products).line,
            "products": [p.to_dict() for p in products],
        }
        if not runs:
            document["message"] = empty
        print(json.dumps(document, indent=2))
        return 0
    if not runs:
        print(empty)
    print(f"SLO status at {now.isoformat(timespec='seconds')}: {summarize(products).line}")
    for product in products:
        print()
        runs_text = f"{product.runs} run{'' if product.runs == 1 else 's'}"
        print(f"{product.product}  ({runs_text}, {_STATE_MARK[product.state]})")
        if product.error:
            print(f"  cannot judge: {product.error}")
        if product.statuses:
            print(_table([_row(s) for s in product.statuses]))
        for note in product.notes:
            print(f"  note: {note.sla_property}: {note.reason}")
        if product.at_rest:
            measured = ", ".join(f"{kind} {_percent(ratio, 2)}" for kind, (_, ratio) in sorted(product.at_rest.items()))
            newest = max(at for at, _ in product.at_rest.values())
            print(f"  data at rest (meshkit test, {newest}): {measured}")
    return 0


_HEADER = (
    *("objective", "target", "window", "SLI", "good / total", "budget left"),
    *("burn 1h", "6h", "3d", "status", "alerts"),
)


def _row(status: ObjectiveStatus) -> tuple[str, ...]:
    o, counts = status.objective, status.counts
    bound = f" <= {duration(o.threshold_seconds)}" if o.threshold_seconds is not None else ""
    rates = [status.burn_rates.get(label) for label in ("1h", "6h", "3d")]
    alerts = ", ".join(f"{a.severity} {a.label}" for a in status.firing) or "-"  # e.g. page 14.4x over 1h/5m
    return (
        f"{o.kind}{bound}",
        _percent(o.target),
        f"{o.window_days}d",
        _percent(status.sli, 2) if status.sli is not None else "no data",
        _good_total(o.kind, counts.good, counts.total),
        _percent(status.remaining_budget, 1) if status.remaining_budget is not None else "-",
        *(f"{r:.1f}x" if r is not None else "-" for r in rates),
        _STATE_MARK[status.state],
        alerts,
    )


def _percent(share: float, digits: int | None = None) -> str:
    if digits is None:
        return f"{share * 100:.3f}".rstrip("0").rstrip(".") + "%"
    return f"{share * 100:.{digits}f}%"


def _good_total(kind: str, good: float, total: float) -> str:
    if kind == "frequency":  # seconds of time
        return f"{duration(good)} / {duration(total)}" if total else "-"
    unit = "runs" if kind in ("freshness", "availability") else "events"
    return f"{good:,.0f} / {total:,.0f} {unit}" if total else "-"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [_HEADER, *rows]) for i in range(len(_HEADER))]
    return "\n".join(
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [_HEADER, *rows]
    )


def _export(args: argparse.Namespace) -> int:
    from monitoring.slo.openslo import export_openslo

    settings = settings_from(args)
    exported = export_openslo(settings, Path(args.out) if args.out else None, args.product)
    failed = 0
    for item in exported:
        if item.error:
            failed += 1
            print(f"{item.product}: not exported: {item.error}", file=sys.stderr)
        else:
            print(f"{item.path}  ({item.objectives} objectives)")
    return 1 if failed else 0
