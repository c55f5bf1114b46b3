"""`meshkit relay <product>` wired up: the product's Cosmos DB container, its leases and checkpoints,
the configured bus, and the relay's lineage run and metrics.

Where things live per profile: checkpoints and leases in the workspace (`file`) or Azure Blob
(`blob`, Azurite in the emulators profile); the bus is the local log, a Kafka broker (Event Hubs'
Kafka surface) or Event Hubs over AMQP, chosen by `bus`.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from meshkit.config import Settings
from meshkit.contracts.model import SourceSpec
from meshkit.errors import ConfigError, Location
from meshkit.products.model import DataProduct
from monitoring.lineage.naming import DatasetName, cosmos_dataset
from monitoring.metrics.run import RunSummary
from pipelines.checkpoints.leases import Lease, LeaseManager
from pipelines.sources.cosmos import relay as relay_module
from pipelines.sources.cosmos.feed import StartFrom
from pipelines.sources.cosmos.relay import Relay, RelayOptions, RelayReport
from pipelines.sources.relay_run import RELAY_OUTPUT, RELAY_STAGE, run_recorded
from pipelines.topics import bus_dataset, topic_of


def default_owner() -> str:
    """A lease owner name unique per process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def cosmos_source(product: DataProduct) -> SourceSpec:
    source = product.contract.source
    if source is None or source.kind != "cosmosdb":
        raise ConfigError(
            f"{product.ref} has no Cosmos DB source server to relay",
            location=Location(str(product.contract_path), field="servers"),
            hint="Add a server with customProperties sourceKind: cosmosdb, container and partitionKeyPath.",
        )
    if not source.container:
        raise ConfigError(
            f"the Cosmos DB server of {product.ref} names no container",
            location=Location(str(product.contract_path), field="servers[].customProperties.container"),
            hint="Add `- property: container` with the container's name.",
        )
    return source


def lease_manager(settings: Settings, product: DataProduct, owner: str | None = None) -> LeaseManager:
    from pipelines.checkpoints.factory import open_store

    store = open_store(settings, f"relay-{product.domain}.{product.name}")
    return LeaseManager(store, "leases/", owner or default_owner(), settings.relay_lease_seconds)


def relay_datasets(settings: Settings, product: DataProduct) -> tuple[dict[str, DatasetName], dict[str, DatasetName]]:
    source = cosmos_source(product)
    port = product.descriptor.inputPorts[0].name if product.descriptor.inputPorts else "source"
    inputs = {port: cosmos_dataset(source.account or "account", source.database or "db", source.container or "c")}
    return inputs, {RELAY_OUTPUT: bus_dataset(settings, topic_of(product))}


def run_relay(
    settings: Settings, product: DataProduct, options: RelayOptions, owner: str | None = None
) -> tuple[RelayReport, RunSummary]:
    """Run the relay until it is stopped, caught up (`until_caught_up`) or out of time."""
    from pipelines.sources.cosmos.backfill import snapshot
    from pipelines.sources.cosmos.feed import ChangeFeedReader, open_container
    from pipelines.transports.factory import open_transport, transport_spec

    source = cosmos_source(product)
    if settings.profile == "local" and not settings.cosmos_endpoint:
        raise ConfigError(
            "the local profile has no Cosmos DB to relay from",
            hint=f"Use `meshkit simulate {product.ref} --publish` for a simulated feed, or set cosmos_endpoint "
            "(MESHKIT_COSMOS_ENDPOINT) and the emulators or cloud profile.",
        )
    all_versions = source.change_feed_mode.lower() == "allversionsanddeletes"
    mode: Literal["LatestVersion", "AllVersionsAndDeletes"] = (
        "AllVersionsAndDeletes" if all_versions else "LatestVersion"
    )
    options = _start_for_mode(options, mode, product)
    container = open_container(settings, source)
    path = source.partition_key_path or "/id"
    reader = ChangeFeedReader(container, path, mode, max_items=min(settings.batch_size, 1000))
    leases = lease_manager(settings, product, owner)
    transport = open_transport(transport_spec(settings, topic_of(product)))
    if settings.bus_format == "avro":  # registered schema, Confluent or Azure framing; JSON otherwise
        from pipelines.serde.bus import avro_producer

        transport = avro_producer(product.contract, transport, settings, topic_of(product))
    source_name = f"cosmosdb:{source.account}/{source.database or settings.cosmos_database}/{source.container}"
    relay = Relay(
        product=product.ref,
        source=source_name,
        reader=reader,
        snapshot=lambda rng, continuation: snapshot(container, rng, path, continuation),
        leases=leases,
        transport=transport,
        options=options,
        lease_seconds=settings.relay_lease_seconds,
    )
    inputs, _ = relay_datasets(settings, product)
    return run_recorded(
        settings, product, relay, inputs=inputs, code=Path(relay_module.__file__),
        read=lambda report: report.items_read,
        summarize=lambda run_id, started, report: relay_run_summary(product.ref, run_id, started, report),
        closing=(transport,),
    )  # fmt: skip


def _start_for_mode(
    options: RelayOptions, mode: Literal["LatestVersion", "AllVersionsAndDeletes"], product: DataProduct
) -> RelayOptions:
    """All-versions-and-deletes feeds start only from now (or a checkpoint): the service keeps no history
    to replay from the beginning or a point in time. `--backfill` brings the existing documents."""
    if options.start is None:
        start = StartFrom("now") if mode == "AllVersionsAndDeletes" else StartFrom("beginning")
        return dataclasses.replace(options, start=start)
    if mode == "AllVersionsAndDeletes" and options.start.kind != "now":
        raise ConfigError(
            f"{product.ref} reads the change feed in all-versions-and-deletes mode, which can start only from now",
            location=Location(str(product.contract_path), field="servers[].customProperties.changeFeedMode"),
            hint="Drop --start (it defaults to now in this mode) and add --backfill to publish the documents that "
            "already exist; or read in latestVersion mode, which can start from the beginning or a time.",
        )
    return options


def relay_run_summary(product: str, run_id: str, started: datetime, report: RelayReport) -> RunSummary:
    lags = {rid: s.lag.lsn_lag for rid, s in sorted(report.ranges.items()) if s.lag and s.lag.lsn_lag is not None}
    behind = [s.lag.seconds_behind for s in report.ranges.values() if s.lag and s.lag.seconds_behind is not None]
    return RunSummary(
        product=product,
        run_id=run_id,
        started_at=started.isoformat(),
        ended_at=datetime.now(UTC).isoformat(),
        status="completed",
        events_in=report.items_read,
        duplicates_dropped=0,
        dead_letters=0,
        rows_written={"bus": report.published},
        duration_seconds=round(report.seconds, 3),
        throughput_eps=round(report.items_read / report.seconds, 1) if report.seconds > 0 else None,
        stage=RELAY_STAGE,
        request_units=round(report.request_units, 2),
        retries=report.retries,
        lag_by_partition=lags,
        max_source_lag_seconds=max(behind) if behind else None,
        ownership_changes=report.ownership_changes,
    )


def lease_table(settings: Settings, product: DataProduct) -> list[Lease]:
    """The leases of the product's relay as stored (owner, expiry, progress and lag per feed range)."""
    return sorted(lease_manager(settings, product, owner="status-reader").all(), key=lambda lease: lease.range_id)
