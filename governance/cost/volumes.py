"""What drives each product's bill: changes per day (contract, else measured runs, else upstream
products) and bytes per event (measured in the raw zone, else a default)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from governance.cost.model import BATCH_RUNS_PER_DAY, DEFAULT_EVENT_BYTES, ProductVolume
from meshkit.config import Settings
from meshkit.products.model import DataProduct
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.derive import derive_objectives

_DAYS_PER_UNIT: Mapping[str, int] = {
    "": 1, "d": 1, "day": 1, "days": 1,
    "m": 30, "month": 30, "months": 30,
    "y": 365, "year": 365, "years": 365,
}  # fmt: skip


def retention_days(value: Any, unit: str | None) -> int | None:
    """ODCS `retention` (value + unit y|m|d, or "5y") in days; None when absent or unreadable."""
    text = f"{value}{unit or ''}".strip().lower().replace(" ", "")
    number = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    suffix = text[len(number) :] if number and text.startswith(number) else None
    if suffix is None or suffix not in _DAYS_PER_UNIT:
        return None
    return round(float(number) * _DAYS_PER_UNIT[suffix])


def raw_zone_bytes(settings: Settings, product: DataProduct) -> int:
    """Bytes the product's events take in the raw zone (dead letters excluded)."""
    folder = settings.lake_dir / settings.bucket("raw") / product.domain / product.name
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "_dead_letters" not in p.parts)


def product_volume(
    product: DataProduct,
    runs: list[RunSummary],
    raw_bytes: int,
    upstream_per_day: float | None = None,
    upstream_bytes: float | None = None,
) -> ProductVolume:
    """A product's volume from its contract, its runs (newest first) and its raw-zone bytes."""
    contract = product.contract
    source = contract.source
    events_in = sum(r.events_in for r in runs)
    if source is not None and source.expected_changes_per_day is not None:
        per_day, origin = float(source.expected_changes_per_day), "contract expectedChangesPerDay"
    elif runs:
        per_day = float(runs[0].events_in) * BATCH_RUNS_PER_DAY
        origin = "measured: latest run's events, one run a day"
    elif upstream_per_day is not None:
        per_day, origin = upstream_per_day, "sum of upstream products' changes"
    else:
        per_day, origin = 0.0, "unknown: no expectedChangesPerDay, no runs, no upstream"
    if raw_bytes > 0 and events_in > 0:
        size, size_origin = raw_bytes / events_in, f"measured: {raw_bytes:,} raw bytes / {events_in:,} events"
    elif upstream_bytes is not None:
        size, size_origin = upstream_bytes, "upstream products' bytes per event (weighted)"
    else:
        size, size_origin = float(DEFAULT_EVENT_BYTES), "default (no raw data measured yet)"
    retention = contract.sla.get("retention")
    days = retention_days(retention.value, retention.unit) if retention is not None else None
    return ProductVolume(
        product=product.ref,
        mode="streaming" if source is not None else "batch",
        events_per_day=per_day,
        events_origin=origin,
        event_bytes=size,
        bytes_origin=size_origin,
        retention_days=days,
        objectives=len(derive_objectives(contract, product.ref)),
    )


def mesh_volumes(
    settings: Settings, products: Iterable[DataProduct], metrics_path: Path | None = None
) -> list[ProductVolume]:
    """Volumes of every product; upstream products first so a refined product can sum them."""
    store = MetricsStore(metrics_path or settings.metrics_path)
    all_runs: dict[str, list[RunSummary]] = {}
    for run in store.runs():
        all_runs.setdefault(run.product, []).append(run)
    ordered = list(products)
    done: dict[str, ProductVolume] = {}
    pending = list(ordered)
    while pending:  # dependency order without failing on a cycle (the review reports cycles elsewhere)
        ready = [
            p for p in pending if all(u in done or u not in {q.ref for q in pending} for u in p.descriptor.upstream)
        ]
        for product in ready or pending[:1]:
            upstream = [done[u] for u in product.descriptor.upstream if u in done]
            per_day = sum(v.events_per_day for v in upstream)
            weighted = sum(v.events_per_day * v.event_bytes for v in upstream) / per_day if per_day else None
            done[product.ref] = product_volume(
                product,
                all_runs.get(product.ref, []),
                raw_zone_bytes(settings, product),
                per_day if upstream else None,
                weighted,
            )
            pending.remove(product)
    return [done[p.ref] for p in ordered]
