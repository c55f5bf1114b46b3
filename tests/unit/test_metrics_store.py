"""The metrics store keeps run summaries and metric points, newest run first, safely shared."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path

from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore, metric_points


def _summary(product: str = "customers/users", minute: int = 0, **changes: object) -> RunSummary:
    values: dict[str, object] = {
        "product": product,
        "run_id": str(uuid.uuid4()),
        "started_at": f"2026-03-01T10:{minute:02d}:00+00:00",
        "ended_at": f"2026-03-01T10:{minute:02d}:30+00:00",
        "status": "completed",
        "events_in": 100 + minute,
        "duplicates_dropped": 2,
        "dead_letters": 3,
        "dead_letters_by_reason": {"cpf: does not match ^[0-9]{11}$": 3},
        "rows_written": {"changelog": 95 + minute, "current": 80},
        "outputs": {"changelog": "duckdb://warehouse.duckdb/customers.users_changelog"},
        "freshness_seconds": 42.5,
        "duration_seconds": 30.0,
    }
    values.update(changes)
    return RunSummary(**values)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    summary = _summary()
    store.record(summary)
    assert store.runs() == [summary]
    assert store.latest("customers/users") == summary
    assert store.latest("payments/transactions") is None


def test_runs_are_newest_first_and_filtered(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    middle, newest, oldest = _summary(minute=5), _summary(minute=9), _summary(minute=1)
    other = _summary("payments/transactions", minute=7)
    for summary in (middle, newest, other, oldest):
        store.record(summary)
    assert store.runs("customers/users") == [newest, middle, oldest]
    assert store.runs("customers/users", limit=2) == [newest, middle]
    assert store.runs() == [newest, other, middle, oldest]
    assert store.latest("customers/users") == newest
    assert store.latest_by_product() == {"customers/users": newest, "payments/transactions": other}


def test_points_per_figure(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    first, second = _summary(minute=1), _summary(minute=2, freshness_seconds=None)
    store.record(second)
    store.record(first)
    assert store.points("customers/users", "events_in") == [(first.ended_at, 101.0), (second.ended_at, 102.0)]
    assert store.points("customers/users", "rows_written.changelog") == [
        (first.ended_at, 96.0),
        (second.ended_at, 97.0),
    ]
    assert store.points("customers/users", "freshness_seconds") == [(first.ended_at, 42.5)]  # None is no point
    assert store.points("customers/users", "nope") == []
    assert set(metric_points(first)) == {
        "events_in",
        "dead_letters",
        "duplicates_dropped",
        "rows_written.changelog",
        "rows_written.current",
        "freshness_seconds",
        "duration_seconds",
        "replayed",
        "retries",
    }
    with_lag = replace(first, throughput_eps=50.0, merge_seconds=0.2, lag_by_partition={"0": 3, "1": 0})
    assert {"throughput_eps", "merge_seconds", "lag.partition.0", "lag.partition.1"} <= set(metric_points(with_lag))


def test_recording_a_run_again_replaces_it(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    summary = _summary()
    store.record(summary)
    store.record(_summary(run_id=summary.run_id, events_in=7))
    assert [r.events_in for r in store.runs()] == [7]
    assert store.points("customers/users", "events_in") == [(summary.ended_at, 7.0)]


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "metrics.sqlite"
    store = MetricsStore(path)
    assert store.runs() == []
    assert store.latest("customers/users") is None
    assert store.latest_by_product() == {}
    assert store.points("customers/users", "events_in") == []
    assert not path.exists()


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite"
    MetricsStore(path).record(_summary())
    errors: list[BaseException] = []

    def work(product: str) -> None:
        try:
            store = MetricsStore(path)  # each worker its own store, as separate processes would have
            for minute in range(10):
                store.record(_summary(product, minute=minute))
                store.runs(limit=5)
                store.points(product, "events_in")
        except BaseException as exc:  # pragma: no cover - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"domain/p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(MetricsStore(path).runs()) == 41


def test_relay_runs_are_kept_apart_from_pipeline_runs(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.sqlite")
    pipeline = _summary(minute=1)
    relay = replace(_summary(minute=2), run_id="relay-1", stage="relay", request_units=120.0, rows_written={"bus": 3})
    store.record(pipeline)
    store.record(relay)
    assert [r.run_id for r in store.runs("customers/users")] == [pipeline.run_id]
    assert [r.run_id for r in store.runs("customers/users", stage="relay")] == ["relay-1"]
    assert store.latest_by_product()["customers/users"].run_id == pipeline.run_id
    assert store.points("customers/users", "relay.request_units") == [(relay.ended_at, 120.0)]
    assert store.points("customers/users", "events_in") == [(pipeline.ended_at, 101.0)]
