"""Cloud Monitoring dashboards as Dashboards API JSON: one per product and one for the whole mesh.

Charts are `xyChart`s on a 48-column `mosaicLayout`, each data set a PromQL query (promql.py, the same
expressions the alert policies evaluate). Written to `build/<domain>/<product>/dashboard.json` and
`build/mesh-dashboard.json`; `publish_dashboards` creates or updates them through the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from meshkit.config import Settings
from meshkit.products.model import DataProduct
from monitoring.cloud.alerts import dashboard_title
from monitoring.cloud.catalog import metric
from monitoring.cloud.promql import budget_remaining, burn_rate, duration, selector
from monitoring.cloud.routing import route_for
from monitoring.slo.model import DEFAULT_BURN_RATE_WINDOWS, Objective

TEMPLATES_DIR = Path(__file__).parent / "templates"
COLUMNS = 48
HEADER_HEIGHT = 12
CHART_WIDTH, CHART_HEIGHT = 24, 16
AT_RISK_REMAINING = 0.25  # below a quarter of the budget left, an objective is at risk (docs/slo.md)
MAX_CHARTS = 25  # Cloud Monitoring's documented chart limit per dashboard
DATASETS_PER_BUDGET_CHART = 10
GAUGE_LOOKBACK = "10m"  # a gauge shows its last reading for this long
DASHBOARD_FILE = "dashboard.json"
MESH_DASHBOARD_FILE = "mesh-dashboard.json"


def _template(name: str, **values: Any) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(name).render(**values).strip()


def _dataset(query: str, legend: str = "", *, unit: str = "", plot: str = "LINE") -> dict[str, Any]:
    series: dict[str, Any] = {"prometheusQuery": query}
    if unit:
        series["unitOverride"] = unit
    data: dict[str, Any] = {
        "timeSeriesQuery": series,
        "plotType": plot,
        "targetAxis": "Y1",
        "minAlignmentPeriod": "60s",
    }
    if legend:
        data["legendTemplate"] = legend
    return data


def _threshold(label: str, value: float, color: str, direction: str) -> dict[str, Any]:
    return {"label": label, "value": value, "color": color, "direction": direction, "targetAxis": "Y1"}


def _chart(
    title: str, datasets: Sequence[dict[str, Any]], y_label: str, thresholds: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    chart: dict[str, Any] = {
        "dataSets": list(datasets),
        "yAxis": {"label": y_label, "scale": "LINEAR"},
        "chartOptions": {"mode": "COLOR"},
    }
    if thresholds:
        chart["thresholds"] = list(thresholds)
    return {"title": title, "xyChart": chart}


def _layout(header: str, charts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tiles: list[dict[str, Any]] = [
        {
            "xPos": 0,
            "yPos": 0,
            "width": COLUMNS,
            "height": HEADER_HEIGHT,
            "widget": {"title": "About", "text": {"content": header, "format": "MARKDOWN"}},
        }
    ]
    per_row = COLUMNS // CHART_WIDTH
    for index, chart in enumerate(charts):
        row, column = divmod(index, per_row)
        tiles.append(
            {
                "xPos": column * CHART_WIDTH,
                "yPos": HEADER_HEIGHT + row * CHART_HEIGHT,
                "width": CHART_WIDTH,
                "height": CHART_HEIGHT,
                "widget": chart,
            }
        )
    return {"columns": COLUMNS, "tiles": tiles}


def _gauge(name: str, environment: str, product: str | None, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"max{grouping} (last_over_time({selector(metric(name), environment, product)}[{GAUGE_LOOKBACK}]))"


def _counter(name: str, environment: str, product: str | None, fn: str, window: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({fn}({selector(metric(name), environment, product)}[{window}]))"


def _budget_thresholds() -> list[dict[str, Any]]:
    return [
        _threshold("at risk", AT_RISK_REMAINING, "YELLOW", "BELOW"),
        _threshold("exhausted", 0.0, "RED", "BELOW"),
    ]


def product_dashboard(product: DataProduct, objectives: Sequence[Objective], environment: str) -> dict[str, Any]:
    """The dashboard of one product: freshness, throughput, dead letters, error budget, burn rate,
    MERGE duration, lag, runs, Cosmos DB request units and retries."""
    ref = product.ref
    route = route_for(ref, product.descriptor)
    header = _template(
        "dashboard_product.md.j2",
        product=ref,
        owner=route.owner,
        team=route.team,
        environment=environment,
        objectives=[
            {**vars(o), "bound": duration(o.threshold_seconds) if o.threshold_seconds else "—"} for o in objectives
        ],
        page=[c.display_name for c in route.page],
        ticket=[c.display_name for c in route.ticket],
    )
    bounds = [o for o in objectives if o.kind == "freshness" and o.threshold_seconds]
    fastest = max((w.burn_rate for w in DEFAULT_BURN_RATE_WINDOWS), default=1.0)
    charts = [
        _chart(
            "Freshness (s)",
            [
                _dataset(_gauge("freshness_seconds", environment, ref), "newest data age", unit="s"),
                _dataset(_gauge("max_source_lag_seconds", environment, ref), "largest lag in a run", unit="s"),
            ],
            "seconds",
            [_threshold("freshness bound", o.threshold_seconds or 0.0, "RED", "ABOVE") for o in bounds],
        ),
        _chart(
            "Throughput (per second)",
            [
                _dataset(_counter("events_in", environment, ref, "rate", "5m"), "events in", unit="1/s"),
                _dataset(_counter("rows_written", environment, ref, "rate", "5m", by="output"), unit="1/s"),
            ],
            "per second",
        ),
        _chart(
            "Dead letters by reason (per 5 min)",
            [_dataset(_counter("dead_letters", environment, ref, "increase", "5m", by="reason"), plot="STACKED_BAR")],
            "events",
        ),
        _chart(
            "Error budget remaining",
            [_dataset(budget_remaining(o, environment), o.kind, unit="1") for o in objectives],
            "share of budget",
            _budget_thresholds(),
        ),
        _chart(
            "Burn rate over 1 h",
            [_dataset(burn_rate(o, 3600, environment), o.kind, unit="1") for o in objectives],
            "x budget",
            [_threshold("page", fastest, "RED", "ABOVE"), _threshold("on budget", 1.0, "YELLOW", "ABOVE")],
        ),
        _chart(
            "MERGE and run duration (s)",
            [
                _dataset(_gauge("merge_duration_seconds", environment, ref), "MERGE", unit="s"),
                _dataset(_gauge("duration_seconds", environment, ref), "run", unit="s"),
            ],
            "seconds",
        ),
        _chart(
            "Lag by partition (s)",
            [_dataset(_gauge("partition_lag_seconds", environment, ref, by="partition"), unit="s")],
            "seconds",
        ),
        _chart(
            "Runs by status (per hour)",
            [_dataset(_counter("runs", environment, ref, "increase", "1h", by="status"), plot="STACKED_BAR")],
            "runs",
        ),
        _chart(
            "Cosmos DB request units (per second)",
            [_dataset(_counter("cosmos_request_units", environment, ref, "rate", "5m"), "RU/s", unit="1/s")],
            "RU/s",
        ),
        _chart(
            "Retries by operation (per 5 min)",
            [_dataset(_counter("retries", environment, ref, "increase", "5m", by="operation"), plot="STACKED_BAR")],
            "retries",
        ),
    ]
    return {
        "displayName": dashboard_title(ref, environment),
        "labels": {"meshkit": "", product.domain: ""},
        "mosaicLayout": _layout(header, charts),
    }


def mesh_dashboard(
    products: Sequence[DataProduct], objectives: Mapping[str, Sequence[Objective]], environment: str
) -> dict[str, Any]:
    """One dashboard for every product: each figure by product, error budgets by objective kind."""
    by = "product"
    charts = [
        _chart(
            "Freshness by product (s)", [_dataset(_gauge("freshness_seconds", environment, None, by), unit="s")], "s"
        ),
        _chart(
            "Throughput by product (events per second)",
            [_dataset(_counter("events_in", environment, None, "rate", "5m", by), unit="1/s")],
            "per second",
        ),
        _chart(
            "Dead letters by product (per hour)",
            [_dataset(_counter("dead_letters", environment, None, "increase", "1h", by), plot="STACKED_BAR")],
            "events",
        ),
        _chart(
            "Failed runs by product (per hour)",
            [
                _dataset(
                    f"sum by (product) (increase({selector(metric('runs'), environment, None, status='failed')}[1h]))",
                    plot="STACKED_BAR",
                )
            ],
            "runs",
        ),
        _chart(
            "MERGE duration by product (s)",
            [_dataset(_gauge("merge_duration_seconds", environment, None, by), unit="s")],
            "s",
        ),
        _chart(
            "Largest partition lag by product (s)",
            [_dataset(_gauge("partition_lag_seconds", environment, None, by), unit="s")],
            "s",
        ),
    ]
    every = [o for p in products for o in objectives.get(p.ref, ())]
    omitted: list[str] = []
    for kind in dict.fromkeys(o.kind for o in every):
        mine = [o for o in every if o.kind == kind]
        for first in range(0, len(mine), DATASETS_PER_BUDGET_CHART):
            group = mine[first : first + DATASETS_PER_BUDGET_CHART]
            if len(charts) >= MAX_CHARTS:
                omitted.extend(o.name for o in group)
                continue
            part = f" ({first // DATASETS_PER_BUDGET_CHART + 1})" if len(mine) > DATASETS_PER_BUDGET_CHART else ""
            charts.append(
                _chart(
                    f"Error budget remaining: {kind}{part}",
                    [_dataset(budget_remaining(o, environment), o.product, unit="1") for o in group],
                    "share of budget",
                    _budget_thresholds(),
                )
            )
    rows = []
    for p in products:
        route = route_for(p.ref, p.descriptor)
        rows.append(
            {
                "ref": p.ref,
                "owner": route.owner,
                "team": route.team,
                "objectives": [o.kind for o in objectives.get(p.ref, ())],
            }
        )
    header = _template(
        "dashboard_mesh.md.j2", environment=environment, products=rows, omitted=omitted, max_charts=MAX_CHARTS
    )
    return {
        "displayName": f"meshkit · mesh ({environment})",
        "labels": {"meshkit": ""},
        "mosaicLayout": _layout(header, charts),
    }


def write_dashboards(
    settings: Settings,
    products: Iterable[DataProduct],
    objectives: Mapping[str, Sequence[Objective]] | None = None,
) -> list[Path]:
    """Write each product's `build/<domain>/<product>/dashboard.json` and `build/mesh-dashboard.json`;
    objectives default to those derived from each contract."""
    products = list(products)
    if objectives is None:
        from monitoring.slo.derive import derive_objectives

        objectives = {p.ref: derive_objectives(p.contract, p.ref) for p in products}
    written: list[Path] = []
    for product in products:
        dashboard = product_dashboard(product, objectives.get(product.ref, ()), settings.environment)
        written.append(_write(settings.build_dir / product.domain / product.name / DASHBOARD_FILE, dashboard))
    mesh = mesh_dashboard(products, objectives, settings.environment)
    written.append(_write(settings.build_dir / MESH_DASHBOARD_FILE, mesh))
    return written


def _write(path: Path, dashboard: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def to_dashboard(dashboard: Mapping[str, Any]) -> Any:
    """Dashboard JSON as a `monitoring_dashboard_v1.Dashboard` (unknown fields are an error)."""
    from google.cloud import monitoring_dashboard_v1

    return monitoring_dashboard_v1.Dashboard.from_json(json.dumps(dashboard))


def publish_dashboards(client: Any, project_id: str, dashboards: Iterable[Mapping[str, Any]]) -> list[str]:
    """Create or update dashboards (found again by display name) through a `DashboardsServiceClient`;
    returns their resource names."""
    parent = f"projects/{project_id}"
    existing = {d.display_name: d for d in client.list_dashboards(parent=parent)}
    names: list[str] = []
    for body in dashboards:
        dashboard = to_dashboard(body)
        found = existing.get(dashboard.display_name)
        if found is not None:
            dashboard.name, dashboard.etag = found.name, found.etag
            names.append(client.update_dashboard(request={"dashboard": dashboard}).name)
        else:
            names.append(client.create_dashboard(parent=parent, dashboard=dashboard).name)
    return names
