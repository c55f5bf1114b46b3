"""The whole mesh end to end on the local profile: simulate each source product's Cosmos DB change
feed, relay it into the local event log, run every product's pipeline in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from meshkit.config import Settings
from meshkit.products.discovery import dependency_order, discover
from meshkit.products.model import DataProduct
from monitoring.metrics.run import RunSummary
from pipelines.product import ChangeFeedPipeline, load_pipeline
from pipelines.runners.local import run_product, topic_of
from pipelines.sources.local_relay import publish_items
from pipelines.sources.simulator import ChangeFeedSimulator, SimulatedFeed, SimulationConfig


@dataclass
class DemoResult:
    """Per product: how many items were published and what its run did; the feeds for checking."""

    published: dict[str, int] = field(default_factory=dict)
    summaries: list[RunSummary] = field(default_factory=list)
    feeds: dict[str, SimulatedFeed] = field(default_factory=dict)


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
) -> tuple[SimulatedFeed, int]:
    """Simulate the product's change feed (ending about `now`) and relay it into the product's topic."""
    start = recent_start(product, events, now or datetime.now(UTC))
    config = SimulationConfig(events=events, seed=seed, related_keys=related_keys, start=start)
    feed = ChangeFeedSimulator(product.contract, config).generate()
    return feed, publish_feed(settings, product, feed)


def publish_feed(settings: Settings, product: DataProduct, feed: SimulatedFeed) -> int:
    """Relay a simulated feed into the product's event-log topic, keyed by the Cosmos partition key."""
    from pipelines.transports.local_log import LocalEventLog

    source = product.contract.source
    source_name = f"cosmosdb:{source.account}/{source.database}/{source.container}" if source else product.ref
    with LocalEventLog(settings.eventlog_dir, topic_of(product), settings.eventlog_partitions) as log:
        return publish_items(log, product.ref, source_name, feed.items, feed.keys)


def run_demo(settings: Settings, events: int = 3000, seed: int = 7) -> DemoResult:
    """Every product in dependency order. The same seed gives the same changes (same keys and LSNs), so a
    second demo run re-delivers them and must leave the current state unchanged."""
    result = DemoResult()
    keys_by_table: dict[str, tuple[str, ...]] = {}
    for offset, product in enumerate(dependency_order(discover(settings.domains_dir))):
        pipeline = load_pipeline(product.pipeline_path)
        if isinstance(pipeline, ChangeFeedPipeline) and product.contract.source is not None:
            related = _related_table(product)
            feed, published = simulate_and_publish(
                settings, product, events, seed + offset, keys_by_table.get(related) if related else None
            )
            keys_by_table[product.contract.table_name] = tuple(sorted(feed.all_keys))
            result.feeds[product.ref] = feed
            result.published[product.ref] = published
        result.summaries.append(run_product(settings, product))
    return result
