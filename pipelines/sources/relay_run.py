"""One relay run, whatever the source: stop signals, the lineage run (source -> bus), the run summary in
the metrics store and Cloud Monitoring. The Cosmos DB and PostgreSQL relays both run through it."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Protocol, TypeVar

from meshkit import __version__ as meshkit_version
from meshkit.config import Settings
from meshkit.products.model import DataProduct
from monitoring.cloud.publish import publish_run_metrics
from monitoring.lineage.emitter import LineageEmitter
from monitoring.lineage.facets import DatasetFigures, Engine, RunFigures
from monitoring.lineage.naming import DatasetName
from monitoring.lineage.run import LineageRun
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from pipelines.topics import bus_dataset, topic_of

RELAY_STAGE = "relay"
RELAY_OUTPUT = "bus"


class Report(Protocol):
    published: int
    bytes_published: int


R = TypeVar("R", bound=Report)


class Relay(Protocol[R]):  # type: ignore[misc]
    def run(self) -> R: ...

    def stop(self) -> None: ...


class Closeable(Protocol):
    def close(self) -> None: ...


def run_recorded(
    settings: Settings,
    product: DataProduct,
    relay: Relay[R],
    *,
    inputs: dict[str, DatasetName],
    code: Path,
    read: Callable[[R], int],
    summarize: Callable[[str, datetime, R], RunSummary],
    closing: Iterable[Closeable],
) -> tuple[R, RunSummary]:
    """Run `relay` until it stops (SIGTERM/SIGINT stop it cleanly) as the lineage job
    `<domain>.<product>.relay`; `read` counts what it read, `summarize(run_id, started, report)` makes
    its run summary; `closing` are closed whatever happens."""
    outputs = {RELAY_OUTPUT: bus_dataset(settings, topic_of(product))}
    emitter = LineageEmitter.from_settings(settings)
    previous = _on_stop_signals(relay)
    started = datetime.now(UTC)
    try:
        with LineageRun(
            emitter, product, RELAY_STAGE, inputs=inputs, outputs=outputs,
            engine=Engine("meshkit relay", meshkit_version, code=code),
        ) as lineage:  # fmt: skip
            report = relay.run()
            lineage.figures = RunFigures(
                inputs={port: DatasetFigures(rows=read(report)) for port in inputs},
                outputs={RELAY_OUTPUT: DatasetFigures(rows=report.published, size_bytes=report.bytes_published)},
            )
    finally:
        _restore_signals(previous)
        for resource in closing:
            resource.close()
        emitter.close()
    summary = summarize(lineage.run_id, started, report)
    MetricsStore(settings.metrics_path).record(summary)
    publish_run_metrics(settings, summary)  # Cloud Monitoring on the cloud profile
    return report, summary


def _on_stop_signals(relay: Relay[R]) -> dict[int, object]:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        relay.stop()

    previous: dict[int, object] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread (tests drive the relay from threads)
            previous[sig] = signal.signal(sig, stop)
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]
