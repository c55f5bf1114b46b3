"""SLI, error budget and burn-rate arithmetic on known series: exact numbers, gaps, failed runs, resets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitoring.metrics.run import RunSummary
from monitoring.slo.budget import (
    Observation,
    ObservationSeries,
    budget_over_time,
    burn_rate,
    burn_rate_alerts,
    deltas,
    multiwindow_alerts,
    observations,
    observations_from_counters,
    remaining_budget,
    sli,
    window_counts,
    window_label,
)
from monitoring.slo.model import DEFAULT_BURN_RATE_WINDOWS, Objective, SliKind
from monitoring.slo.status import objective_status

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
PRODUCT = "customers/users"


def _objective(kind: SliKind, target: float, threshold: float | None = None, window_days: int = 30) -> Objective:
    return Objective(PRODUCT, kind, target, window_days, threshold, kind, f"{kind} for tests")


def _run(minutes: float, status: str = "completed", product: str = PRODUCT, **figures: Any) -> RunSummary:
    """A run that ended `minutes` after T0 (and started a minute earlier)."""
    end = T0 + timedelta(minutes=minutes)
    values: dict[str, Any] = {"events_in": 1000, "duplicates_dropped": 0, "dead_letters": 0} | figures
    return RunSummary(
        product=product,
        run_id=str(uuid.uuid4()),
        started_at=(end - timedelta(minutes=1)).isoformat(),
        ended_at=end.isoformat(),
        status=status,
        **values,
    )


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- availability and validity: counts over runs -------------------------------------------------------


def test_availability_counts_completed_against_all_runs() -> None:
    objective = _objective("availability", 0.9)
    runs = [_run(m) for m in range(1, 10)] + [_run(10, "failed")]
    counts = window_counts(objective, runs, _at(10))
    assert (counts.good, counts.total) == (9, 10)
    assert sli(objective, runs, _at(10)) == pytest.approx(0.9)
    assert remaining_budget(objective, runs, _at(10)) == pytest.approx(0.0)  # exactly spent
    status = objective_status(objective, runs, _at(10))
    assert status.state == "exhausted"
    # the last 2 minutes hold one good and one failed run: half bad against 10% allowed
    assert burn_rate(objective, runs, _at(10), timedelta(minutes=2)) == pytest.approx(5.0)


def test_validity_sums_events_of_completed_runs_and_skips_failed_ones() -> None:
    objective = _objective("validity", 0.995)
    runs = [
        _run(10, dead_letters=1),
        _run(50, dead_letters=3),
        _run(55, "failed", events_in=0),  # a failed run records no events; its input is read again
    ]
    counts = window_counts(objective, runs, _at(60))
    assert (counts.good, counts.total) == (1996, 2000)
    assert counts.sli == pytest.approx(0.998)
    # 0.2% bad against 0.5% allowed: 40% of the budget spent
    assert remaining_budget(objective, runs, _at(60)) == pytest.approx(0.6)
    assert burn_rate(objective, runs, _at(60), timedelta(minutes=30)) == pytest.approx(0.6)  # 0.3% / 0.5%
    assert objective_status(objective, runs, _at(60)).state == "ok"


def test_at_risk_below_a_quarter_of_the_budget() -> None:
    objective = _objective("validity", 0.99)
    status = objective_status(objective, [_run(0, dead_letters=8)], _at(1))  # 0.8% of 1%: 20% left
    assert status.remaining_budget == pytest.approx(0.2)
    assert status.state == "at-risk"


def test_a_window_without_runs_has_no_data_not_a_perfect_sli() -> None:
    objective = _objective("availability", 0.99)
    runs = [_run(0, "failed")]
    now = T0 + timedelta(days=40)  # the only run lies outside the 30-day window
    assert sli(objective, runs, now) is None
    assert remaining_budget(objective, runs, now) is None
    assert burn_rate(objective, runs, _at(120), timedelta(hours=1)) is None  # nothing in the last hour
    status = objective_status(objective, runs, now)
    assert status.state == "no-data" and status.burn_rates == {"1h": None, "6h": None, "3d": None}
    assert not status.firing
    assert objective_status(objective, [], now).state == "no-data"


def test_window_bounds_runs_of_other_products_and_runs_after_now() -> None:
    objective = _objective("availability", 0.99)
    runs = [
        _run(0, "failed"),  # exactly at the window's start: outside (the window is (now - 1h, now])
        _run(30),
        _run(60),  # exactly now: inside
        _run(61, "failed"),  # after now: ignored
        _run(45, "failed", product="payments/transactions"),  # another product: ignored
    ]
    counts = window_counts(objective, runs, _at(60), timedelta(hours=1))
    assert (counts.good, counts.total) == (2, 2)


# --- freshness: one measurement per completed run ----------------------------------------------------------


def test_freshness_judges_each_run_by_its_largest_lag() -> None:
    objective = _objective("freshness", 0.9, threshold=900)
    runs = [
        _run(10, max_source_lag_seconds=120.0),
        _run(20, max_source_lag_seconds=900.0),  # exactly the threshold: good
        _run(30, max_source_lag_seconds=1735.5),
        _run(40, max_source_lag_seconds=None),  # wrote no change with a source timestamp: no measurement
        _run(50, "failed", max_source_lag_seconds=None),
    ]
    observed = observations(objective, runs, _at(60))
    assert [(o.good, o.total) for o in observed] == [(1, 1), (1, 1), (0, 1)]
    assert sli(objective, runs, _at(60)) == pytest.approx(2 / 3)
    assert remaining_budget(objective, runs, _at(60)) == pytest.approx(1 - (1 / 3) / 0.1)


def test_completeness_counts_valid_events_that_reached_the_changelog() -> None:
    objective = _objective("completeness", 0.99)
    runs = [
        _run(10, events_in=100, dead_letters=10, duplicates_dropped=5, replayed=5, rows_written={"changelog": 78}),
        _run(20, events_in=50, rows_written={"current": 50}),  # no changelog output (a refined product)
    ]
    counts = window_counts(objective, runs, _at(30))
    assert (counts.good, counts.total) == (88, 90)


# --- frequency: time-based -------------------------------------------------------------------------------------


def test_frequency_is_the_share_of_time_within_the_bound_since_the_last_success() -> None:
    objective = _objective("frequency", 0.99, threshold=60)
    seconds = [0, 30, 150]
    runs = [_run(s / 60) for s in seconds] + [_run(2, "failed")]  # a failed run delivers nothing
    now = T0 + timedelta(seconds=180)
    observed = observations(objective, runs, now)
    # [0,30] good, [30,90] good, [90,150] bad, [150,180] good (the open gap, still within a minute)
    assert [(o.good, o.total) for o in observed] == [(30, 30), (60, 60), (0, 60), (30, 30)]
    counts = window_counts(objective, runs, now)
    assert (counts.good, counts.total) == (120, 180)
    # a 100-second window (80 s, 180 s] takes the intervals pro rata: 10 + 30 good, 60 bad
    short = window_counts(objective, runs, now, timedelta(seconds=100))
    assert (short.good, short.total) == pytest.approx((40, 100))
    assert burn_rate(objective, runs, now, timedelta(seconds=100)) == pytest.approx(0.6 / 0.01)


def test_frequency_counts_an_open_gap_that_already_exceeds_the_bound() -> None:
    objective = _objective("frequency", 0.99, threshold=60)
    runs = [_run(0)]
    counts = window_counts(objective, runs, T0 + timedelta(seconds=300))
    assert (counts.good, counts.total) == (60, 300)
    assert window_counts(objective, runs, T0 + timedelta(seconds=30)).total == 30
    # a product that never completed a run has no data, however many runs failed
    assert window_counts(objective, [_run(0, "failed")], _at(10)).total == 0
    # a pipeline stopped for longer than the window: all bad, not "no data"
    stopped = window_counts(objective, runs, T0 + timedelta(days=40))
    assert stopped.good == 0 and stopped.total == pytest.approx(30 * 86400)


def test_series_counts_a_window_inside_one_interval() -> None:
    interval = Observation(_at(60), 0.0, 3600.0, start=_at(0))
    series = ObservationSeries([interval])
    counts = series.counts(_at(10), _at(20))
    assert (counts.good, counts.total) == pytest.approx((0, 600))


# --- multi-window, multi-burn-rate alerts ---------------------------------------------------------------


def _incident(recovered_minutes: int = 0) -> list[RunSummary]:
    """A run a minute for two hours; the last 30 minutes failed, then `recovered_minutes` succeeded."""
    runs = [_run(m) for m in range(1, 91)] + [_run(m, "failed") for m in range(91, 121)]
    return runs + [_run(120 + m) for m in range(1, recovered_minutes + 1)]


def test_all_conditions_fire_during_an_incident() -> None:
    objective = _objective("availability", 0.99)
    now = _at(120)
    evaluated = burn_rate_alerts(objective, _incident(), now)
    long_rates = [a.long_burn_rate for a in evaluated]
    short_rates = [a.short_burn_rate for a in evaluated]
    # 1h: 30 of 60 failed; 6h and 3d: 30 of 120; 5m, 30m: all failed; 6h short of the ticket: 30 of 120
    assert long_rates == pytest.approx([50.0, 25.0, 25.0])
    assert short_rates == pytest.approx([100.0, 100.0, 25.0])
    firing = multiwindow_alerts(objective, _incident(), now)
    assert [(a.severity, a.label) for a in firing] == [
        ("page", "14.4x over 1h/5m"),
        ("page", "6x over 6h/30m"),
        ("ticket", "1x over 3d/6h"),
    ]
    status = objective_status(objective, _incident(), now)
    assert status.state == "exhausted" and len(status.firing) == 3
    assert status.burn_rates == pytest.approx({"1h": 50.0, "6h": 25.0, "3d": 25.0})


def test_the_short_window_stops_the_page_once_the_incident_is_over() -> None:
    objective = _objective("availability", 0.99)
    now = _at(130)
    firing = multiwindow_alerts(objective, _incident(recovered_minutes=10), now)
    # the last 5 minutes are clean, so the fast page resets although the last hour still burns at 50x
    evaluated = burn_rate_alerts(objective, _incident(recovered_minutes=10), now)
    assert evaluated[0].long_burn_rate == pytest.approx(50.0) and evaluated[0].short_burn_rate == 0.0
    assert [a.label for a in firing] == ["6x over 6h/30m", "1x over 3d/6h"]


def test_a_slow_burn_only_opens_a_ticket() -> None:
    objective = _objective("validity", 0.99)
    # 2% bad every 10 minutes for three days: burn rate 2 everywhere
    runs = [_run(m, dead_letters=20) for m in range(10, 3 * 1440 + 1, 10)]
    firing = multiwindow_alerts(objective, runs, _at(3 * 1440))
    assert [(a.severity, a.label) for a in firing] == [("ticket", "1x over 3d/6h")]


def test_no_data_in_the_short_window_does_not_fire() -> None:
    objective = _objective("availability", 0.99)
    runs = [_run(m, "failed") for m in range(1, 31)]
    evaluated = burn_rate_alerts(objective, runs, _at(40))  # nothing in the last 5 minutes
    assert evaluated[0].short_burn_rate is None and not evaluated[0].firing
    assert evaluated[1].firing  # 30-minute short window still sees the failures


def test_default_windows_are_the_workbook_table() -> None:
    table = [(window_label(w.long_window_minutes), window_label(w.short_window_minutes), w.burn_rate, w.severity)
             for w in DEFAULT_BURN_RATE_WINDOWS]  # fmt: skip
    assert table == [("1h", "5m", 14.4, "page"), ("6h", "30m", 6.0, "page"), ("3d", "6h", 1.0, "ticket")]


# --- budget over time and cumulative counters -----------------------------------------------------------------


def test_budget_over_time_after_each_run() -> None:
    objective = _objective("availability", 0.5)
    runs = [_run(3, "failed"), _run(1), _run(2, "failed"), _run(4, product="payments/transactions")]
    points = budget_over_time(objective, runs)
    assert [ts for ts, _ in points] == [_at(m).isoformat() for m in (1, 2, 3)]
    assert [value for _, value in points] == pytest.approx([1.0, 0.0, -1 / 3])
    assert budget_over_time(objective, []) == []


def test_budget_over_time_rolls_its_window() -> None:
    objective = _objective("availability", 0.5, window_days=1)
    runs = [_run(0, "failed"), _run(1440 + 1)]  # the failure has left the one-day window at the second run
    assert [v for _, v in budget_over_time(objective, runs)] == pytest.approx([-1.0, 1.0])


def test_budget_over_time_of_the_time_based_sli() -> None:
    objective = _objective("frequency", 0.5, threshold=60)
    runs = [_run(0), _run(3), _run(4)]  # 1 min good, 2 min bad, 1 min good
    values = [v for _, v in budget_over_time(objective, runs)]
    assert values == pytest.approx([1 - (2 / 3) / 0.5, 1 - (2 / 4) / 0.5])  # no data after the first run


def test_deltas_treat_a_drop_as_a_counter_reset() -> None:
    series = [("t1", 10.0), ("t2", 15.0), ("t3", 3.0), ("t4", 8.0), ("t5", 8.0)]
    assert deltas(series) == [("t2", 5.0), ("t3", 3.0), ("t4", 5.0), ("t5", 0.0)]
    assert deltas([]) == [] and deltas([("t1", 4.0)]) == []


def test_observations_from_cumulative_counters_survive_a_reset() -> None:
    stamps = [_at(m).isoformat() for m in range(4)]
    good = list(zip(stamps, [0.0, 99.0, 1.0, 50.0], strict=True))  # the process restarted before stamps[2]
    total = list(zip(stamps, [0.0, 100.0, 2.0, 52.0], strict=True))
    observed = observations_from_counters(good, total)
    assert [(o.good, o.total) for o in observed] == [(99, 100), (1, 2), (49, 50)]
    counts = ObservationSeries(observed).window(_at(3), timedelta(hours=1))
    assert counts.sli == pytest.approx(149 / 152)


def test_status_as_json_ready_dict() -> None:
    objective = _objective("validity", 0.995)
    document = objective_status(objective, [_run(10, dead_letters=1)], _at(20)).to_dict()
    assert document["objective"] == "customers.users.validity"
    assert (document["good"], document["total"], document["measured_in"]) == (999, 1000, "events")
    assert document["remaining_budget"] == pytest.approx(0.8)
    assert [a["condition"] for a in document["alerts"]] == ["14.4x over 1h/5m", "6x over 6h/30m", "1x over 3d/6h"]
    assert document["state"] == "ok"
