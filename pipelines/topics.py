"""Where a product's change events travel: its topic (event hub) name and the bus as a lineage dataset."""

from __future__ import annotations

from meshkit.config import Settings
from meshkit.products.model import DataProduct
from monitoring.lineage.naming import DatasetName, eventhubs_dataset, eventlog_dataset


def topic_of(product: DataProduct) -> str:
    """`<domain>.<product>`: one topic (event hub) per product."""
    return f"{product.domain}.{product.name}"


def bus_dataset(settings: Settings, topic: str) -> DatasetName:
    """The topic as an OpenLineage dataset on the configured bus (naming per the OpenLineage spec)."""
    namespace = (settings.eventhubs_namespace or "").removesuffix(".servicebus.windows.net")
    if settings.bus == "eventhubs" and namespace:
        return eventhubs_dataset(namespace, topic)
    if settings.bus == "kafka" and settings.kafka_bootstrap:
        if namespace:  # Event Hubs' Kafka surface is still the same event hub
            return eventhubs_dataset(namespace, topic)
        return DatasetName(f"kafka://{settings.kafka_bootstrap}", topic)
    return eventlog_dataset(settings.eventlog_dir, topic)
