"""`run_product(..., streaming=...)`: the unbounded bus source, windows of enqueue time, and offsets
committed per window only after every sink wrote it; against the same events read bounded."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ROOT

from meshkit.config import Settings, load_settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import find_product
from pipelines.demo import publish_feed
from pipelines.runners.local import CONSUMER_GROUP, Streaming, run_product
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables
from pipelines.sources.simulator import ChangeFeedSimulator, SimulatedFeed, SimulationConfig
from pipelines.topics import topic_of
from pipelines.transports.local_log import LocalEventLog

pytestmark = pytest.mark.e2e
PRODUCT = "payments/transactions"
FAST = Streaming(window_seconds=1.0, idle_stop_seconds=2.5, poll_seconds=0.1)


def feed(events: int, seed: int) -> SimulatedFeed:
    product = find_product(ROOT / "domains", PRODUCT)
    start = datetime(2026, 11, 26, tzinfo=UTC)
    return ChangeFeedSimulator(product.contract, SimulationConfig(events=events, seed=seed, start=start)).generate()


def workspace(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "streaming-test-masking-key-0123456789abcdef")
    return load_settings(ROOT, overrides={"workspace": str(tmp_path / name)}, environ={})


def current(settings: Settings) -> pa.Table:
    table = DuckDBWarehouse(settings.warehouse_path).read(WarehouseTables.of("payments", "transactions"), "current")
    volatile = [c for c in ("_ingested_at", "_run_id", "_partition", "_offset") if c in table.column_names]
    return table.drop_columns(volatile).sort_by("_key")


def offsets(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    product = find_product(settings.domains_dir, PRODUCT)
    with LocalEventLog(settings.eventlog_dir, topic_of(product), settings.eventlog_partitions) as log:
        return log.committed(CONSUMER_GROUP), log.end_offsets()


def test_streaming_commits_after_the_sinks_and_matches_a_bounded_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = feed(1500, seed=3), feed(700, seed=4)
    streamed = workspace(tmp_path, "streamed", monkeypatch)
    product = find_product(streamed.domains_dir, PRODUCT)
    publish_feed(streamed, product, first)

    def publish_later() -> None:  # events that arrive while the stream runs
        time.sleep(1.0)
        publish_feed(streamed, product, second)

    later = threading.Thread(target=publish_later)
    later.start()
    summary = run_product(streamed, product, streaming=FAST)
    later.join()
    committed, end = offsets(streamed)
    assert sum(end.values()) == len(first.items) + len(second.items)
    assert committed == {p: e for p, e in end.items() if e}  # everything read was committed, after the sinks
    assert summary.events_in == sum(end.values())
    assert summary.events_in == summary.rows_written["changelog"] + summary.dead_letters + summary.duplicates_dropped

    bounded = workspace(tmp_path, "bounded", monkeypatch)
    publish_feed(bounded, product, first)
    publish_feed(bounded, product, second)
    run_product(bounded, product)
    assert current(streamed).equals(current(bounded))


def test_a_failed_streaming_run_commits_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = workspace(tmp_path, "failing", monkeypatch)
    product = find_product(settings.domains_dir, PRODUCT)
    publish_feed(settings, product, feed(400, seed=5))
    settings.warehouse_path.mkdir(parents=True)  # the warehouse cannot be opened: the sinks fail
    with pytest.raises(MeshkitError):
        run_product(settings, product, streaming=FAST)
    committed, end = offsets(settings)
    assert sum(end.values()) > 0
    assert not any(committed.values())  # nothing moved: the next run re-reads everything
