"""Cloud Monitoring dashboard JSON: where it is written, that the API would parse it, its layout, and
that every chart queries meshkit's own metrics for the right product (no processes, no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meshkit.config import Settings
from meshkit.products.discovery import discover, find_product
from monitoring.cloud.catalog import CUSTOM_METRICS
from monitoring.cloud.dashboards import (
    MAX_CHARTS,
    mesh_dashboard,
    product_dashboard,
    to_dashboard,
    write_dashboards,
)
from monitoring.cloud.promql import burn_condition, duration
from monitoring.cloud.routing import route_for
from monitoring.slo.model import DEFAULT_BURN_RATE_WINDOWS, Objective

ROOT = Path(__file__).resolve().parents[2]
METRIC_NAME = re.compile(r"custom_googleapis_com:meshkit_(\w+)\{")


def _objectives(ref: str) -> list[Objective]:
    return [
        Objective(ref, "freshness", 0.999, 30, 300.0, "latency", "fresh within 5 min"),
        Objective(ref, "frequency", 0.999, 30, 60.0, "frequency", "a run every minute"),
        Objective(ref, "validity", 0.999, 30, None, "errorRate", "not dead-lettered"),
    ]


def _charts(dashboard: dict) -> list[dict]:
    return [t["widget"] for t in dashboard["mosaicLayout"]["tiles"] if "xyChart" in t["widget"]]


def _queries(widget: dict) -> list[str]:
    return [d["timeSeriesQuery"]["prometheusQuery"] for d in widget["xyChart"]["dataSets"]]


@pytest.fixture
def products():
    return discover(ROOT / "domains")


def test_write_dashboards_puts_one_per_product_and_one_for_the_mesh(settings: Settings, tmp_path, products):
    settings = settings.model_copy(update={"root": tmp_path})
    objectives = {p.ref: _objectives(p.ref) for p in products}
    paths = write_dashboards(settings, products, objectives)

    expected = [tmp_path / "build" / p.domain / p.name / "dashboard.json" for p in products]
    assert paths == [*expected, tmp_path / "build" / "mesh-dashboard.json"]
    for path in paths:
        dashboard = to_dashboard(json.loads(path.read_text(encoding="utf-8")))  # strict: unknown fields fail
        assert dashboard.mosaic_layout.columns == 48 and dashboard.display_name.startswith("meshkit · ")


def test_write_dashboards_derives_objectives_from_the_contracts(settings: Settings, tmp_path, products):
    settings = settings.model_copy(update={"root": tmp_path})
    payments = json.loads(write_dashboards(settings, products)[1].read_text(encoding="utf-8"))
    budget = next(w for w in _charts(payments) if w["title"] == "Error budget remaining")
    assert {d["legendTemplate"] for d in budget["xyChart"]["dataSets"]} >= {"freshness", "validity"}


def test_tiles_fit_the_grid_without_overlapping(products):
    for dashboard in [product_dashboard(p, _objectives(p.ref), "dev") for p in products]:
        cells: set[tuple[int, int]] = set()
        for tile in dashboard["mosaicLayout"]["tiles"]:
            assert tile["xPos"] >= 0 and tile["xPos"] + tile["width"] <= 48
            area = {
                (x, y)
                for x in range(tile["xPos"], tile["xPos"] + tile["width"])
                for y in range(tile["yPos"], tile["yPos"] + tile["height"])
            }
            assert not cells & area, tile["widget"]["title"]
            cells |= area
        assert len(_charts(dashboard)) <= MAX_CHARTS


def test_product_charts_query_meshkit_metrics_of_that_product():
    product = find_product(ROOT / "domains", "payments/transactions")
    dashboard = product_dashboard(product, _objectives(product.ref), "prod")
    titles = [w["title"] for w in _charts(dashboard)]
    for wanted in ("Freshness", "Throughput", "Dead letters", "Error budget", "Burn rate", "MERGE", "Lag by partition"):
        assert any(t.startswith(wanted) for t in titles), wanted
    for widget in _charts(dashboard):
        for query in _queries(widget):
            assert set(METRIC_NAME.findall(query)) <= set(CUSTOM_METRICS), query
            assert 'product="payments/transactions"' in query and 'environment="prod"' in query
            assert 'monitored_resource="generic_task"' in query
    freshness = next(w for w in _charts(dashboard) if w["title"].startswith("Freshness"))
    assert [t["value"] for t in freshness["xyChart"]["thresholds"]] == [300.0]
    budget = next(w for w in _charts(dashboard) if w["title"] == "Error budget remaining")
    assert [d["legendTemplate"] for d in budget["xyChart"]["dataSets"]] == ["freshness", "frequency", "validity"]
    header = dashboard["mosaicLayout"]["tiles"][0]["widget"]["text"]["content"]
    assert "carla.mendes@fintech.example" in header and "payments-core" in header and "| validity | 99.9% |" in header


def test_mesh_dashboard_groups_by_product_and_keeps_within_the_chart_limit(products):
    objectives = {p.ref: _objectives(p.ref) for p in products}
    mesh = mesh_dashboard(products, objectives, "dev")
    titles = [w["title"] for w in _charts(mesh)]
    assert {"Error budget remaining: freshness", "Error budget remaining: validity"} <= set(titles)
    assert all("by (product)" in q for w in _charts(mesh)[:6] for q in _queries(w))
    budget = next(w for w in _charts(mesh) if w["title"] == "Error budget remaining: validity")
    assert [d["legendTemplate"] for d in budget["xyChart"]["dataSets"]] == [p.ref for p in products]

    crowded = {p.ref: _objectives(p.ref) * 40 for p in products}  # 360 objectives: more than fits
    mesh = mesh_dashboard(products, crowded, "dev")
    assert len(_charts(mesh)) == MAX_CHARTS
    assert "did not fit on this dashboard" in mesh["mosaicLayout"]["tiles"][0]["widget"]["text"]["content"]


def test_promql_names_and_burn_conditions():
    assert CUSTOM_METRICS["events_in"].promql_name == "custom_googleapis_com:meshkit_events_in"
    assert [duration(s) for s in (300, 3600, 259200, 90)] == ["5m", "1h", "3d", "90s"]
    validity = Objective("payments/transactions", "validity", 0.995, 30, None, "errorRate", "v")
    fast = burn_condition(validity, DEFAULT_BURN_RATE_WINDOWS[0], "dev")
    assert "[1h]" in fast and "[5m]" in fast and fast.count("> 0.072)") == 2  # 14.4 x 0.5%
    frequency = Objective("payments/transactions", "frequency", 0.99, 30, 60.0, "frequency", "f")
    slow = burn_condition(frequency, DEFAULT_BURN_RATE_WINDOWS[2], "dev")
    assert "[3d:1m]" in slow and "[6h:1m]" in slow and "> bool 60" in slow and "or on() vector(1)" in slow


def test_routing_shown_on_dashboards_follows_the_descriptors():
    payments = find_product(ROOT / "domains", "payments/transactions")
    route = route_for(payments.ref, payments.descriptor)
    assert [c.type for c in route.page] == ["pagerduty", "slack"] and [c.type for c in route.ticket] == ["slack"]
    assert route.page[0].secret is not None and "service_key" not in json.dumps(route.page[0].to_api())
    risk = find_product(ROOT / "domains", "risk/customer-exposure")  # no support entries: the owner's e-mail
    ticket = route_for(risk.ref, risk.descriptor).ticket
    assert [(c.type, dict(c.labels)) for c in ticket] == [("email", {"email_address": "diego.rocha@fintech.example"})]
