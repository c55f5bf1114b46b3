"""The real google-cloud-monitoring clients against the gRPC Cloud Monitoring fake: what meshkit sends.

Custom metrics (types, kinds, labels, values, batching, the 5 s rule, retries), burn-rate alert
policies with their notification channels, and dashboards. Google credential discovery is switched
off for the whole session: every client reaches the fake through an insecure channel handed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from conftest import ROOT, require_emulator  # tests/conftest.py: importable under `pytest` and `python -m pytest`

from meshkit.products.discovery import discover, find_product
from monitoring.cloud.alerts import product_alert_document, publish_alert_policies
from monitoring.cloud.catalog import CUSTOM_METRICS
from monitoring.cloud.dashboards import mesh_dashboard, product_dashboard, publish_dashboards
from monitoring.cloud.metrics_writer import (
    CloudMonitoringMetricsWriter,
    Figure,
    MetricWriteRejected,
    MetricWriteUnavailable,
)
from monitoring.metrics.run import RunSummary
from monitoring.slo.model import Objective

pytestmark = pytest.mark.emulator
PROJECT = "meshkit-test"
PRODUCT = "payments/transactions"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def cloud_monitoring() -> Iterator[object]:
    try:
        import google.auth
        import grpc  # noqa: F401
        from cloud_monitoring_fake import CloudMonitoringFake  # beside this file
    except ImportError as exc:
        require_emulator("cloud-monitoring-fake", False, f"grpcio or a Google client is not installed: {exc}")
    fake = CloudMonitoringFake()
    with mock.patch.object(google.auth, "default", side_effect=AssertionError("no credential discovery in tests")):
        fake.start()
        try:
            yield fake
        finally:
            fake.stop()


@pytest.fixture
def fake(cloud_monitoring):
    cloud_monitoring.reset()
    return cloud_monitoring


class Clock:
    """A settable clock whose sleep moves time on, recording each wait."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def summary(run_id: str, end: datetime, **changes) -> RunSummary:
    figures = {
        "product": PRODUCT,
        "run_id": run_id,
        "started_at": (end - timedelta(minutes=5)).isoformat(),
        "ended_at": end.isoformat(),
        "status": "completed",
        "events_in": 1000,
        "duplicates_dropped": 4,
        "dead_letters": 6,
        "dead_letters_by_reason": {"pattern": 5, "required": 1},
        "rows_written": {"changelog": 990, "current": 700},
        "freshness_seconds": 42.5,
        "max_source_lag_seconds": 120.0,
        "duration_seconds": 300.0,
    }
    return RunSummary(**{**figures, **changes})


def objective(kind: str, target: float = 0.999, threshold: float | None = None) -> Objective:
    return Objective(PRODUCT, kind, target, 30, threshold, kind, f"{kind} objective")  # type: ignore[arg-type]


def writer(fake, clock: Clock, **options) -> CloudMonitoringMetricsWriter:
    return CloudMonitoringMetricsWriter(
        fake.metric_client(),
        PROJECT,
        environment="test",
        location="southamerica-east1",
        task_id="worker-1",
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def written(fake) -> dict[tuple[str, frozenset], object]:
    """Every series of every CreateTimeSeries request: (metric name, metric labels) -> TimeSeries."""
    found = {}
    for request in fake.requests["CreateTimeSeries"]:
        for ts in request.time_series:
            name = ts.metric.type.removeprefix("custom.googleapis.com/meshkit/")
            found[(name, frozenset(ts.metric.labels.items()))] = ts
    return found


def value(ts) -> float:
    point = ts.points[0].value
    return point.int64_value if "int64_value" in point else point.double_value


def test_a_run_becomes_custom_metrics_with_kinds_labels_and_values(fake):
    clock = Clock(T0 + timedelta(minutes=1))
    objectives = [objective("validity"), objective("freshness", threshold=300.0), objective("availability")]
    report = writer(fake, clock, objectives=objectives).write(summary("run-1", T0))

    series = written(fake)
    assert report.requests == 1 and report.series_written == len(series) and not report.stale
    common = {("product", PRODUCT), ("domain", "payments"), ("environment", "test")}
    for (name, labels), ts in series.items():
        m = CUSTOM_METRICS[name]
        assert common <= labels and {k for k, _ in labels} == set(m.label_keys)
        assert ts.resource.type == "generic_task"
        assert dict(ts.resource.labels) == {
            "project_id": PROJECT,
            "location": "southamerica-east1",
            "namespace": "meshkit-test",
            "job": PRODUCT,
            "task_id": "worker-1",
        }
        kind = {1: "GAUGE", 3: "CUMULATIVE"}[ts.metric_kind]
        assert kind == m.kind, name
        assert ts.points[0].interval.end_time == T0
        if kind == "CUMULATIVE":
            assert ts.points[0].interval.start_time == T0 - timedelta(minutes=5)

    def one(name: str, **labels: str) -> float:
        return value(series[(name, frozenset(common | set(labels.items())))])

    assert one("events_in") == 1000
    assert one("dead_letters", reason="pattern") == 5 and one("dead_letters", reason="required") == 1
    assert one("rows_written", output="changelog") == 990 and one("rows_written", output="current") == 700
    assert one("runs", status="completed") == 1
    assert one("freshness_seconds") == 42.5 and one("max_source_lag_seconds") == 120.0
    assert one("last_success_time_seconds") == T0.timestamp()
    # the SLI counters follow monitoring.slo.budget: validity counts events, freshness and availability runs
    assert (one("slo_good", slo="validity"), one("slo_total", slo="validity")) == (994, 1000)
    assert (one("slo_good", slo="freshness"), one("slo_total", slo="freshness")) == (1, 1)
    assert (one("slo_good", slo="availability"), one("slo_total", slo="availability")) == (1, 1)


def test_throughput_merge_time_and_bus_backlog_are_written(fake):
    clock = Clock(T0 + timedelta(minutes=1))
    run = summary("run-2", T0, throughput_eps=250.0, merge_seconds=1.5, lag_by_partition={"0": 12, "3": 0})
    writer(fake, clock).write(run)
    series = written(fake)
    common = {("product", PRODUCT), ("domain", "payments"), ("environment", "test")}
    assert value(series[("throughput_events_per_second", frozenset(common))]) == 250.0
    assert value(series[("merge_duration_seconds", frozenset(common))]) == 1.5
    backlog = {
        dict(labels)["partition"]: value(ts)
        for (name, labels), ts in series.items()
        if name == "partition_backlog_events"
    }
    assert backlog == {"0": 12, "3": 0}


def test_requests_hold_at_most_200_series_with_one_point_each(fake):
    clock = Clock(T0 + timedelta(minutes=1))
    lags = [Figure("partition_lag_seconds", float(p), {"partition": str(p)}) for p in range(450)]
    report = writer(fake, clock).write(summary("run-1", T0), extra=lags)

    sizes = [len(r.time_series) for r in fake.requests["CreateTimeSeries"]]
    assert max(sizes) <= 200 and len(sizes) == 3 and sum(sizes) == report.series_written
    for request in fake.requests["CreateTimeSeries"]:
        keys = [(ts.metric.type, tuple(sorted(ts.metric.labels.items()))) for ts in request.time_series]
        assert len(keys) == len(set(keys)) and all(len(ts.points) == 1 for ts in request.time_series)
    lag = written(fake)
    assert sum(1 for name, _ in lag if name == "partition_lag_seconds") == 450


def test_a_second_run_within_5_s_is_restamped_and_counters_accumulate(fake):
    clock = Clock(T0 + timedelta(seconds=1))
    metrics = writer(fake, clock)
    metrics.write(summary("run-1", T0))
    report = metrics.write(
        summary("run-2", T0 + timedelta(seconds=2), events_in=500, dead_letters=0, dead_letters_by_reason={})
    )
    assert report.series_written == 0 and report.deferred > 0  # 5 s after the first point is still ahead

    flushed = metrics.flush()
    assert flushed.series_written == report.deferred and metrics.pending == 0 and clock.sleeps
    events = next(points for key, points in fake.points.items() if key[0].endswith("/events_in"))
    assert [(end - T0, v) for end, v in events] == [(timedelta(0), 1000), (timedelta(seconds=5), 1500)]

    late = metrics.write(summary("run-0", T0 - timedelta(minutes=1)))
    assert late.stale and late.series_written == 0  # older than what was written: dropped, not reordered


def test_a_progressing_run_replaces_its_own_count(fake):
    clock = Clock(T0 + timedelta(minutes=5))
    metrics = writer(fake, clock)
    metrics.write(summary("run-1", T0, events_in=100))
    metrics.write(summary("run-1", T0 + timedelta(minutes=1), events_in=250))
    events = next(points for key, points in fake.points.items() if key[0].endswith("/events_in"))
    assert [v for _, v in events] == [100, 250]


def test_transient_errors_are_retried_with_backoff(fake):
    import grpc

    clock = Clock(T0 + timedelta(minutes=1))
    fake.fail_next["CreateTimeSeries"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    report = writer(fake, clock, initial_backoff=1.0).write(summary("run-1", T0))
    assert report.retries == 2 and report.requests == 1
    assert len(fake.requests["CreateTimeSeries"]) == 3
    assert clock.sleeps[0] <= 1.0 and clock.sleeps[1] <= 2.0  # full jitter under a doubling cap


def test_other_errors_are_not_retried(fake):
    import grpc

    clock = Clock(T0 + timedelta(minutes=1))
    fake.fail_next["CreateTimeSeries"] = [grpc.StatusCode.PERMISSION_DENIED]
    with pytest.raises(MetricWriteRejected, match="PERMISSION_DENIED"):
        writer(fake, clock).write(summary("run-1", T0))
    assert len(fake.requests["CreateTimeSeries"]) == 1


def test_points_stay_pending_when_the_service_stays_unavailable(fake):
    import grpc

    clock = Clock(T0 + timedelta(minutes=1))
    metrics = writer(fake, clock, max_attempts=2)
    fake.fail_next["CreateTimeSeries"] = [grpc.StatusCode.UNAVAILABLE] * 2
    with pytest.raises(MetricWriteUnavailable):
        metrics.write(summary("run-1", T0))
    assert metrics.pending > 0 and not fake.points
    assert metrics.flush().series_written == len(fake.points) > 0 and metrics.pending == 0


def test_metric_descriptors_carry_kind_unit_and_labels(fake):
    types = writer(fake, Clock(T0)).ensure_descriptors()
    assert set(types) == set(fake.descriptors) == {m.type for m in CUSTOM_METRICS.values()}
    events = fake.descriptors["custom.googleapis.com/meshkit/events_in"]
    assert events.metric_kind == 3 and events.unit == "1"
    assert [label.key for label in events.labels] == ["product", "domain", "environment"]


def _burn_windows(policy) -> list[tuple[str, str, str]]:
    found = []
    for condition in policy.conditions:
        labels = condition.condition_prometheus_query_language.labels
        found.append((labels["burn_rate"], labels["long_window"], labels["short_window"]))
    return found


def test_alert_policies_page_and_ticket_on_multiwindow_burn_rates(fake):
    product = find_product(ROOT / "domains", PRODUCT)
    objectives = [objective("validity"), objective("freshness", threshold=300.0)]
    document = product_alert_document(product, objectives, environment="test")
    secrets = {"MESHKIT_PAGERDUTY_SERVICE_KEY_PAYMENTS_CORE": "pd-key", "MESHKIT_SLACK_AUTH_TOKEN": "xoxb-token"}
    names = publish_alert_policies(fake.alert_client(), fake.channel_client(), PROJECT, [document], environ=secrets)

    channels = {c.type: c for c in fake.channels.values()}
    assert channels["pagerduty"].labels["service_key"] == "pd-key"
    assert channels["slack"].labels == {"channel_name": "#payments-data", "auth_token": "xoxb-token"}
    assert len(names) == len(fake.requests["CreateAlertPolicy"]) == 4  # two objectives x (page, ticket)

    for request in fake.requests["CreateAlertPolicy"]:
        policy = request.alert_policy
        severity = policy.user_labels["severity"]
        assert policy.combiner.name == "OR" and policy.enabled
        assert policy.severity.name == {"page": "CRITICAL", "ticket": "WARNING"}[severity]
        expected = (
            [channels["pagerduty"].name, channels["slack"].name] if severity == "page" else [channels["slack"].name]
        )
        assert list(policy.notification_channels) == expected  # on-call pages, the team channel sees all
        windows = _burn_windows(policy)
        assert windows == ([("14.4", "1h", "5m"), ("6", "6h", "30m")] if severity == "page" else [("1", "3d", "6h")])
        for condition, (rate, long_window, short_window) in zip(policy.conditions, windows, strict=True):
            query = condition.condition_prometheus_query_language.query
            threshold = float(rate) * 0.001  # burn rate x the 0.1% error budget
            compared = [float(x) for x in re.findall(r"\) > ([0-9.e-]+)\)", query)]
            assert compared == pytest.approx([threshold, threshold])
            assert f"[{long_window}]" in query and f"[{short_window}]" in query and ") and (" in query
            assert f'slo="{policy.user_labels["slo"]}"' in query and f'product="{PRODUCT}"' in query
        assert "carla.mendes@fintech.example" in policy.documentation.content
        assert PRODUCT in policy.documentation.subject

    again = publish_alert_policies(fake.alert_client(), fake.channel_client(), PROJECT, [document], environ=secrets)
    assert sorted(again) == sorted(names) and len(fake.requests["UpdateAlertPolicy"]) == 4
    assert len(fake.requests["CreateNotificationChannel"]) == 2  # channels are found again, not duplicated


def test_dashboards_reach_the_api_with_their_tiles(fake):
    products = discover(ROOT / "domains")
    objectives = {p.ref: [Objective(p.ref, "validity", 0.995, 30, None, "errorRate", "v")] for p in products}
    bodies = [product_dashboard(p, objectives[p.ref], "test") for p in products]
    bodies.append(mesh_dashboard(products, objectives, "test"))
    names = publish_dashboards(fake.dashboard_client(), PROJECT, bodies)

    assert len(names) == len(fake.requests["CreateDashboard"]) == len(products) + 1
    created = {r.dashboard.display_name: r.dashboard for r in fake.requests["CreateDashboard"]}
    payments = created["meshkit · payments/transactions (test)"]
    titles = [t.widget.title for t in payments.mosaic_layout.tiles]
    for wanted in ("Freshness", "Throughput", "Dead letters", "Error budget", "MERGE", "Lag by partition"):
        assert any(title.startswith(wanted) for title in titles), wanted
    queries = [
        d.time_series_query.prometheus_query for t in payments.mosaic_layout.tiles for d in t.widget.xy_chart.data_sets
    ]
    assert all(f'product="{PRODUCT}"' in q and 'environment="test"' in q for q in queries)
    assert any("custom_googleapis_com:meshkit_merge_duration_seconds" in q for q in queries)
    mesh = created["meshkit · mesh (test)"]
    assert any(t.widget.title == "Error budget remaining: validity" for t in mesh.mosaic_layout.tiles)

    publish_dashboards(fake.dashboard_client(), PROJECT, bodies)
    assert len(fake.requests["UpdateDashboard"]) == len(bodies) and len(fake.dashboards) == len(bodies)


def test_written_alert_policies_parse_as_api_messages(settings, tmp_path: Path):
    """What write_alert_policies puts in build/ is what the API accepts (strict JSON -> proto parsing)."""
    from monitoring.cloud.alerts import to_alert_policy, write_alert_policies

    settings = settings.model_copy(update={"root": tmp_path})
    products = discover(ROOT / "domains")
    paths = write_alert_policies(settings, products)  # objectives derived from the contracts
    assert paths == [tmp_path / "build" / p.domain / p.name / "alert-policies.json" for p in products]
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        for entry in document["notificationChannels"]:  # secrets are named (env, Secret Manager), never written
            assert not {"service_key", "auth_token", "password"} & set(entry["channel"]["labels"])
        names = {
            c["key"]: f"projects/{PROJECT}/notificationChannels/{i}"
            for i, c in enumerate(document["notificationChannels"])
        }
        policies = [to_alert_policy(p, names) for p in document["alertPolicies"]]
        assert policies and {p.severity.name for p in policies} == {"CRITICAL", "WARNING"}


def test_the_cloud_profile_publishes_each_run(fake, tmp_path: Path):
    from meshkit.config import load_settings
    from monitoring.cloud.publish import publish_run_metrics

    settings = load_settings(
        ROOT, overrides={"profile": "cloud", "gcp_project": PROJECT, "workspace": str(tmp_path)}, environ={}
    )
    assert publish_run_metrics(
        settings, summary("run-cloud", datetime.now(UTC) - timedelta(minutes=1)), fake.metric_client()
    )
    names = {name for name, _ in written(fake)}
    assert {"events_in", "dead_letters", "rows_written", "runs"} <= names


def test_other_profiles_keep_figures_locally_and_cloud_needs_a_project(tmp_path: Path):
    from meshkit.config import load_settings
    from meshkit.errors import ConfigError
    from monitoring.cloud.publish import publish_run_metrics

    local = load_settings(ROOT, overrides={"workspace": str(tmp_path)}, environ={})
    assert publish_run_metrics(local, summary("run-local", T0)) is False
    cloud = load_settings(ROOT, overrides={"profile": "cloud", "workspace": str(tmp_path)}, environ={})
    with pytest.raises(ConfigError, match="gcp_project"):
        publish_run_metrics(cloud, summary("run-cloud", T0))
