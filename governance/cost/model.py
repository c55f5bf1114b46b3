"""Monthly cost per product and for the mesh: quantities from the contract and measured runs, times
list prices from the price table. Pure arithmetic; every constant below is an assumption with its
reason, and every line item names the price key it multiplies by (docs/cost.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from governance.cost.prices import PriceTable
from monitoring.cloud.catalog import CUSTOM_METRICS

# --- assumptions (each one is printed in docs/cost.md; change them here, not in a formula) ---
HOURS_PER_MONTH = 730.0  # the month Azure and GCP price lists use
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
GB = 1e9  # cloud price lists bill decimal GB
MIB = 2**20
TIB = 2**40
DEFAULT_EVENT_BYTES = 1024  # a change-feed document when the raw zone has nothing measured yet
RU_PER_KB_READ = 1.0  # Cosmos DB: reading a 1 KB item costs ~1 RU; the change feed is billed like reads
PEAK_TO_AVERAGE = 4.0  # Event Hubs is sized for the busiest hour, taken as 4x the daily average rate
EH_TU_BYTES_PER_SECOND = 1_000_000  # one Standard throughput unit: 1 MB/s ingress ...
EH_TU_EVENTS_PER_SECOND = 1_000  # ... or 1,000 events/s, whichever is hit first
EH_BILLING_EVENT_BYTES = 64 * 1024  # ingress events are billed in 64 KB units
STREAMING_WORKERS = 1  # one always-on worker carries ~150k changes/day with room to spare
STREAMING_WORKER_VCPUS = 2  # n1-standard-2, Dataflow's default streaming machine type
STREAMING_WORKER_MEMORY_GB = 7.5
BATCH_WORKER_VCPUS = 1  # n1-standard-1 for a nightly refined/batch job
BATCH_WORKER_MEMORY_GB = 3.75
BATCH_JOB_OVERHEAD_HOURS = 0.1  # ~6 min of worker start-up and tear-down billed per batch job
BATCH_EVENTS_PER_VCPU_SECOND = 5_000.0  # conservative: local Beam over Arrow did ~140k/s per core
BATCH_RUNS_PER_DAY = 1  # refined products and the SFTP baseline load once a night
RAW_STANDARD_DAYS = 30  # lifecycle rule: raw moves Standard -> Nearline after 30 days
STORAGE_HORIZON_DAYS = 365  # storage is priced as month 12 of operation (capped by the retention)
CURATED_BYTES_RATIO = 0.25  # Parquet + Snappy of a JSON change event: about a quarter of its size
BQ_ROW_BYTES_RATIO = 0.6  # BigQuery logical bytes drop JSON punctuation and field names
BQ_LONG_TERM_AFTER_DAYS = 90  # BigQuery bills a partition untouched for 90 days as long-term
CURRENT_STATE_DAYS_OF_CHANGES = 30  # the current-state table holds about a month of changes' worth of rows
MERGES_PER_DAY_STREAMING = 96  # the current-state MERGE runs every 15 minutes while streaming
BQ_MIN_BYTES_PER_TABLE = 10 * MIB  # on-demand queries bill at least 10 MB per table referenced
MONITORING_BYTES_PER_POINT = 8  # Cloud Monitoring bills a scalar point as 8 bytes
MONITORING_WRITE_INTERVAL_SECONDS = 60  # the metrics writer flushes each series once a minute
LABEL_FANOUT = {"reason": 5, "output": 4, "status": 2, "operation": 3, "partition": 4}  # values per label
ALERT_CONDITIONS_PER_OBJECTIVE = 2  # a fast and a slow burn-rate condition per SLO
DEFAULT_MONITORING_BUDGET_SHARE = 0.10  # monitoring above 10 % of a product's cost is flagged
MONITORING_SERVICE = "monitoring"


@dataclass(frozen=True)
class ProductVolume:
    """What drives a product's bill, and where each figure came from."""

    product: str
    mode: str  # "streaming" (change-feed source) or "batch" (refined, nightly)
    events_per_day: float
    events_origin: str
    event_bytes: float
    bytes_origin: str
    retention_days: int | None  # from the contract's `retention`; None: not set (horizon applies)
    objectives: int  # SLOs derived from the contract (alert conditions, SLI series)

    @property
    def stored_days(self) -> int:
        """Days of data on disk in the priced month."""
        return min(self.retention_days or STORAGE_HORIZON_DAYS, STORAGE_HORIZON_DAYS)


@dataclass(frozen=True)
class LineItem:
    """quantity x unit price = monthly cost; `price_key` traces the price, `basis` the quantity."""

    service: str
    item: str
    quantity: float
    unit: str
    price_key: str
    unit_price: float
    basis: str

    @property
    def monthly_usd(self) -> float:
        return self.quantity * self.unit_price

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "item": self.item,
            "quantity": self.quantity,
            "unit": self.unit,
            "price_key": self.price_key,
            "unit_price": self.unit_price,
            "monthly_usd": round(self.monthly_usd, 4),
            "basis": self.basis,
        }


@dataclass(frozen=True)
class ProductCost:
    product: str
    volume: ProductVolume
    items: tuple[LineItem, ...]

    @property
    def total(self) -> float:
        return sum(i.monthly_usd for i in self.items)

    @property
    def monitoring(self) -> float:
        return sum(i.monthly_usd for i in self.items if i.service == MONITORING_SERVICE)

    @property
    def monitoring_share(self) -> float:
        return self.monitoring / self.total if self.total > 0 else 0.0

    def by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i in self.items:
            out[i.service] = out.get(i.service, 0.0) + i.monthly_usd
        return out


@dataclass(frozen=True)
class MeshCost:
    prices: PriceTable
    products: tuple[ProductCost, ...]
    budget_share: float

    @property
    def total(self) -> float:
        return sum(p.total for p in self.products)

    @property
    def monitoring(self) -> float:
        return sum(p.monitoring for p in self.products)

    def over_budget(self) -> tuple[ProductCost, ...]:
        return tuple(p for p in self.products if p.monitoring_share > self.budget_share)

    def to_dict(self) -> dict[str, Any]:
        return {
            "price_table": {"path": str(self.prices.path), "version": self.prices.version},
            "currency": self.prices.currency,
            "monitoring_budget_share": self.budget_share,
            "total_monthly_usd": round(self.total, 2),
            "monitoring_monthly_usd": round(self.monitoring, 2),
            "products": [
                {
                    "product": p.product,
                    "mode": p.volume.mode,
                    "events_per_day": p.volume.events_per_day,
                    "events_origin": p.volume.events_origin,
                    "event_bytes": round(p.volume.event_bytes, 1),
                    "bytes_origin": p.volume.bytes_origin,
                    "total_monthly_usd": round(p.total, 2),
                    "monitoring_monthly_usd": round(p.monitoring, 2),
                    "monitoring_share": round(p.monitoring_share, 4),
                    "over_budget": p.monitoring_share > self.budget_share,
                    "items": [i.to_dict() for i in p.items],
                }
                for p in self.products
            ],
        }


def monitoring_series(objectives: int) -> int:
    """Time series one product writes: each catalogue metric times the values of its extra labels."""
    fanout = {**LABEL_FANOUT, "slo": objectives}
    return sum(math.prod(fanout[label] for label in m.labels) for m in CUSTOM_METRICS.values())


def estimate_product(volume: ProductVolume, prices: PriceTable) -> ProductCost:
    """Every line item of one product for one month."""
    items: list[LineItem] = []

    def add(service: str, item: str, quantity: float, unit: str, key: str, basis: str) -> None:
        items.append(LineItem(service, item, quantity, unit, key, prices.price(key), basis))

    per_day, size = volume.events_per_day, volume.event_bytes
    per_month = per_day * DAYS_PER_MONTH
    if volume.mode == "streaming":
        ru = per_month * math.ceil(size / 1024) * RU_PER_KB_READ
        add(
            "cosmos",
            "change-feed reads",
            ru / 1e6,
            "M RU",
            "cosmos.serverless_per_million_ru",
            f"{per_month:,.0f} items x {math.ceil(size / 1024)} KB x {RU_PER_KB_READ} RU/KB",
        )
        peak_s = per_day / 86_400 * PEAK_TO_AVERAGE
        tus = max(1, math.ceil(max(peak_s * size / EH_TU_BYTES_PER_SECOND, peak_s / EH_TU_EVENTS_PER_SECOND)))
        add(
            "eventhubs",
            "throughput units",
            tus * HOURS_PER_MONTH,
            "TU-h",
            "eventhubs.standard_tu_hour",
            f"{tus} TU (peak {peak_s:,.1f} events/s) x {HOURS_PER_MONTH:.0f} h",
        )
        add(
            "eventhubs",
            "ingress events",
            per_month * math.ceil(size / EH_BILLING_EVENT_BYTES) / 1e6,
            "M events",
            "eventhubs.standard_ingress_per_million_events",
            f"{per_month:,.0f} events in 64 KB units",
        )
        add(
            "network",
            "Azure -> GCP egress",
            per_month * size / GB,
            "GB",
            "azure.egress_internet_per_gb",
            f"{per_month:,.0f} events x {size:,.0f} B read by Dataflow from Event Hubs",
        )
        cpu = STREAMING_WORKERS * STREAMING_WORKER_VCPUS * HOURS_PER_MONTH
        mem = STREAMING_WORKERS * STREAMING_WORKER_MEMORY_GB * HOURS_PER_MONTH
        add(
            "dataflow",
            "streaming vCPU",
            cpu,
            "vCPU-h",
            "dataflow.streaming_vcpu_hour",
            f"{STREAMING_WORKERS} worker x {STREAMING_WORKER_VCPUS} vCPU always on",
        )
        add(
            "dataflow",
            "streaming memory",
            mem,
            "GB-h",
            "dataflow.memory_gb_hour",
            f"{STREAMING_WORKERS} worker x {STREAMING_WORKER_MEMORY_GB} GB always on",
        )
        add(
            "dataflow",
            "Streaming Engine data",
            per_month * size / GB,
            "GB",
            "dataflow.streaming_engine_per_gb",
            "every event passes Streaming Engine once",
        )
    else:
        hours = batch_job_hours(per_day) * BATCH_RUNS_PER_DAY * DAYS_PER_MONTH
        add(
            "dataflow",
            "batch vCPU",
            hours * BATCH_WORKER_VCPUS,
            "vCPU-h",
            "dataflow.batch_vcpu_hour",
            f"{BATCH_RUNS_PER_DAY} job/day x {batch_job_hours(per_day):.3f} h x {BATCH_WORKER_VCPUS} vCPU",
        )
        add(
            "dataflow",
            "batch memory",
            hours * BATCH_WORKER_MEMORY_GB,
            "GB-h",
            "dataflow.memory_gb_hour",
            f"{BATCH_RUNS_PER_DAY} job/day x {batch_job_hours(per_day):.3f} h x {BATCH_WORKER_MEMORY_GB} GB",
        )
    items.extend(_storage(volume, prices))
    items.extend(_warehouse(volume, prices))
    series = monitoring_series(volume.objectives)
    points = series * HOURS_PER_MONTH * 3600 / MONITORING_WRITE_INTERVAL_SECONDS
    add(
        MONITORING_SERVICE,
        f"metric ingestion ({series} series)",
        points * MONITORING_BYTES_PER_POINT / MIB,
        "MiB",
        "monitoring.ingestion_per_mib",
        f"{series} series x {points / series:,.0f} points x 8 B",
    )
    add(
        MONITORING_SERVICE,
        "alert conditions",
        volume.objectives * ALERT_CONDITIONS_PER_OBJECTIVE,
        "conditions",
        "monitoring.alert_condition_month",
        f"{volume.objectives} SLOs x {ALERT_CONDITIONS_PER_OBJECTIVE} burn rates",
    )
    return ProductCost(volume.product, volume, tuple(items))


def batch_job_hours(events: float) -> float:
    """Billed hours of one batch job over `events` events."""
    return BATCH_JOB_OVERHEAD_HOURS + events / (BATCH_EVENTS_PER_VCPU_SECOND * BATCH_WORKER_VCPUS) / 3600


def _storage(volume: ProductVolume, prices: PriceTable) -> list[LineItem]:
    day_gb = volume.events_per_day * volume.event_bytes / GB
    days = volume.stored_days
    out = []
    if volume.mode == "streaming":  # refined products have no raw zone: they read curated/BigQuery
        standard = min(days, RAW_STANDARD_DAYS)
        out.append(
            LineItem(
                "gcs",
                "raw Standard",
                day_gb * standard,
                "GB-month",
                "gcs.standard_gb_month",
                prices.price("gcs.standard_gb_month"),
                f"{standard} days of raw events",
            )
        )
        out.append(
            LineItem(
                "gcs",
                "raw Nearline",
                day_gb * (days - standard),
                "GB-month",
                "gcs.nearline_gb_month",
                prices.price("gcs.nearline_gb_month"),
                f"{days - standard} days older than 30",
            )
        )
    out.append(
        LineItem(
            "gcs",
            "curated Standard",
            day_gb * CURATED_BYTES_RATIO * days,
            "GB-month",
            "gcs.standard_gb_month",
            prices.price("gcs.standard_gb_month"),
            f"{days} days x Parquet at {CURATED_BYTES_RATIO:.0%} of raw",
        )
    )
    return out


def _warehouse(volume: ProductVolume, prices: PriceTable) -> list[LineItem]:
    row_gb = volume.events_per_day * volume.event_bytes * BQ_ROW_BYTES_RATIO / GB  # per day of changes
    days = volume.stored_days
    current_gb = row_gb * min(days, CURRENT_STATE_DAYS_OF_CHANGES)
    active_days = min(days, BQ_LONG_TERM_AFTER_DAYS)
    merges = (MERGES_PER_DAY_STREAMING if volume.mode == "streaming" else BATCH_RUNS_PER_DAY) * DAYS_PER_MONTH
    batch_bytes = row_gb * GB / (merges / DAYS_PER_MONTH)
    scanned = merges * (max(BQ_MIN_BYTES_PER_TABLE, current_gb * GB) + max(BQ_MIN_BYTES_PER_TABLE, batch_bytes))

    def item(name: str, quantity: float, unit: str, key: str, basis: str) -> LineItem:
        return LineItem("bigquery", name, quantity, unit, key, prices.price(key), basis)

    return [
        item(
            "active storage",
            row_gb * active_days + current_gb,
            "GB-month",
            "bigquery.active_storage_gb_month",
            f"changelog {active_days} days + current state ({CURRENT_STATE_DAYS_OF_CHANGES} days of changes)",
        ),
        item(
            "long-term storage",
            row_gb * (days - active_days),
            "GB-month",
            "bigquery.long_term_storage_gb_month",
            f"changelog older than {BQ_LONG_TERM_AFTER_DAYS} days",
        ),
        item(
            "Storage Write API",
            row_gb * DAYS_PER_MONTH,
            "GB",
            "bigquery.storage_write_per_gb",
            "changelog rows appended",
        ),
        item(
            "MERGE queries",
            scanned / TIB,
            "TiB",
            "bigquery.on_demand_per_tib",
            f"{merges:,.0f} MERGEs x (current state + batch, >= 10 MB each)",
        ),
    ]


def estimate_mesh(
    volumes: Iterable[ProductVolume], prices: PriceTable, budget_share: float = DEFAULT_MONITORING_BUDGET_SHARE
) -> MeshCost:
    return MeshCost(prices, tuple(estimate_product(v, prices) for v in volumes), budget_share)
