"""A Cloud Monitoring fake that speaks the real wire protocol: a gRPC server on 127.0.0.1 whose
handlers are registered under the API's own service and method names and (de)serialise the API's own
protobuf messages, so the real `google-cloud-monitoring` clients talk to it unchanged.

Cloud Monitoring has no emulator. The SDKs ship no `*_pb2_grpc` servicers (their transports build
stubs on the fly from method paths and the proto-plus types), so the fake registers generic method
handlers with the same paths and types. It records every request and enforces the rules the code
under test must respect (200 series and one point per series per request, points in order and 5 s
apart, alert-policy and dashboard shape); `fail_next` injects gRPC errors for retry tests.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent import futures
from datetime import datetime, timedelta
from typing import Any

import grpc
from google.api import metric_pb2
from google.cloud import monitoring_dashboard_v1, monitoring_v3
from google.cloud.monitoring_dashboard_v1.services.dashboards_service.transports import DashboardsServiceGrpcTransport
from google.cloud.monitoring_v3.services.alert_policy_service.transports import AlertPolicyServiceGrpcTransport
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
    NotificationChannelServiceGrpcTransport,
)
from google.protobuf import empty_pb2

MAX_SERIES = 200
MIN_SPACING = timedelta(seconds=5)
CHANNEL_SECRETS = {"slack": ("channel_name", "auth_token"), "pagerduty": ("service_key",), "email": ("email_address",)}


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CloudMonitoringFake:
    """MetricService, AlertPolicyService, NotificationChannelService and DashboardsService on one port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: grpc.Server | None = None
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service, methods in self._services().items():
            handlers = {
                name: grpc.unary_unary_rpc_method_handler(
                    self._guard(name, fn), request_deserializer=request.deserialize, response_serializer=serialize
                )
                for name, (fn, request, serialize) in methods.items()
            }
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self._channel = grpc.insecure_channel(self.target)

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._server is not None:
            self._server.stop(grace=None).wait()
        self._server = self._channel = None

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, list[Any]] = defaultdict(list)
            self.fail_next: dict[str, list[grpc.StatusCode]] = defaultdict(list)
            self.points: dict[tuple[str, ...], list[tuple[datetime, float]]] = defaultdict(list)
            self.descriptors: dict[str, Any] = {}
            self.channels: dict[str, Any] = {}  # name -> NotificationChannel as stored (secrets included)
            self.policies: dict[str, Any] = {}
            self.dashboards: dict[str, Any] = {}

    # --- the real clients, pointed here ----------------------------------------------------------

    def metric_client(self) -> monitoring_v3.MetricServiceClient:
        return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=self._channel))

    def alert_client(self) -> monitoring_v3.AlertPolicyServiceClient:
        return monitoring_v3.AlertPolicyServiceClient(transport=AlertPolicyServiceGrpcTransport(channel=self._channel))

    def channel_client(self) -> monitoring_v3.NotificationChannelServiceClient:
        transport = NotificationChannelServiceGrpcTransport(channel=self._channel)
        return monitoring_v3.NotificationChannelServiceClient(transport=transport)

    def dashboard_client(self) -> monitoring_dashboard_v1.DashboardsServiceClient:
        transport = DashboardsServiceGrpcTransport(channel=self._channel)
        return monitoring_dashboard_v1.DashboardsServiceClient(transport=transport)

    # --- dispatch --------------------------------------------------------------------------------

    def _services(self) -> dict[str, dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], bytes]]]]:
        v3, dash = monitoring_v3, monitoring_dashboard_v1
        empty = empty_pb2.Empty.SerializeToString
        return {
            "google.monitoring.v3.MetricService": {
                "CreateTimeSeries": (self._create_time_series, v3.CreateTimeSeriesRequest, empty),
                "CreateMetricDescriptor": (
                    self._create_descriptor,
                    v3.CreateMetricDescriptorRequest,
                    metric_pb2.MetricDescriptor.SerializeToString,
                ),
            },
            "google.monitoring.v3.AlertPolicyService": {
                "CreateAlertPolicy": (self._create_policy, v3.CreateAlertPolicyRequest, v3.AlertPolicy.serialize),
                "UpdateAlertPolicy": (self._update_policy, v3.UpdateAlertPolicyRequest, v3.AlertPolicy.serialize),
                "ListAlertPolicies": (
                    self._list_policies,
                    v3.ListAlertPoliciesRequest,
                    v3.ListAlertPoliciesResponse.serialize,
                ),
            },
            "google.monitoring.v3.NotificationChannelService": {
                "CreateNotificationChannel": (
                    self._create_channel,
                    v3.CreateNotificationChannelRequest,
                    v3.NotificationChannel.serialize,
                ),
                "ListNotificationChannels": (
                    self._list_channels,
                    v3.ListNotificationChannelsRequest,
                    v3.ListNotificationChannelsResponse.serialize,
                ),
            },
            "google.monitoring.dashboard.v1.DashboardsService": {
                "CreateDashboard": (self._create_dashboard, dash.CreateDashboardRequest, dash.Dashboard.serialize),
                "UpdateDashboard": (self._update_dashboard, dash.UpdateDashboardRequest, dash.Dashboard.serialize),
                "ListDashboards": (
                    self._list_dashboards,
                    dash.ListDashboardsRequest,
                    dash.ListDashboardsResponse.serialize,
                ),
            },
        }

    def _guard(self, method: str, fn: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.requests[method].append(request)
                injected = self.fail_next[method].pop(0) if self.fail_next[method] else None
                if injected is None:
                    try:
                        return fn(request)
                    except _Abort as abort:
                        failure: tuple[grpc.StatusCode, str] = (abort.code, abort.message)
                else:
                    failure = (injected, f"injected {injected.name}")
            context.abort(*failure)
            raise AssertionError("context.abort returns only by raising")

        return handle

    # --- MetricService ---------------------------------------------------------------------------

    def _create_time_series(self, request: Any) -> Any:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not request.name.startswith("projects/"):
            raise _Abort(invalid, f"name {request.name!r} is not projects/<project>")
        if not 0 < len(request.time_series) <= MAX_SERIES:
            raise _Abort(invalid, f"{len(request.time_series)} time series in one request (1..{MAX_SERIES})")
        seen: set[tuple[str, ...]] = set()
        accepted = []
        for ts in request.time_series:
            key = _series_key(ts)
            if key in seen:
                raise _Abort(invalid, f"series {key} appears twice in one request")
            seen.add(key)
            if len(ts.points) != 1:
                raise _Abort(invalid, f"series {key} has {len(ts.points)} points; exactly one per request")
            if not ts.metric.type.startswith("custom.googleapis.com/"):
                raise _Abort(invalid, f"metric type {ts.metric.type!r} is not user-defined")
            kind = metric_pb2.MetricDescriptor.MetricKind.Name(ts.metric_kind)
            if kind not in ("GAUGE", "CUMULATIVE"):
                raise _Abort(invalid, f"metric kind {kind} is not allowed for user-defined metrics")
            point = ts.points[0]
            end = point.interval.end_time
            if kind == "CUMULATIVE" and not point.interval.start_time < end:
                raise _Abort(invalid, f"series {key}: a CUMULATIVE point needs start time < end time")
            history = self.points[key]
            if history and end < history[-1][0] + MIN_SPACING:
                raise _Abort(invalid, f"series {key}: points must be written in order and at least 5 s apart")
            field = point.value._pb.WhichOneof("value")
            expected = {"INT64": "int64_value", "DOUBLE": "double_value"}.get(
                metric_pb2.MetricDescriptor.ValueType.Name(ts.value_type)
            )
            if field != expected:
                raise _Abort(invalid, f"series {key}: value {field} does not match value type {expected}")
            accepted.append((key, end, float(getattr(point.value, field))))
        for key, end, value in accepted:
            self.points[key].append((end, value))
        return empty_pb2.Empty()

    def _create_descriptor(self, request: Any) -> Any:
        descriptor = request.metric_descriptor
        descriptor.name = f"{request.name}/metricDescriptors/{descriptor.type}"
        self.descriptors[descriptor.type] = descriptor
        return descriptor

    # --- AlertPolicyService and NotificationChannelService ---------------------------------------

    def _check_policy(self, policy: Any) -> None:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not policy.display_name or not 1 <= len(policy.conditions) <= 6:
            raise _Abort(invalid, "a policy needs a display name and 1 to 6 conditions")
        if len(policy.conditions) > 1 and policy.combiner == monitoring_v3.AlertPolicy.ConditionCombinerType(0):
            raise _Abort(invalid, "several conditions need a combiner")
        for condition in policy.conditions:
            kind = condition._pb.WhichOneof("condition")
            if not condition.display_name or kind is None:
                raise _Abort(invalid, "a condition needs a display name and a condition type")
            if kind == "condition_prometheus_query_language":
                promql = condition.condition_prometheus_query_language
                interval = promql.evaluation_interval.total_seconds()
                if not promql.query or interval % 30:
                    raise _Abort(invalid, "a PromQL condition needs a query and a multiple of 30 s to evaluate")
        for name in policy.notification_channels:
            if name not in self.channels:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"notification channel {name!r} does not exist")
        if len(policy.documentation.content) > 8192:
            raise _Abort(invalid, "documentation content is longer than 8,192 characters")

    def _create_policy(self, request: Any) -> Any:
        policy = request.alert_policy
        self._check_policy(policy)
        policy.name = f"{request.name}/alertPolicies/{next(self._ids)}"
        self.policies[policy.name] = policy
        return policy

    def _update_policy(self, request: Any) -> Any:
        policy = request.alert_policy
        if policy.name not in self.policies:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"alert policy {policy.name!r} does not exist")
        self._check_policy(policy)
        self.policies[policy.name] = policy
        return policy

    def _list_policies(self, request: Any) -> Any:
        mine = [p for p in self.policies.values() if p.name.startswith(request.name + "/")]
        return monitoring_v3.ListAlertPoliciesResponse(alert_policies=mine)

    def _create_channel(self, request: Any) -> Any:
        channel = request.notification_channel
        missing = [label for label in CHANNEL_SECRETS.get(channel.type, ()) if not channel.labels.get(label)]
        if channel.type not in CHANNEL_SECRETS or missing:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"channel type {channel.type!r} misses labels {missing}")
        channel.name = f"{request.name}/notificationChannels/{next(self._ids)}"
        self.channels[channel.name] = channel
        return channel

    def _list_channels(self, request: Any) -> Any:
        mine = [c for c in self.channels.values() if c.name.startswith(request.name + "/")]
        return monitoring_v3.ListNotificationChannelsResponse(notification_channels=mine)

    # --- DashboardsService -----------------------------------------------------------------------

    def _check_dashboard(self, dashboard: Any) -> None:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        layout = dashboard.mosaic_layout
        if not dashboard.display_name or not layout.tiles:
            raise _Abort(invalid, "a dashboard needs a display name and tiles")
        cells: set[tuple[int, int]] = set()
        for tile in layout.tiles:
            if tile.x_pos + tile.width > layout.columns or tile.width <= 0 or tile.height <= 0:
                raise _Abort(invalid, f"tile {tile.widget.title!r} does not fit {layout.columns} columns")
            area = {
                (x, y)
                for x in range(tile.x_pos, tile.x_pos + tile.width)
                for y in range(tile.y_pos, tile.y_pos + tile.height)
            }
            if cells & area:
                raise _Abort(invalid, f"tile {tile.widget.title!r} overlaps another tile")
            cells |= area
            for data in tile.widget.xy_chart.data_sets:
                if data.time_series_query._pb.WhichOneof("source") is None:
                    raise _Abort(invalid, f"a data set of {tile.widget.title!r} has no query")

    def _create_dashboard(self, request: Any) -> Any:
        dashboard = request.dashboard
        self._check_dashboard(dashboard)
        dashboard.name = f"{request.parent}/dashboards/{uuid.uuid4()}"
        dashboard.etag = uuid.uuid4().hex
        self.dashboards[dashboard.name] = dashboard
        return dashboard

    def _update_dashboard(self, request: Any) -> Any:
        dashboard = request.dashboard
        stored = self.dashboards.get(dashboard.name)
        if stored is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"dashboard {dashboard.name!r} does not exist")
        if dashboard.etag and dashboard.etag != stored.etag:
            raise _Abort(grpc.StatusCode.ABORTED, "etag mismatch: the dashboard changed since it was read")
        self._check_dashboard(dashboard)
        dashboard.etag = uuid.uuid4().hex
        self.dashboards[dashboard.name] = dashboard
        return dashboard

    def _list_dashboards(self, request: Any) -> Any:
        mine = [d for d in self.dashboards.values() if d.name.startswith(request.parent + "/")]
        return monitoring_dashboard_v1.ListDashboardsResponse(dashboards=mine)


def _series_key(ts: Any) -> tuple[str, ...]:
    """A time series' identity: metric type and labels, resource type and labels."""
    return (
        ts.metric.type,
        *sorted(f"{k}={v}" for k, v in ts.metric.labels.items()),
        ts.resource.type,
        *sorted(f"resource.{k}={v}" for k, v in ts.resource.labels.items()),
    )
