"""The whole mesh end to end on the local profile: simulate each source product's Cosmos DB change
feed, relay it into the local event log, run every product's pipeline in dependency order.

The relay is a lineage job of its own (`<domain>.<product>.relay`: Cosmos DB container -> event-log
topic); the pipeline run it fed names it as its parent run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from meshkit import __version__ as meshkit_version
from meshkit.config import Settings
from meshkit.products.discovery import dependency_order, discover
from meshkit.products.model import DataProduct
from monitoring.lineage.emitter import LineageEmitter, job_name
from monitoring.lineage.facets import DatasetFigures, Engine, RunFigures
from monitoring.lineage.naming import DatasetName, cosmos_dataset, eventlog_dataset
from monitoring.lineage.run import DEFAULT_HEARTBEAT_SECONDS, LineageRun
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from pipelines.product import ChangeFeedPipeline, load_pipeline
from pipelines.runners.local import run_product
from pipelines.sources import local_relay
from pipelines.sources.relay_run import RELAY_OUTPUT, RELAY_STAGE
from pipelines.sources.simulator import ChangeFeedSimulator, SimulatedFeed, SimulationConfig
from pipelines.topics import topic_of

if TYPE_CHECKING:
    from pipelines.demo_postgres import PostgresDemoResult


@dataclass
class DemoResult:
    """Per product: how many items were published and what its run did; the feeds for checking."""

    published: dict[str, int] = field(default_factory=dict)
    summaries: list[RunSummary] = field(default_factory=list)
    feeds: dict[str, SimulatedFeed] = field(default_factory=dict)
    relay_runs: dict[str, str] = field(default_factory=dict)  # product ref -> run id of its relay
    # customers/users run from PostgreSQL (pipelines/demo_postgres.py); None when not run
    postgres: PostgresDemoResult | None = None
    postgres_skipped: str | None = None  # why it did not run, when it was asked for


class RelayRun(NamedTuple):
    """One relay run: how many items it published and its lineage run id."""

    published: int
    run_id: str


class RelayedFeed(NamedTuple):
    feed: SimulatedFeed
    published: int
    run_id: str


def _related_table(product: DataProduct) -> str | None:
    """The table a foreign-key column of this product points to (`users.user_id` -> `users`)."""
    for prop in product.contract.table.properties or ():
        for rel in prop.relationships or ():
            target = rel.to if isinstance(rel.to, str) else None
            if (rel.type or "").lower() == "foreignkey" and target:
                return target.split(".")[0]
    return None


def recent_start(product: DataProduct, events: int, now: datetime) -> datetime:
    """A start time so that the simulated changes, at the contract's expected rate, end about now."""
    source = product.contract.source
    per_day = (source.expected_changes_per_day if source else None) or 86_400
    return now.replace(second=0, microsecond=0) - timedelta(days=events / per_day)


def simulate_and_publish(
    settings: Settings,
    product: DataProduct,
    events: int,
    seed: int,
    related_keys: tuple[str, ...] | None,
    now: datetime | None = None,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
) -> RelayedFeed:
    """Simulate the product's change feed (ending about `now`) and relay it into the product's topic;
    returns the feed, how many items were published and the relay's lineage run id."""
    start = recent_start(product, events, now or datetime.now(UTC))
    config = SimulationConfig(events=events, seed=seed, related_keys=related_keys, start=start)
    feed = ChangeFeedSimulator(product.contract, config).generate()
    relay = publish_feed(settings, product, feed, heartbeat_seconds)
    return RelayedFeed(feed, relay.published, relay.run_id)


def relay_datasets(settings: Settings, product: DataProduct) -> tuple[dict[str, DatasetName], dict[str, DatasetName]]:
    """The relay reads the contract's Cosmos DB container (keyed by the product's first input port)
    and writes the product's event-log topic. A source that is not Cosmos DB has no input here."""
    source = product.contract.source
    port = product.descriptor.inputPorts[0].name if product.descriptor.inputPorts else "source"
    inputs: dict[str, DatasetName] = {}
    if source and source.kind == "cosmosdb" and source.account and source.database and source.container:
        inputs[port] = cosmos_dataset(source.account, source.database, source.container)
    return inputs, {RELAY_OUTPUT: eventlog_dataset(settings.eventlog_dir, topic_of(product))}


def publish_feed(
    settings: Settings,
    product: DataProduct,
    feed: SimulatedFeed,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
) -> RelayRun:
    """Relay a simulated feed into the product's event-log topic, keyed by the Cosmos partition key,
    as the lineage job `<domain>.<product>.relay`."""
    from pipelines.transports.local_log import LocalEventLog

    source = product.contract.source
    source_name = f"cosmosdb:{source.account}/{source.database}/{source.container}" if source else product.ref
    inputs, outputs = relay_datasets(settings, product)
    engine = Engine("meshkit relay", meshkit_version, code=Path(local_relay.__file__))
    emitter = LineageEmitter.from_settings(settings)
    try:
        with LineageRun(
            emitter, product, RELAY_STAGE, inputs=inputs, outputs=outputs, engine=engine,
            heartbeat_seconds=heartbeat_seconds,
        ) as lineage:  # fmt: skip
            started, clock = datetime.now(UTC), time.monotonic()
            with LocalEventLog(settings.eventlog_dir, topic_of(product), settings.eventlog_partitions) as log:
                published = local_relay.publish_items(log, product.ref, source_name, feed.items, feed.keys)
            MetricsStore(settings.metrics_path).record(
                local_relay.relay_summary(
                    product.ref, lineage.run_id, started, time.monotonic() - clock, feed.items, published
                )
            )
            lineage.figures = RunFigures(
                inputs={port: DatasetFigures(rows=len(feed.items)) for port in inputs},
                outputs={RELAY_OUTPUT: DatasetFigures(rows=published, size_bytes=sum(map(len, feed.items)))},
            )
    finally:
        emitter.close()
    return RelayRun(published, lineage.run_id)


def run_demo(
    settings: Settings,
    events: int = 3000,
    seed: int = 7,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    *,
    postgres: bool = False,
) -> DemoResult:
    """Every product in dependency order. The same seed gives the same changes (same keys and LSNs), so a
    second demo run re-delivers them and must leave the current state unchanged. With `postgres`, then
    customers/users once more from a local PostgreSQL (skipped, with the reason, when it is not installed)."""
    result = DemoResult()
    keys_by_table: dict[str, tuple[str, ...]] = {}
    for offset, product in enumerate(dependency_order(discover(settings.domains_dir))):
        pipeline = load_pipeline(product.pipeline_path)
        parent = None
        if isinstance(pipeline, ChangeFeedPipeline) and product.contract.source is not None:
            related = _related_table(product)
            related_keys = keys_by_table.get(related) if related else None
            relayed = simulate_and_publish(
                settings, product, events, seed + offset, related_keys, heartbeat_seconds=heartbeat_seconds
            )
            keys_by_table[product.contract.table_name] = tuple(sorted(relayed.feed.all_keys))
            result.feeds[product.ref] = relayed.feed
            result.published[product.ref] = relayed.published
            result.relay_runs[product.ref] = relayed.run_id
            parent = (job_name(product, RELAY_STAGE), relayed.run_id)
        result.summaries.append(run_product(settings, product, parent=parent, heartbeat_seconds=heartbeat_seconds))
    if postgres:
        from pipelines.demo_postgres import run_users_from_postgres
        from pipelines.sources.postgres.local_server import available

        result.postgres = run_users_from_postgres(settings, events=events, seed=seed)
        result.postgres_skipped = available() if result.postgres is None else None
    return result
