"""The data product catalog opened in a real headless Chromium: searching a column name shows the
product that has it and hides the others; filters and the query string work; a screenshot goes to
docs/images/catalog.png.

The page applies `?q=…` (and `domain`, `classification`, `status`) on load, so `--dump-dom` returns
the DOM after the search script ran. Chromium comes from Debian's package (scripts/install-browser.sh);
without it the tests skip, and fail under MESHKIT_REQUIRE_EMULATORS=1. `MESHKIT_UPDATE_SCREENSHOT=1`
also copies the screenshot to docs/images/catalog.png (review it like code).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import find_browser, run_browser  # tests/browser.py (pytest puts tests/ on sys.path)
from PIL import Image  # a dependency of apache-beam, so always installed with meshkit

from governance.catalog.model import build_catalog
from governance.catalog.site import write_catalog
from meshkit.config import load_settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WINDOW = (1280, 520)  # the search box and the matching products
SCREENSHOT = ROOT / "docs" / "images" / "catalog.png"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a fixed clock keeps the pages and the screenshot stable
PRODUCTS = ["customers/users", "payments/transactions", "risk/customer-exposure"]


@pytest.fixture(scope="module")
def browser() -> str:
    return find_browser()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalog of the repository's products; returns its index page."""
    workspace = tmp_path_factory.mktemp("catalog")
    settings = load_settings(ROOT, overrides={"workspace": str(workspace / "ws")}, environ={})
    paths = write_catalog(build_catalog(settings, now=NOW), workspace / "site", root=settings.root)
    return paths[0]


@dataclass
class CatalogDom(HTMLParser):
    """Product cards (visible or hidden), each card's column hits, and the result count."""

    visible: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    hits: dict[str, str] = field(default_factory=dict)
    count: str = ""
    _card: str | None = None
    _in: str | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "li" and "product" in classes:
            self._card = a.get("data-ref") or ""
            (self.hidden if "hidden" in a else self.visible).append(self._card)
        elif "hits" in classes and self._card:
            self._in = "hits"
        elif a.get("id") == "count":
            self._in = "count"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("div", "p"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "hits" and self._card:
            self.hits[self._card] = self.hits.get(self._card, "") + data
        elif self._in == "count":
            self.count += data


def _open(browser: str, profile: Path, page: Path, query: str = "") -> CatalogDom:
    dom = CatalogDom()
    dom.feed(run_browser(browser, profile, "--dump-dom", page.as_uri() + query))
    return dom


def test_searching_a_column_name_shows_only_the_product_that_has_it(browser: str, site: Path, tmp_path: Path) -> None:
    dom = _open(browser, tmp_path / "profile", site, "?q=merchant_category_code")

    assert dom.visible == ["payments/transactions"]
    assert sorted(dom.hidden) == ["customers/users", "risk/customer-exposure"]
    assert dom.hits["payments/transactions"].strip() == "Matching columns: merchant_category_code"
    assert dom.count.strip() == "1 of 3 products"


def test_a_personal_column_is_found_and_the_product_without_it_hidden(browser: str, site: Path, tmp_path: Path) -> None:
    dom = _open(browser, tmp_path / "profile", site, "?q=cpf")

    assert "customers/users" in dom.visible and "risk/customer-exposure" in dom.hidden
    assert dom.hits["customers/users"].strip() == "Matching columns: cpf"


def test_without_a_query_every_product_shows_and_filters_narrow(browser: str, site: Path, tmp_path: Path) -> None:
    assert _open(browser, tmp_path / "all", site).visible == PRODUCTS
    assert _open(browser, tmp_path / "risk", site, "?domain=risk").visible == ["risk/customer-exposure"]
    restricted = _open(browser, tmp_path / "restricted", site, "?classification=restricted")
    assert restricted.visible == ["customers/users", "payments/transactions"]
    assert _open(browser, tmp_path / "none", site, "?q=no-such-column-anywhere").visible == []


def test_screenshot_shows_the_search(browser: str, site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "catalog.png"
    width, height = WINDOW
    run_browser(
        browser,
        tmp_path / "profile",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        site.as_uri() + "?q=cpf",
    )
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
    assert rgb.size == WINDOW
    pixels = list(rgb.getdata())
    ink = sum(1 for r, g, b in pixels if min(r, g, b) < 200)
    assert ink > 0.01 * len(pixels), f"the page is nearly blank ({ink} of {len(pixels)} pixels drawn)"

    if os.environ.get("MESHKIT_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
