"""The local dashboard opened in a real headless Chromium: every chart of every product is drawn from
the runs in the metrics store, and the screenshot shows them.

Chromium comes from Debian's package (scripts/install-browser.sh). Without it the tests skip, and
fail under MESHKIT_REQUIRE_EMULATORS=1. `MESHKIT_UPDATE_SCREENSHOT=1` also copies the screenshot to
docs/images/dashboard.png (review it like code).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import find_browser, run_browser  # tests/conftest.py (pytest puts tests/ on sys.path)
from PIL import Image  # a dependency of apache-beam, so always installed with meshkit

from meshkit.config import Settings, load_settings
from meshkit.products.discovery import discover
from monitoring.dashboards.local import build_dashboard, render_html, write_dashboard
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.budget import budget_over_time
from monitoring.slo.derive import derive_objectives
from pipelines.demo import run_demo

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EVENTS, SEED, DEMO_RUNS = 300, 21, 3
WINDOW = (1280, 1200)  # the header and the first product card
SCREENSHOT = ROOT / "docs" / "images" / "dashboard.png"
CHARTS = ("freshness", "events_in", "throughput", "dead_letters", "dead_letter_share", "error_budget")
SERIES_BLUE = (0x00, 0x72, 0xB2)  # the first colour of monitoring.dashboards.charts.PALETTE


@pytest.fixture(scope="module")
def browser() -> str:
    return find_browser()


@dataclass(frozen=True)
class Demo:
    settings: Settings
    page: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Demo runs into one workspace until every series has two points (the frequency SLI measures from
    the first completed run on, so its budget starts at the second); the page names its source
    neutrally, so the screenshot shows no machine's path."""
    workspace = tmp_path_factory.mktemp("dashboard")
    settings = load_settings(ROOT, overrides={"workspace": str(workspace / "ws")}, environ={})
    for n in range(DEMO_RUNS):
        run_demo(settings, events=EVENTS, seed=SEED + n)
    page = write_dashboard(settings, workspace / "dashboard.html", source=".meshkit/metrics.sqlite (demo)")
    return Demo(settings, page)


@dataclass
class Chart:
    product: str
    key: str
    kind: str
    lines: list[int] = field(default_factory=list)  # points of each polyline
    bars: int = 0
    empty_text: str | None = None


class DashboardDom(HTMLParser):
    """The products' titles and each chart's drawn marks, from the DOM Chromium serialises."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: dict[str, str] = {}
        self.charts: dict[tuple[str, str], Chart] = {}
        self.scripts = 0
        self._product: str | None = None
        self._in_title = False
        self._chart: Chart | None = None
        self._in_empty = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "article" and a.get("data-product"):
            self._product = a["data-product"]
            self.titles[self._product or ""] = ""
        elif tag == "h2" and self._product:
            self._in_title = True
        elif tag == "svg" and a.get("data-chart"):
            self._chart = Chart(a["data-product"] or "", a["data-chart"] or "", a["data-kind"] or "")
            self.charts[(self._chart.product, self._chart.key)] = self._chart
        elif self._chart and tag == "polyline":
            self._chart.lines.append(len((a.get("points") or "").split()))
        elif self._chart and tag == "rect" and "bar" in (a.get("class") or "").split():
            self._chart.bars += 1
        elif self._chart and tag == "text" and a.get("class") == "empty":
            self._in_empty = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_title = False
        elif tag == "svg":
            self._chart = None
        elif tag == "article":
            self._product = None
        elif tag == "text":
            self._in_empty = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self._product:
            self.titles[self._product] += data
        if self._in_empty and self._chart:
            self._chart.empty_text = (self._chart.empty_text or "") + data


def present(runs: list[RunSummary], *figures: Callable[[RunSummary], object]) -> list[int]:
    """For each figure, the number of runs that have it; figures no run has are left out (empty series)."""
    return [n for figure in figures if (n := sum(figure(r) is not None for r in runs))]


def expected_points(settings: Settings) -> dict[tuple[str, str], list[int]]:
    """Points per non-empty series of each chart, counted from the store's runs and the SLO budgets."""
    store = MetricsStore(settings.metrics_path)
    expected: dict[tuple[str, str], list[int]] = {}
    for product in discover(settings.domains_dir):
        ref, runs = product.ref, store.runs(product.ref)
        expected[(ref, "freshness")] = present(runs, lambda r: r.max_source_lag_seconds, lambda r: r.freshness_seconds)
        expected[(ref, "events_in")] = present(runs, lambda r: r.events_in)
        expected[(ref, "throughput")] = present(runs, lambda r: r.throughput_eps)
        expected[(ref, "dead_letters")] = present(runs, lambda r: r.dead_letters)
        expected[(ref, "dead_letter_share")] = present(runs, lambda r: r.events_in or None)
        budgets = [len(budget_over_time(o, runs)) for o in derive_objectives(product.contract, ref)]
        expected[(ref, "error_budget")] = [n for n in budgets if n]
    return expected


def test_every_chart_renders_with_its_points_in_chromium(browser: str, demo: Demo, tmp_path: Path) -> None:
    dom = DashboardDom()
    dom.feed(run_browser(browser, tmp_path / "profile", "--dump-dom", demo.page.as_uri()))

    refs = [p.ref for p in discover(demo.settings.domains_dir)]
    assert refs, "the demo mesh has products"
    assert dom.scripts == 0, "the dashboard needs no JavaScript"
    for ref in refs:
        assert ref in dom.titles.get(ref, ""), f"no card titled {ref}"
        assert "last run completed" in dom.titles[ref]
    expected = expected_points(demo.settings)
    drawn_series = 0
    for ref in refs:
        for key in CHARTS:
            chart = dom.charts.get((ref, key))
            assert chart is not None, f"{ref} has no {key} chart"
            want = expected[(ref, key)]
            if not want:  # e.g. freshness of a product without a change-feed source
                assert chart.empty_text, f"{ref} {key}: no data, yet no empty-state text"
                continue
            assert min(want) >= 2, f"{ref} {key}: {DEMO_RUNS} demo runs give at least two points per series"
            drawn = [chart.bars] if chart.kind == "bar" else chart.lines
            assert drawn == want, f"{ref} {key}: drew {drawn} points, the store holds {want}"
            drawn_series += len(drawn)
    # at least the throughput, events and dead-letter charts of every product
    assert drawn_series >= 4 * len(refs)


def test_screenshot_shows_the_charts(browser: str, demo: Demo, tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    width, height = WINDOW
    run_browser(
        browser, tmp_path / "profile", f"--window-size={width},{height}", f"--screenshot={shot}", demo.page.as_uri()
    )

    with Image.open(shot) as image:
        rgb = image.convert("RGB")
    assert rgb.size == WINDOW
    # below the header: the first product's charts
    chart_area = rgb.crop((0, 380, width, height))
    pixels = list(chart_area.getdata())
    ink = sum(1 for r, g, b in pixels if min(r, g, b) < 200)
    series = sum(1 for p in pixels if all(abs(c - s) <= 24 for c, s in zip(p, SERIES_BLUE, strict=True)))
    assert ink > 0.02 * len(pixels), f"the chart area is nearly blank ({ink} of {len(pixels)} pixels drawn)"
    assert series > 2000, f"hardly any series colour on screen ({series} pixels): charts did not draw"

    if os.environ.get("MESHKIT_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_dashboard_without_runs_says_so(settings: Settings) -> None:
    dashboard = build_dashboard(settings)
    assert dashboard.totals.runs == 0
    assert dashboard.products and all(not p.charts and p.last_run is None for p in dashboard.products)
    page = render_html(dashboard)
    for product in dashboard.products:
        assert f"No runs recorded for {product.ref} yet" in page
