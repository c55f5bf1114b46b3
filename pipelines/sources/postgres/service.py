"""`meshkit relay <product>` for a PostgreSQL source: the contract's server, the configured bus, the
snapshot state in the checkpoint store, and the relay's lineage run and metrics (with the slot's lag).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from meshkit.config import Settings
from meshkit.products.model import DataProduct
from monitoring.lineage.naming import DatasetName
from monitoring.metrics.run import RunSummary
from pipelines.sources.postgres.relay import PgRelayOptions, PgRelayReport, PostgresRelay
from pipelines.sources.postgres.replication import SlotLag
from pipelines.sources.postgres.source import PostgresSource
from pipelines.sources.relay_run import RELAY_STAGE

SLOT_LAG_METRIC_KEY = "slot"  # RunSummary.lag_by_partition key -> metric `relay.lag.partition.slot` (bytes)


def postgres_dataset(source: PostgresSource) -> DatasetName:
    """The table as an OpenLineage dataset (naming spec: postgres://host:port, database.schema.table)."""
    return DatasetName(f"postgres://{source.host}:{source.port}", f"{source.database}.{source.schema}.{source.table}")


def run_pg_relay(settings: Settings, product: DataProduct, options: PgRelayOptions) -> tuple[PgRelayReport, RunSummary]:
    """Run the PostgreSQL relay until it is stopped (SIGTERM/SIGINT), caught up (`until_caught_up`) or
    out of time (`max_seconds`); record its run (lineage, metrics store, Cloud Monitoring)."""
    from pipelines.sources.postgres import relay as relay_module
    from pipelines.sources.postgres.relay import snapshot_state_store
    from pipelines.sources.postgres.source import connect, postgres_source
    from pipelines.sources.relay_run import run_recorded
    from pipelines.topics import topic_of
    from pipelines.transports.factory import open_transport, transport_spec

    source = postgres_source(product)
    transport = open_transport(transport_spec(settings, topic_of(product)))
    if settings.bus_format == "avro":  # Debezium envelopes as Avro with the registered schema
        from pipelines.serde.bus import avro_producer

        transport = avro_producer(product.contract, transport, settings, topic_of(product))
    store = snapshot_state_store(settings, product)
    relay = PostgresRelay(
        settings=settings,
        source=source,
        connect=lambda replication: connect(settings, source, replication=replication),
        transport=transport,
        store=store,
        options=options,
    )
    port = product.descriptor.inputPorts[0].name if product.descriptor.inputPorts else "source"
    return run_recorded(
        settings, product, relay, inputs={port: postgres_dataset(source)}, code=Path(relay_module.__file__),
        read=lambda report: report.snapshot_rows + report.changes,
        summarize=lambda run_id, started, report: pg_relay_run_summary(product.ref, run_id, started, report),
        closing=(transport, store),
    )  # fmt: skip


def pg_relay_run_summary(product: str, run_id: str, started: datetime, report: PgRelayReport) -> RunSummary:
    read = report.snapshot_rows + report.changes
    lag = {SLOT_LAG_METRIC_KEY: report.slot_lag_bytes} if report.slot_lag_bytes is not None else {}
    return RunSummary(
        product=product,
        run_id=run_id,
        started_at=started.isoformat(),
        ended_at=datetime.now(UTC).isoformat(),
        status="completed",
        events_in=read,
        duplicates_dropped=0,
        dead_letters=0,
        rows_written={"bus": report.published},
        duration_seconds=round(report.seconds, 3),
        throughput_eps=round(read / report.seconds, 1) if report.seconds > 0 else None,
        stage=RELAY_STAGE,
        retries=report.retries,
        lag_by_partition=lag,
    )


def slot_status(settings: Settings, product: DataProduct) -> SlotLag | None:
    """The slot's lag now (None when it does not exist), warning past `postgres_max_slot_lag_bytes`:
    for `meshkit relay <product> --status` and a monitoring cron while no relay runs."""
    from pipelines.sources.postgres.replication import slot_lag, warn_if_lagging
    from pipelines.sources.postgres.source import connect, postgres_source

    source = postgres_source(product)
    with contextlib.closing(connect(settings, source)) as conn:
        lag = slot_lag(conn, source.slot)
    warn_if_lagging(settings, source, lag)
    return lag
