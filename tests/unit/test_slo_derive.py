"""Objectives derived from contracts: the shipped products, ODCS units, and unusable SLA entries."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from meshkit.contracts.model import Contract, load_contract, parse_contract
from meshkit.yamlio import YamlDocument, load_yaml
from monitoring.slo.derive import (
    DEFAULT_TARGET,
    DEFAULT_WINDOW_DAYS,
    derive_objectives,
    derive_slos,
    duration_seconds,
)

REPO = Path(__file__).resolve().parents[2]
USERS = REPO / "domains" / "customers" / "users" / "datacontract.yaml"


def _contract(ref: str) -> Contract:
    return load_contract(REPO / "domains" / ref / "datacontract.yaml")


def _with_sla(sla: list[dict[str, Any]], **custom: Any) -> Contract:
    """The users contract with its SLA replaced (and contract-level custom properties added)."""
    document = load_yaml(USERS)
    data = copy.deepcopy(document.data)
    data["slaProperties"] = sla
    if custom:
        data["customProperties"] = [{"property": k, "value": v} for k, v in custom.items()]
    return parse_contract(YamlDocument(document.path, data, document.lines))


def _by_kind(contract: Contract) -> dict[str, Any]:
    return {o.kind: o for o in derive_objectives(contract, "customers/users")}


def test_users_contract_gives_four_objectives_and_says_why_retention_is_none() -> None:
    derivation = derive_slos(_contract("customers/users"), "customers/users")
    objectives = {o.kind: o for o in derivation.objectives}
    assert list(objectives) == ["freshness", "frequency", "availability", "validity"]
    freshness = objectives["freshness"]
    assert freshness.threshold_seconds == 15 * 60
    assert freshness.target == 0.995  # from the contract's availability
    assert freshness.window_days == DEFAULT_WINDOW_DAYS == 30
    assert freshness.source_property == "latency"
    assert freshness.element == "users.updated_at"
    assert freshness.name == "customers.users.freshness"
    assert "source timestamp" in freshness.description and "current-state table" in freshness.description
    assert objectives["frequency"].threshold_seconds == 60
    assert objectives["availability"].target == 0.995
    assert objectives["validity"].target == 0.995  # 1 - errorRate 0.5%
    assert objectives["validity"].error_budget == pytest.approx(0.005)
    assert [(n.sla_property, n.index) for n in derivation.notes] == [("retention", 4)]
    assert "not a service level" in derivation.notes[0].reason


def test_payments_and_exposure_contracts() -> None:
    payments = {o.kind: o for o in derive_objectives(_contract("payments/transactions"), "payments/transactions")}
    assert payments["freshness"].threshold_seconds == 300
    assert payments["availability"].target == 0.999  # exactly, not 0.9990000000000001
    assert payments["validity"].target == 0.999
    exposure = derive_slos(_contract("risk/customer-exposure"), "risk/customer-exposure")
    assert [o.kind for o in exposure.objectives] == ["freshness", "frequency", "availability"]
    assert {o.target for o in exposure.objectives} == {0.99}
    assert exposure.objectives[0].threshold_seconds == 3600
    assert any("no change-feed source" in n.reason for n in exposure.notes)


@pytest.mark.parametrize(
    ("value", "unit", "seconds"),
    [
        (15, "m", 900),
        ("15", "min", 900),
        (15, "minutes", 900),
        (1, "h", 3600),
        (2, "d", 172800),
        (2, "days", 172800),
        (1, "w", 604800),
        (1, "y", 365 * 86400),
        (30, "s", 30),
        (500, "ms", 0.5),
        ("15m", None, 900),
        ("15 min", None, 900),
        ("PT15M", None, 900),
        ("P1DT2H", None, 93600),
        (1.5, "H", 5400),
    ],
)
def test_durations_in_odcs_units(value: Any, unit: str | None, seconds: float) -> None:
    assert duration_seconds(value, unit) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"property": "latency", "value": 15}, "no unit"),
        ({"property": "latency", "value": 15, "unit": "fortnights"}, "unknown unit"),
        ({"property": "latency", "value": None, "unit": "m"}, "not a number"),
        ({"property": "latency", "value": True, "unit": "m"}, "not a number"),
        ({"property": "latency", "value": "soon", "unit": "m"}, "not a number"),
        ({"property": "frequency", "value": 0, "unit": "m"}, "not positive"),
        ({"property": "availability", "value": 100, "unit": "percent"}, "no error budget"),
        ({"property": "availability", "value": 120, "unit": "%"}, "not a share"),
        ({"property": "errorRate", "value": 0, "unit": "percent"}, "no error budget"),
        ({"property": "errorRate", "value": 1, "unit": "bananas"}, "unknown unit"),
        ({"property": "timeOfAvailability", "value": "09:00-03:00"}, "daily deadline"),
        ({"property": "throughput", "value": 1000}, "capacity"),
        ({"property": "mysteryProperty", "value": 1}, "unknown SLA property"),
    ],
)
def test_unusable_entries_are_skipped_with_a_reason(entry: dict[str, Any], reason: str) -> None:
    derivation = derive_slos(_with_sla([entry]), "customers/users")
    assert derivation.objectives == ()
    assert len(derivation.notes) == 1
    note = derivation.notes[0]
    assert note.sla_property == entry["property"] and note.index == 0 and note.field_path == "slaProperties[0]"
    assert reason in note.reason


def test_shares_in_percent_fraction_or_without_unit() -> None:
    objectives = _by_kind(
        _with_sla(
            [
                {"property": "availability", "value": "99.9%"},
                {"property": "errorRate", "value": 0.002},
                {"property": "completeness", "value": 0.999, "unit": "ratio"},
            ]
        )
    )
    assert objectives["availability"].target == 0.999
    assert objectives["validity"].target == 0.998  # 0.002 without a unit is a fraction
    assert objectives["completeness"].target == 0.999
    notes = derive_slos(_with_sla([{"property": "availability", "value": 99.5}]), "customers/users").notes
    assert [n.reason for n in notes] == ["value 99.5 has no unit: read as a percentage (99.5000%)"]


def test_freshness_and_frequency_take_the_default_target_without_availability() -> None:
    objectives = _by_kind(
        _with_sla(
            [{"property": "latency", "value": 1, "unit": "h"}, {"property": "frequency", "value": 1, "unit": "d"}]
        )
    )
    assert objectives["freshness"].target == DEFAULT_TARGET == 0.99
    assert objectives["frequency"].target == 0.99 and objectives["frequency"].threshold_seconds == 86400
    assert "default 99%" in objectives["freshness"].description
    # an unusable availability does not lend its value either
    broken = _by_kind(
        _with_sla(
            [{"property": "availability", "value": 100, "unit": "%"}, {"property": "latency", "value": 5, "unit": "m"}]
        )
    )
    assert set(broken) == {"freshness"} and broken["freshness"].target == 0.99


def test_window_from_the_contract_custom_property() -> None:
    sla = [{"property": "availability", "value": 99, "unit": "percent"}]
    assert _by_kind(_with_sla(sla, sloWindowDays=7))["availability"].window_days == 7
    assert _by_kind(_with_sla(sla, sloWindowDays="28"))["availability"].window_days == 28
    derivation = derive_slos(_with_sla(sla, sloWindowDays="a month"), "customers/users")
    assert derivation.objectives[0].window_days == DEFAULT_WINDOW_DAYS
    assert derivation.notes[0].sla_property == "sloWindowDays" and derivation.notes[0].field_path == "customProperties"
    assert derive_slos(_with_sla(sla, sloWindowDays=0), "customers/users").objectives[0].window_days == 30


def test_aliases_and_duplicates() -> None:
    derivation = derive_slos(
        _with_sla(
            [
                {"property": "freshness", "value": 10, "unit": "m"},
                {"property": "latency", "value": 20, "unit": "m"},
            ]
        ),
        "customers/users",
    )
    assert [(o.kind, o.threshold_seconds, o.source_property) for o in derivation.objectives] == [
        ("freshness", 600, "freshness")
    ]
    assert [(n.sla_property, n.index) for n in derivation.notes] == [("latency", 1)]
    assert "only the first" in derivation.notes[0].reason


def test_a_contract_without_sla_has_no_objectives() -> None:
    derivation = derive_slos(_with_sla([]), "customers/users")
    assert derivation.objectives == () and derivation.notes == ()
