"""The custom metrics meshkit writes to Cloud Monitoring: one table, read by the writer, the dashboards
and the alert policies, so a metric's type, kind and labels are stated once.

Every series carries the labels `product` (`<domain>/<product>`), `domain` and `environment`, on the
`generic_task` monitored resource (see `MetricsResource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METRIC_PREFIX = "custom.googleapis.com/meshkit/"
COMMON_LABELS = ("product", "domain", "environment")
MONITORED_RESOURCE = "generic_task"

MetricKind = Literal["GAUGE", "CUMULATIVE"]  # DELTA is not accepted for user-defined metrics
ValueType = Literal["INT64", "DOUBLE"]


@dataclass(frozen=True)
class CustomMetric:
    """One user-defined metric: `custom.googleapis.com/meshkit/<name>`."""

    name: str
    kind: MetricKind
    value_type: ValueType
    unit: str  # UCUM, as Cloud Monitoring expects: "1" for counts, "s" for seconds
    description: str
    labels: tuple[str, ...] = ()  # labels beyond COMMON_LABELS

    @property
    def type(self) -> str:
        return METRIC_PREFIX + self.name

    @property
    def promql_name(self) -> str:
        """The PromQL name Cloud Monitoring maps the type to: first `/` to `:`, other `.`/`/` to `_`."""
        domain, _, path = self.type.partition("/")
        return f"{domain.replace('.', '_')}:{path.replace('/', '_').replace('.', '_')}"

    @property
    def label_keys(self) -> tuple[str, ...]:
        return COMMON_LABELS + self.labels


# Counters are CUMULATIVE with one start time per writer process, so a reset is a new start time and
# increase()/rate() never see a counter go down; instantaneous readings are GAUGEs.
CUSTOM_METRICS: dict[str, CustomMetric] = {
    m.name: m
    for m in (
        CustomMetric("events_in", "CUMULATIVE", "INT64", "1", "Change events read from the bus."),
        CustomMetric("dead_letters", "CUMULATIVE", "INT64", "1", "Events sent to the dead-letter output.", ("reason",)),
        CustomMetric("duplicates_dropped", "CUMULATIVE", "INT64", "1", "In-run duplicates of a (key, LSN)."),
        CustomMetric("replayed", "CUMULATIVE", "INT64", "1", "Re-deliveries of a (key, LSN) already written."),
        CustomMetric("rows_written", "CUMULATIVE", "INT64", "1", "Rows written per output.", ("output",)),
        CustomMetric("runs", "CUMULATIVE", "INT64", "1", "Runs ended, by status.", ("status",)),
        CustomMetric("retries", "CUMULATIVE", "INT64", "1", "Retried calls to cloud services.", ("operation",)),
        CustomMetric("cosmos_request_units", "CUMULATIVE", "DOUBLE", "1", "Cosmos DB request units consumed."),
        CustomMetric(
            "freshness_seconds", "GAUGE", "DOUBLE", "s", "Report time minus the newest source timestamp written."
        ),
        CustomMetric(
            "max_source_lag_seconds", "GAUGE", "DOUBLE", "s", "Largest commit time minus source timestamp in a run."
        ),
        CustomMetric(
            "partition_lag_seconds", "GAUGE", "DOUBLE", "s", "Lag of the reader behind the bus.", ("partition",)
        ),
        CustomMetric(
            "partition_backlog_events", "GAUGE", "INT64", "1", "Events waiting on the bus at run start.", ("partition",)
        ),
        CustomMetric("throughput_events_per_second", "GAUGE", "DOUBLE", "1/s", "Events in per second of run."),
        CustomMetric("duration_seconds", "GAUGE", "DOUBLE", "s", "Wall-clock duration of the run."),
        CustomMetric("merge_duration_seconds", "GAUGE", "DOUBLE", "s", "Duration of the current-state MERGE."),
        CustomMetric(
            "last_success_time_seconds", "GAUGE", "DOUBLE", "s", "End of the last completed run, Unix seconds."
        ),
        CustomMetric("slo_good", "CUMULATIVE", "DOUBLE", "1", "Good observations of an SLI.", ("slo",)),
        CustomMetric("slo_total", "CUMULATIVE", "DOUBLE", "1", "All observations of an SLI.", ("slo",)),
    )
}


def metric(name: str) -> CustomMetric:
    """A catalogue entry by name; an unknown name lists the valid ones."""
    try:
        return CUSTOM_METRICS[name]
    except KeyError:
        raise KeyError(f"unknown meshkit metric {name!r}; valid metrics are: {', '.join(CUSTOM_METRICS)}") from None


@dataclass(frozen=True)
class MetricsResource:
    """The `generic_task` resource a writer reports as. `task_id` identifies the writing process, so two
    workers of one product never write the same series (each series takes one point per 5 s, in order)."""

    project_id: str
    location: str  # a GCP region or zone, e.g. "southamerica-east1"; "global" when not regional
    namespace: str  # "meshkit-<environment>"
    job: str  # "<domain>/<product>"
    task_id: str  # "<host>-<pid>" by default

    def labels(self) -> dict[str, str]:
        return {
            "project_id": self.project_id,
            "location": self.location,
            "namespace": self.namespace,
            "job": self.job,
            "task_id": self.task_id,
        }
