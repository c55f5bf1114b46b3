"""`bus_format: avro`: change events travel as Avro with a registered schema (Confluent wire format on
the local log) and the pipeline reads them into the same tables as JSON; events whose schema the
registry does not know are segregated as dead letters with the reason."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ROOT

from meshkit.config import Settings, load_settings
from meshkit.products.discovery import find_product
from pipelines.runners.local import run_product
from pipelines.serde.bus import avro_producer
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables
from pipelines.sources.local_relay import publish_items
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig
from pipelines.topics import topic_of
from pipelines.transports.local_log import LocalEventLog

pytestmark = pytest.mark.e2e
PRODUCT = "payments/transactions"


def workspace(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> Settings:
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "avro-bus-test-masking-key-0123456789abcdef")
    return load_settings(ROOT, overrides={"workspace": str(tmp_path / name), **overrides}, environ={})


def current(settings: Settings) -> pa.Table:
    table = DuckDBWarehouse(settings.warehouse_path).read(WarehouseTables.of("payments", "transactions"), "current")
    volatile = [c for c in ("_ingested_at", "_run_id", "_partition", "_offset") if c in table.column_names]
    return table.drop_columns(volatile).sort_by("_key")


def test_avro_on_the_bus_gives_the_same_tables_and_segregates_unknown_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = find_product(ROOT / "domains", PRODUCT)
    config = SimulationConfig(events=800, seed=9, start=datetime(2026, 11, 26, tzinfo=UTC), malformed_rate=0)
    feed = ChangeFeedSimulator(product.contract, config).generate()

    avro = workspace(tmp_path, "avro", monkeypatch, bus_format="avro")
    log = LocalEventLog(avro.eventlog_dir, topic_of(product), avro.eventlog_partitions)
    producer = avro_producer(product.contract, log, avro, topic_of(product))
    try:
        publish_items(producer, product.ref, "test", feed.items, feed.keys)
        assert producer.fallbacks == 0
        # an event framed with a schema id nobody registered: segregated, never decoded as something else
        log.publish([("k-unknown", b"\x00" + struct.pack(">I", 999_999) + b"\x02", {})])
    finally:
        producer.close()
    summary = run_product(avro, product)
    assert summary.dead_letters_by_reason.get("unknown-schema") == 1

    plain = workspace(tmp_path, "json", monkeypatch)
    with LocalEventLog(plain.eventlog_dir, topic_of(product), plain.eventlog_partitions) as json_log:
        publish_items(json_log, product.ref, "test", feed.items, feed.keys)
    reference = run_product(plain, product)
    assert summary.events_in == reference.events_in + 1
    assert current(avro).equals(current(plain))
