"""PromQL for meshkit's custom metrics: selectors and the SLI, burn-rate and budget expressions that the
dashboards chart and the alert policies evaluate, so a chart and an alert never disagree.

PromQL, not MQL (no longer offered for new charts and alerts since July 2025) and not filter ratios
(they cannot say "freshness above its threshold"). The SLIs follow `monitoring.slo.budget`: run- and
event-based objectives are the ratio of the `slo_good` / `slo_total` counters the metrics writer
derives from each run; frequency is time-based, from `last_success_time_seconds`.
"""

from __future__ import annotations

from monitoring.cloud.catalog import MONITORED_RESOURCE, CustomMetric, metric
from monitoring.slo.model import BurnRateWindow, Objective

SUBQUERY_STEP = "1m"  # resolution of time-based SLIs; 0.02% of a 3-day window
MIN_LOOKBACK_SECONDS = 300


def duration(seconds: float) -> str:
    """A PromQL duration: 300 -> `5m`, 3600 -> `1h`, 259200 -> `3d`."""
    whole = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{max(whole, 1)}s"


def number(value: float) -> str:
    """A float for a query, without binary noise: 14.4 * 0.001 -> `0.0144`."""
    return f"{value:.6g}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(m: CustomMetric, environment: str, product: str | None = None, **labels: str) -> str:
    """`custom_googleapis_com:meshkit_events_in{monitored_resource="generic_task",environment="dev",...}`."""
    matchers = {"monitored_resource": MONITORED_RESOURCE, "environment": environment}
    if product is not None:
        matchers["product"] = product
    matchers.update(labels)
    return m.promql_name + "{" + ",".join(f"{k}={_quote(v)}" for k, v in matchers.items()) + "}"


def bad_ratio(objective: Objective, window_seconds: float, environment: str) -> str:
    """Share of bad over the trailing window: NaN (so no alert) when the window measured nothing."""
    window = duration(window_seconds)
    if objective.kind == "frequency":
        return _frequency_bad_ratio(objective, window, environment)
    good = selector(metric("slo_good"), environment, objective.product, slo=objective.kind)
    total = selector(metric("slo_total"), environment, objective.product, slo=objective.kind)
    return f"(1 - sum(increase({good}[{window}])) / sum(increase({total}[{window}])))"


def _frequency_bad_ratio(objective: Objective, window: str, environment: str) -> str:
    """Share of the window's minutes at which the last completed run ended more than the bound ago; with no
    completed run inside the lookback (which is at least the bound) the minute is bad."""
    bound = objective.threshold_seconds or 0.0
    lookback = duration(max(2 * bound, MIN_LOOKBACK_SECONDS))
    last = selector(metric("last_success_time_seconds"), environment, objective.product)
    stale = f"((time() - max(last_over_time({last}[{lookback}]))) > bool {number(bound)})"
    return f"avg_over_time(({stale} or on() vector(1))[{window}:{SUBQUERY_STEP}])"


def burn_rate(objective: Objective, window_seconds: float, environment: str) -> str:
    """How many times faster than allowed the budget burns over the window (1 = exactly on budget)."""
    return f"({bad_ratio(objective, window_seconds, environment)} / {number(objective.error_budget)})"


def budget_remaining(objective: Objective, environment: str) -> str:
    """Share of the error budget left over the objective's window (negative when overspent)."""
    return f"(1 - {burn_rate(objective, objective.window_days * 86400, environment)})"


def burn_threshold(objective: Objective, window: BurnRateWindow) -> float:
    """The bad share at which a window pair fires: burn rate x error budget."""
    return window.burn_rate * objective.error_budget


def burn_condition(objective: Objective, window: BurnRateWindow, environment: str) -> str:
    """True while both the long and the short window burn faster than the pair's rate (SRE workbook ch. 5):
    the long window makes the alert significant, the short one makes it stop soon after the burn stops."""
    threshold = number(burn_threshold(objective, window))
    long_ratio = bad_ratio(objective, window.long_window_minutes * 60, environment)
    short_ratio = bad_ratio(objective, window.short_window_minutes * 60, environment)
    return f"({long_ratio} > {threshold}) and ({short_ratio} > {threshold})"
