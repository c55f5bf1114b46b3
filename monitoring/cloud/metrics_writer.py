"""Write a run's figures to Cloud Monitoring as custom metrics, within the API's write rules.

Rules kept (Cloud Monitoring quotas): at most 200 time series per CreateTimeSeries request and one point
per series in a request; a series' points in time order, their end times at least 5 s apart. A point
that would come within 5 s of the series' previous one is re-stamped 5 s after it, and held back
(`deferred`) until that moment has passed; a later reading of the same series replaces a held-back
one (counters lose nothing: their value is a running total; a gauge keeps its newest reading). A
reading older than one already written is dropped and reported as stale. Only UNAVAILABLE and
DEADLINE_EXCEEDED are retried, with exponential backoff and full jitter; everything else is a
configuration or data error that a retry cannot fix.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from meshkit.errors import TerminalError, TransientError
from monitoring.cloud.catalog import (
    COMMON_LABELS,
    CUSTOM_METRICS,
    MONITORED_RESOURCE,
    CustomMetric,
    MetricsResource,
    metric,
)
from monitoring.metrics.run import RunSummary
from monitoring.slo.budget import observations, parse_time
from monitoring.slo.model import Objective

logger = logging.getLogger(__name__)

MAX_SERIES_PER_REQUEST = 200
MIN_POINT_SPACING = timedelta(seconds=5)
RETRIED_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
RUN_STATUSES = frozenset({"completed", "failed"})

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # metric name, sorted labels


@dataclass(frozen=True)
class Figure:
    """A reading a `RunSummary` does not carry (MERGE duration, partition lag, retries, request units).
    For a CUMULATIVE metric the value is the run's total so far, like the summary's counts."""

    metric: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class WriteReport:
    """What one `write` or `flush` did."""

    requests: int = 0
    series_written: int = 0
    retries: int = 0
    deferred: int = 0  # points held back by the 5 s rule, still pending after this call
    stale: list[str] = field(default_factory=list)  # series whose reading was older than one written

    def add(self, other: WriteReport) -> None:
        self.requests += other.requests
        self.series_written += other.series_written
        self.retries += other.retries
        self.deferred = other.deferred
        self.stale.extend(other.stale)


class MetricWriteUnavailable(TransientError):
    """Cloud Monitoring stayed unavailable through every retry; the points stay pending."""


class MetricWriteRejected(TerminalError):
    """Cloud Monitoring refused the points (permissions, quota, malformed series)."""


@dataclass(frozen=True)
class _Point:
    metric: CustomMetric
    labels: tuple[tuple[str, str], ...]
    value: float
    end: datetime
    start: datetime | None  # CUMULATIVE only


def _default_task_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CloudMonitoringMetricsWriter:
    """Custom metrics of runs through a `monitoring_v3.MetricServiceClient` handed in by the caller.

    Counters are CUMULATIVE with one start time per series and writer: each run adds its counts to the
    running total (a run reported again, e.g. as it progresses, replaces its own earlier contribution).
    """

    def __init__(
        self,
        client: Any,
        project_id: str,
        *,
        environment: str,
        location: str = "global",
        task_id: str | None = None,
        objectives: Sequence[Objective] = (),
        timeout: float = 30.0,
        max_attempts: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 20.0,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.project_id = project_id
        self.environment = environment
        self.location = location
        self.task_id = task_id or _default_task_id()
        self._objectives = tuple(o for o in objectives if o.kind != "frequency")  # frequency is time-based
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._clock = clock
        self._sleep = sleep
        self._pending: dict[SeriesKey, _Point] = {}
        self._last_end: dict[SeriesKey, datetime] = {}  # end time of the last point written (re-stamped)
        self._last_seen: dict[SeriesKey, datetime] = {}  # newest reading accepted (as observed)
        self._series_start: dict[SeriesKey, datetime] = {}
        self._closed_runs: dict[SeriesKey, float] = {}  # counter total of runs already superseded
        self._current_run: dict[SeriesKey, tuple[str, float]] = {}  # (run id, its count) per counter

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- readings -------------------------------------------------------------------------------

    def write(self, summary: RunSummary, extra: Iterable[Figure] = ()) -> WriteReport:
        """Queue the run's readings and write every point that is due (see the module docstring)."""
        report = WriteReport()
        end = parse_time(summary.ended_at) if summary.ended_at else self._clock()
        start = min(parse_time(summary.started_at), end - timedelta(seconds=1))
        domain = summary.product.split("/", 1)[0]
        common = {"product": summary.product, "domain": domain, "environment": self.environment}
        for name, labels, reading in [*self._summary_readings(summary, end), *self._extra_readings(extra)]:
            m = metric(name)
            key: SeriesKey = (name, tuple(sorted({**common, **labels}.items())))
            seen = self._last_seen.get(key)
            if seen is not None and end < seen:
                report.stale.append(_describe(key))
                continue
            self._last_seen[key] = end
            value = reading
            if m.kind == "CUMULATIVE":
                value = self._running_total(key, summary.run_id, reading)
                series_start: datetime | None = self._series_start.setdefault(key, start)
            else:
                series_start = None
            queued = self._pending.get(key)
            point_end = max(end, queued.end) if queued else end
            self._pending[key] = _Point(m, key[1], value, point_end, series_start)
        report.add(self._send_due())
        return report

    def flush(self) -> WriteReport:
        """Write every pending point, waiting out the 5 s spacing where a series needs it."""
        report = WriteReport()
        while self._pending:
            earliest = min(self._due_time(k, p) for k, p in self._pending.items())
            wait = (earliest - self._clock()).total_seconds()
            if wait > 0:
                self._sleep(wait)
            report.add(self._send_due())
        return report

    def _summary_readings(self, s: RunSummary, end: datetime) -> Iterator[tuple[str, dict[str, str], float]]:
        yield "events_in", {}, s.events_in
        yield "duplicates_dropped", {}, s.duplicates_dropped
        yield "replayed", {}, s.replayed
        reasons = dict(s.dead_letters_by_reason)
        unexplained = s.dead_letters - sum(reasons.values())
        if unexplained > 0:
            reasons["unspecified"] = reasons.get("unspecified", 0) + unexplained
        for reason, count in reasons.items():
            yield "dead_letters", {"reason": reason}, count
        for output, rows in s.rows_written.items():
            yield "rows_written", {"output": output}, rows
        if s.status in RUN_STATUSES:
            yield "runs", {"status": s.status}, 1
        if s.status == "completed":
            yield "last_success_time_seconds", {}, end.timestamp()
        for name in ("freshness_seconds", "max_source_lag_seconds"):
            value = getattr(s, name)
            if value is not None:
                yield name, {}, value
        yield "duration_seconds", {}, s.duration_seconds
        if s.merge_seconds is not None:
            yield "merge_duration_seconds", {}, s.merge_seconds
        if s.throughput_eps is not None:
            yield "throughput_events_per_second", {}, s.throughput_eps
        for partition, backlog in s.lag_by_partition.items():
            yield "partition_backlog_events", {"partition": partition}, backlog
        for objective in self._objectives:
            if objective.product != s.product:
                continue
            seen = observations(objective, [s])
            if seen:
                yield "slo_good", {"slo": objective.kind}, sum(o.good for o in seen)
                yield "slo_total", {"slo": objective.kind}, sum(o.total for o in seen)

    def _extra_readings(self, extra: Iterable[Figure]) -> Iterator[tuple[str, dict[str, str], float]]:
        for figure in extra:
            m = metric(figure.metric)
            if set(figure.labels) != set(m.labels):
                raise MetricWriteRejected(
                    f"metric {m.name!r} takes the labels {list(m.labels)}, got {sorted(figure.labels)}",
                    hint=f"The labels {list(COMMON_LABELS)} are added by the writer; give only the others.",
                )
            yield m.name, dict(figure.labels), figure.value

    def _running_total(self, key: SeriesKey, run_id: str, run_value: float) -> float:
        previous = self._current_run.get(key)
        if previous is not None and previous[0] != run_id:
            self._closed_runs[key] = self._closed_runs.get(key, 0.0) + previous[1]
            previous = None
        count = max(run_value, previous[1]) if previous else run_value  # a counter never goes down
        self._current_run[key] = (run_id, count)
        return self._closed_runs.get(key, 0.0) + count

    # --- requests -------------------------------------------------------------------------------

    def _due_time(self, key: SeriesKey, point: _Point) -> datetime:
        last = self._last_end.get(key)
        return point.end if last is None else max(point.end, last + MIN_POINT_SPACING)

    def _send_due(self) -> WriteReport:
        report = WriteReport()
        now = self._clock()
        due: list[tuple[SeriesKey, _Point]] = []
        for key, point in self._pending.items():
            stamp = self._due_time(key, point)
            if stamp > point.end and stamp > now:  # re-stamped into the future: wait for it
                continue
            due.append((key, replace(point, end=stamp)))
        for first in range(0, len(due), MAX_SERIES_PER_REQUEST):
            batch = due[first : first + MAX_SERIES_PER_REQUEST]
            self._create([self._time_series(point) for _, point in batch], report)
            for key, point in batch:
                self._last_end[key] = point.end
                del self._pending[key]
        report.deferred = len(self._pending)
        return report

    def _create(self, series: list[Any], report: WriteReport) -> None:
        from google.api_core import exceptions as api_exceptions

        delay = self._initial_backoff
        timed_out = False
        for attempt in range(1, self._max_attempts + 1):
            try:
                # retry=None: the SDK's own retry is off, so the policy here is the only one
                self._client.create_time_series(
                    name=f"projects/{self.project_id}", time_series=series, retry=None, timeout=self._timeout
                )
            except api_exceptions.GoogleAPICallError as exc:
                code = getattr(getattr(exc, "grpc_status_code", None), "name", "UNKNOWN")
                if code == "INVALID_ARGUMENT" and timed_out:
                    # the timed-out attempt was written after all: its points are now "out of order"
                    logger.warning("points of a timed-out request were already written: %s", exc.message)
                    break
                if code not in RETRIED_CODES:
                    raise MetricWriteRejected(
                        f"Cloud Monitoring refused {len(series)} time series ({code}): {exc.message}",
                        hint="Check the project id, the monitoring.timeSeries.create permission and the series "
                        "named in the message; a retry would be refused again.",
                    ) from exc
                if attempt == self._max_attempts:
                    raise MetricWriteUnavailable(
                        f"Cloud Monitoring answered {code} {attempt} times for {len(series)} time series",
                        hint="The points stay pending and go out with the next write or flush().",
                    ) from exc
                timed_out = timed_out or code == "DEADLINE_EXCEEDED"
                report.retries += 1
                self._sleep(random.uniform(0.0, delay))  # noqa: S311 - jitter, not security
                delay = min(delay * 2, self._max_backoff)
                continue
            break
        report.requests += 1
        report.series_written += len(series)

    def _time_series(self, point: _Point) -> Any:
        from google.api import metric_pb2
        from google.cloud import monitoring_v3

        labels = dict(point.labels)
        resource = MetricsResource(
            project_id=self.project_id,
            location=self.location,
            namespace=f"meshkit-{self.environment}",
            job=labels["product"],
            task_id=self.task_id,
        )
        m = point.metric
        interval: dict[str, datetime] = {"end_time": point.end}
        if point.start is not None:
            interval["start_time"] = point.start
        value = {"int64_value": round(point.value)} if m.value_type == "INT64" else {"double_value": point.value}
        return monitoring_v3.TimeSeries(
            metric={"type": m.type, "labels": labels},
            resource={"type": MONITORED_RESOURCE, "labels": resource.labels()},
            metric_kind=metric_pb2.MetricDescriptor.MetricKind.Value(m.kind),
            value_type=metric_pb2.MetricDescriptor.ValueType.Value(m.value_type),
            unit=m.unit,
            points=[monitoring_v3.Point(interval=interval, value=value)],
        )

    # --- descriptors ----------------------------------------------------------------------------

    def ensure_descriptors(self) -> list[str]:
        """Create (or update) the descriptors of every meshkit metric, with units, labels and
        descriptions, so the first write does not auto-create a bare one. Returns the metric types."""
        from google.api import label_pb2, metric_pb2

        for m in CUSTOM_METRICS.values():
            descriptor = metric_pb2.MetricDescriptor(
                type=m.type,
                metric_kind=metric_pb2.MetricDescriptor.MetricKind.Value(m.kind),
                value_type=metric_pb2.MetricDescriptor.ValueType.Value(m.value_type),
                unit=m.unit,
                description=m.description,
                display_name=f"meshkit {m.name.replace('_', ' ')}",
                labels=[label_pb2.LabelDescriptor(key=key, value_type="STRING") for key in m.label_keys],
                monitored_resource_types=[MONITORED_RESOURCE],
            )
            self._client.create_metric_descriptor(name=f"projects/{self.project_id}", metric_descriptor=descriptor)
        return [m.type for m in CUSTOM_METRICS.values()]


def _describe(key: SeriesKey) -> str:
    name, labels = key
    return f"{name}{{{', '.join(f'{k}={v}' for k, v in labels)}}}"
