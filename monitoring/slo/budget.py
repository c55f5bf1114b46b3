"""Error budgets and burn rates from recorded runs: pure functions, the clock passed in as `now`.

Runs become `Observation`s (good and total at a moment, or spread evenly over an interval for the
time-based frequency SLI); every figure is then a sum over a window `(now - window, now]`. A window
without observations has no data: its SLI and burn rate are None, never 100% (docs/slo.md).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, pairwise
from typing import Any

from monitoring.metrics.run import RunSummary
from monitoring.slo.model import DEFAULT_BURN_RATE_WINDOWS, BurnRateWindow, Objective, SliKind

COMPLETED, FAILED = "completed", "failed"
MEASURED_IN: dict[SliKind, str] = {
    "freshness": "runs",
    "availability": "runs",
    "frequency": "seconds",
    "validity": "events",
    "completeness": "events",
}


def parse_time(text: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (naive timestamps are UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window_label(minutes: float) -> str:
    """`5` -> `5m`, `60` -> `1h`, `4320` -> `3d`: the duration shorthand of OpenSLO and the docs."""
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes >= size and minutes % size == 0:
            return f"{int(minutes // size)}{unit}"
    return f"{minutes:g}m"


@dataclass(frozen=True)
class Observation:
    """Good and total measured at `end`; with `start`, spread evenly over `[start, end]` (time-based)."""

    end: datetime
    good: float
    total: float
    start: datetime | None = None


@dataclass(frozen=True)
class WindowCounts:
    """Good and total over one window; the SLI is None when nothing was measured."""

    good: float
    total: float

    @property
    def bad(self) -> float:
        return self.total - self.good

    @property
    def sli(self) -> float | None:
        return self.good / self.total if self.total > 0 else None


# --- runs -> observations ------------------------------------------------------------------------


def observations(objective: Objective, runs: Iterable[RunSummary], now: datetime | None = None) -> list[Observation]:
    """What the product's runs say about one objective, oldest first; runs ending after `now` are ignored.

    freshness: one per completed run that wrote changes with source timestamps; good when its largest lag
    (commit - source timestamp) is within the threshold. availability: one per completed or failed run.
    validity: a completed run's events, good = not dead-lettered. completeness: a completed run's valid
    events, good = reached the changelog (written, or a duplicate/replay of a change already written).
    frequency: time since the first completed run, good while the last completed run ended at most the
    threshold ago (the open gap up to `now` included).
    """
    mine = [(parse_time(r.ended_at), r) for r in runs if r.product == objective.product]
    mine = sorted((item for item in mine if now is None or item[0] <= now), key=lambda item: item[0])
    if objective.kind == "frequency":
        return _frequency(objective, [end for end, r in mine if r.status == COMPLETED], now)
    found: list[Observation] = []
    for end, run in mine:
        observed = _run_observation(objective, run)
        if observed is not None:
            found.append(Observation(end, *observed))
    return found


def _run_observation(objective: Objective, run: RunSummary) -> tuple[float, float] | None:
    """(good, total) of one run, or None when the run measures nothing for this objective."""
    if objective.kind == "availability":
        return {COMPLETED: (1.0, 1.0), FAILED: (0.0, 1.0)}.get(run.status)
    if run.status != COMPLETED:
        return None  # a failed run committed nothing; its events are read again by the next run
    if objective.kind == "freshness":
        lag = run.max_source_lag_seconds
        if lag is None or objective.threshold_seconds is None:
            return None
        return (1.0 if lag <= objective.threshold_seconds else 0.0), 1.0
    if objective.kind == "validity":
        if run.events_in <= 0:
            return None
        return float(max(run.events_in - run.dead_letters, 0)), float(run.events_in)
    if objective.kind == "completeness":
        valid = run.events_in - run.dead_letters
        if valid <= 0 or "changelog" not in run.rows_written:
            return None
        reached = run.rows_written["changelog"] + run.duplicates_dropped + run.replayed
        return float(min(reached, valid)), float(valid)
    return None


def _frequency(objective: Objective, ends: list[datetime], now: datetime | None) -> list[Observation]:
    if not ends or objective.threshold_seconds is None:
        return []
    bound = timedelta(seconds=objective.threshold_seconds)
    points = [*ends, now] if now is not None and now > ends[-1] else ends
    found: list[Observation] = []
    for previous, current in pairwise(points):
        if current <= previous:
            continue
        fresh_until = min(current, previous + bound)
        seconds = (fresh_until - previous).total_seconds()
        found.append(Observation(fresh_until, seconds, seconds, start=previous))
        if current > fresh_until:
            found.append(Observation(current, 0.0, (current - fresh_until).total_seconds(), start=fresh_until))
    return found


def deltas(cumulative_points: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Increases of a cumulative counter between consecutive points (oldest first). A drop is a reset, as
    in Cloud Monitoring CUMULATIVE series: the counter restarted from zero, so the increase is the new value.
    The first point has no predecessor and gives no delta."""
    return [
        (ts, value - before if value >= before else value) for (_, before), (ts, value) in pairwise(cumulative_points)
    ]


def observations_from_counters(
    good_cumulative: Sequence[tuple[str, float]], total_cumulative: Sequence[tuple[str, float]]
) -> list[Observation]:
    """Observations from two cumulative counters sampled at the same timestamps (e.g. events not
    dead-lettered, events in), resets handled by `deltas`; timestamps only one series has are skipped."""
    good = dict(deltas(good_cumulative))
    return [
        Observation(parse_time(ts), min(good[ts], total), total) for ts, total in deltas(total_cumulative) if ts in good
    ]


# --- windows ---------------------------------------------------------------------------------------


class ObservationSeries:
    """Observations sorted by end with prefix sums: each window sum costs two binary searches.
    Time-based observations must not overlap one another (the frequency SLI's intervals do not)."""

    def __init__(self, items: Iterable[Observation]) -> None:
        self.items = sorted(items, key=lambda o: o.end)
        self._ends = [o.end for o in self.items]
        self._good = [0.0, *accumulate(o.good for o in self.items)]
        self._total = [0.0, *accumulate(o.total for o in self.items)]

    def counts(self, start: datetime, end: datetime) -> WindowCounts:
        """Good and total in `(start, end]`; a time-based observation counts pro rata for its overlap."""
        lo, hi = bisect_right(self._ends, start), bisect_right(self._ends, end)
        good = self._good[hi] - self._good[lo]
        total = self._total[hi] - self._total[lo]
        i = lo
        while i < hi and (o := self.items[i]).start is not None and o.start < start:  # straddles `start`
            share = _overlap(o, start, end)
            good, total = good - o.good * (1 - share), total - o.total * (1 - share)
            i += 1
        j = hi
        while j < len(self.items) and (o := self.items[j]).start is not None and o.start < end:  # straddles `end`
            share = _overlap(o, start, end)
            good, total = good + o.good * share, total + o.total * share
            j += 1
        return WindowCounts(max(good, 0.0), max(total, 0.0))

    def window(self, now: datetime, length: timedelta) -> WindowCounts:
        return self.counts(now - length, now)


def _overlap(o: Observation, start: datetime, end: datetime) -> float:
    """The share of a time-based observation's interval that lies inside `[start, end]`."""
    assert o.start is not None
    span = (o.end - o.start).total_seconds()
    inside = (min(o.end, end) - max(o.start, start)).total_seconds()
    return max(inside, 0.0) / span if span > 0 else 0.0


def remaining(counts: WindowCounts, objective: Objective) -> float | None:
    """The unspent share of the error budget: 1 - (bad share / allowed bad share); negative when overspent."""
    if counts.total <= 0:
        return None
    return 1.0 - (counts.bad / counts.total) / objective.error_budget


def rate(counts: WindowCounts, objective: Objective) -> float | None:
    """The burn rate: bad share over the allowed bad share (1 spends the budget exactly over the window)."""
    if counts.total <= 0:
        return None
    return (counts.bad / counts.total) / objective.error_budget


def slo_window(objective: Objective) -> timedelta:
    return timedelta(days=objective.window_days)


def window_counts(
    objective: Objective, runs: Iterable[RunSummary], now: datetime, window: timedelta | None = None
) -> WindowCounts:
    """Good and total over `window` (default: the objective's own window) ending at `now`."""
    series = ObservationSeries(observations(objective, runs, now))
    return series.window(now, window or slo_window(objective))


def sli(
    objective: Objective, runs: Iterable[RunSummary], now: datetime, window: timedelta | None = None
) -> float | None:
    """The SLI over the window ending at `now`; None when the window holds no measurement."""
    return window_counts(objective, runs, now, window).sli


def remaining_budget(objective: Objective, runs: Iterable[RunSummary], now: datetime) -> float | None:
    """The unspent share of the error budget over the objective's window (negative when overspent)."""
    return remaining(window_counts(objective, runs, now), objective)


def burn_rate(objective: Objective, runs: Iterable[RunSummary], now: datetime, window: timedelta) -> float | None:
    """How fast the budget burns over `window` ending at `now` (None without data)."""
    return rate(window_counts(objective, runs, now, window), objective)


def budget_over_time(objective: Objective, runs: Iterable[RunSummary]) -> list[tuple[str, float]]:
    """The remaining budget (rolling window) right after each run of the product, oldest first, for charts;
    runs after which the window holds no measurement give no point."""
    mine = [r for r in runs if r.product == objective.product]
    ends = sorted({parse_time(r.ended_at) for r in mine})
    if not ends:
        return []
    series = ObservationSeries(observations(objective, mine, ends[-1]))
    points: list[tuple[str, float]] = []
    for end in ends:
        left = remaining(series.window(end, slo_window(objective)), objective)
        if left is not None:
            points.append((end.isoformat(), left))
    return points


# --- alerts and status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurnRateAlert:
    """One multi-window condition evaluated: it fires when both windows burn faster than its rate."""

    objective: str
    window: BurnRateWindow
    long_burn_rate: float | None
    short_burn_rate: float | None

    @property
    def firing(self) -> bool:
        threshold = self.window.burn_rate
        return (self.long_burn_rate or 0.0) > threshold and (self.short_burn_rate or 0.0) > threshold

    @property
    def severity(self) -> str:
        return self.window.severity

    @property
    def label(self) -> str:
        w = self.window
        return f"{w.burn_rate:g}x over {window_label(w.long_window_minutes)}/{window_label(w.short_window_minutes)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.label,
            "severity": self.severity,
            "burn_rate_threshold": self.window.burn_rate,
            "long_window": window_label(self.window.long_window_minutes),
            "short_window": window_label(self.window.short_window_minutes),
            "long_burn_rate": None if self.long_burn_rate is None else round(self.long_burn_rate, 9),
            "short_burn_rate": None if self.short_burn_rate is None else round(self.short_burn_rate, 9),
            "firing": self.firing,
        }


def alerts_at(
    objective: Objective, series: ObservationSeries, now: datetime, windows: Sequence[BurnRateWindow]
) -> tuple[BurnRateAlert, ...]:
    """Each condition of `windows` evaluated on an already built series."""
    return tuple(
        BurnRateAlert(
            objective.name,
            w,
            rate(series.window(now, timedelta(minutes=w.long_window_minutes)), objective),
            rate(series.window(now, timedelta(minutes=w.short_window_minutes)), objective),
        )
        for w in windows
    )


def burn_rate_alerts(
    objective: Objective,
    runs: Iterable[RunSummary],
    now: datetime,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> list[BurnRateAlert]:
    """Every multi-window condition evaluated at `now`, firing or not."""
    return list(alerts_at(objective, ObservationSeries(observations(objective, runs, now)), now, windows))


def multiwindow_alerts(
    objective: Objective,
    runs: Iterable[RunSummary],
    now: datetime,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> list[BurnRateAlert]:
    """The conditions of `windows` that fire at `now` (long and short window both above the rate)."""
    return [a for a in burn_rate_alerts(objective, runs, now, windows) if a.firing]
