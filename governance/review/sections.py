"""What a governance area contributes to the review: one section, rendered by every report format.

Policies, the breaking-change diff, cost, access and SLOs each provide a `ReviewSection` through a
function `review_section(context: ReviewContext) -> ReviewSection`; the review lists them in order.
Findings are `meshkit.checks.Check`s, so JSON, JUnit, SARIF and the exit code read them uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from meshkit.checks import Check
from meshkit.config import Settings
from meshkit.products.model import DataProduct


@dataclass(frozen=True)
class ReviewContext:
    """Inputs every section provider may use."""

    settings: Settings
    products: tuple[DataProduct, ...]
    today: date
    base_revision: str | None = None  # `meshkit review --base REV`: compare contracts with this git revision


@dataclass(frozen=True)
class ReviewTable:
    """A small table for people: header row and rows of plain text cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ReviewSection:
    """One area of the review. `checks` feed the exit code, JUnit and SARIF; `per_product` maps a
    product ref to the checks that belong on its scorecard; `tables` and `summary` are for reading."""

    key: str  # stable id: "policies", "diff", "cost", "access", "slo"
    title: str
    summary: str
    checks: tuple[Check, ...] = ()
    per_product: dict[str, tuple[Check, ...]] = field(default_factory=dict)
    tables: tuple[ReviewTable, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable detail for the JSON report
