"""Service level objectives derived from a contract's SLA properties.

An `Objective` says what is measured (its SLI, defined precisely in docs/slo.md), what counts as good,
the target share of good and the window over which the error budget is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SliKind = Literal["freshness", "validity", "availability", "frequency", "completeness"]


@dataclass(frozen=True)
class Objective:
    """One SLO of one product."""

    product: str  # "<domain>/<product>"
    kind: SliKind
    target: float  # share of good, 0 < target < 1 (e.g. 0.995)
    window_days: int  # the error budget's rolling window
    threshold_seconds: float | None  # freshness / frequency: the bound a good observation stays within
    source_property: str  # the ODCS slaProperties entry it came from (e.g. "latency")
    description: str  # one sentence for people: what is good, measured from which timestamp to which
    element: str | None = None  # the ODCS `element` the SLA names (e.g. "users.updated_at"), when it does

    @property
    def name(self) -> str:
        return f"{self.product.replace('/', '.')}.{self.kind}"

    @property
    def error_budget(self) -> float:
        """Allowed share of bad: 1 - target."""
        return 1.0 - self.target


@dataclass(frozen=True)
class BurnRateWindow:
    """One multi-window, multi-burn-rate alert condition (Google SRE workbook, chapter 5)."""

    long_window_minutes: int
    short_window_minutes: int
    burn_rate: float
    severity: Literal["page", "ticket"]


# 2% of a 30-day budget in 1 h, 5% in 6 h, 10% in 3 days: page, page, ticket.
DEFAULT_BURN_RATE_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow(60, 5, 14.4, "page"),
    BurnRateWindow(360, 30, 6.0, "page"),
    BurnRateWindow(4320, 360, 1.0, "ticket"),
)
