"""The governance review opened in a real headless Chromium: every product's scorecard and card, and
each section's heading, render; a screenshot goes to docs/images/review.png.

Chromium comes from Debian's package (scripts/install-browser.sh). Without it the tests skip, and
fail under MESHKIT_REQUIRE_EMULATORS=1. `MESHKIT_UPDATE_SCREENSHOT=1` also copies the screenshot to
docs/images/review.png (review it like code).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import find_browser, run_browser  # tests/conftest.py (pytest puts tests/ on sys.path)
from PIL import Image  # a dependency of apache-beam, so always installed with meshkit

from governance.review.report import Review, build_review, write_review
from meshkit.config import load_settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WINDOW = (1280, 1200)  # the header, the scorecards and the start of the sections
SCREENSHOT = ROOT / "docs" / "images" / "review.png"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a fixed clock keeps the screenshot stable


@pytest.fixture(scope="module")
def browser() -> str:
    return find_browser()


@dataclass(frozen=True)
class Page:
    review: Review
    html: Path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The review of the example mesh with every provider that has landed; paths in it are root-relative."""
    workspace = tmp_path_factory.mktemp("review")
    settings = load_settings(ROOT, overrides={"workspace": str(workspace / "ws")}, environ={})
    review = build_review(settings, now=NOW)
    paths = write_review(review, workspace / "out", ("html",))
    html = paths["html"].read_text(encoding="utf-8")
    assert str(workspace) not in html and str(ROOT) not in html, "the page shows a machine-specific path"
    return Page(review, paths["html"])


@dataclass
class ReviewDom(HTMLParser):
    """Scorecard rows, product cards and h2 headings, from the DOM Chromium serialises."""

    scorecards: list[str] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    scripts: int = 0
    _heading: str | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "tr" and "scorecard" in (a.get("class") or "").split():
            self.scorecards.append(a.get("data-name") or "")
        elif tag == "article" and "card" in (a.get("class") or "").split():
            self.cards.append(a.get("id") or "")
        elif tag == "h2":
            self._heading = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._heading is not None:
            self.headings.append(" ".join(self._heading.split()))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading += data


def test_every_scorecard_and_section_renders_in_chromium(browser: str, page: Page, tmp_path: Path) -> None:
    dom = ReviewDom()
    dom.feed(run_browser(browser, tmp_path / "profile", "--dump-dom", page.html.as_uri()))

    refs = [p.ref for p in page.review.products]
    domains = sorted({p.domain for p in page.review.products})
    assert refs, "the example mesh has products"
    assert dom.scripts == 0, "the review needs no JavaScript"
    assert set(refs) <= set(dom.scorecards), f"missing product scorecards: {set(refs) - set(dom.scorecards)}"
    assert set(domains) <= set(dom.scorecards), "missing domain scorecards"
    assert dom.cards == refs
    for heading in ("Scorecards by domain", "Scorecards by product", "Lineage", "Products"):
        assert heading in dom.headings
    for section in page.review.sections:
        assert any(h.startswith(section.title) for h in dom.headings), f"no heading for section {section.key}"


def test_screenshot_shows_the_scorecards(browser: str, page: Page, tmp_path: Path) -> None:
    shot = tmp_path / "review.png"
    width, height = WINDOW
    run_browser(
        browser, tmp_path / "profile", f"--window-size={width},{height}", f"--screenshot={shot}", page.html.as_uri()
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
