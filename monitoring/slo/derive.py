"""Objectives from a contract's SLA properties: a pure function of the contract (docs/slo.md).

Each usable ODCS `slaProperties` entry becomes one `Objective`; everything else is reported as a
`DerivationNote` with the reason, never dropped silently. Units follow ODCS (`m` is minutes, `d`
days, `y` years; `percent` or `%` for shares).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshkit.contracts.model import Contract, custom_properties
from monitoring.slo.model import Objective, SliKind

DEFAULT_WINDOW_DAYS = 30
DEFAULT_TARGET = 0.99  # freshness and frequency when the contract states no availability
WINDOW_PROPERTY = "sloWindowDays"  # contract-level customProperty overriding the window
MAX_WINDOW_DAYS = 366
# `meshkit test` measures the same two SLIs on the data at rest (share of rows passing the contract's
# validity checks, share with every required value present); each test run stores them as metric points
# of stage `test` under these names, next to the event-based observations of pipeline runs
CONTRACT_TEST_STAGE = "test"
CONTRACT_TEST_SLI_METRICS: dict[SliKind, str] = {
    "validity": "test.validity_ratio",
    "completeness": "test.completeness_ratio",
}

_SECONDS_PER_UNIT: dict[str, float] = {
    **dict.fromkeys(("ms", "msec", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "week", "weeks"), 7 * 86400.0),
    **dict.fromkeys(("mo", "month", "months"), 30 * 86400.0),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365 * 86400.0),
}
_PERCENT_UNITS = frozenset({"percent", "percentage", "%", "pct"})
_FRACTION_UNITS = frozenset({"ratio", "fraction", "share"})
_ISO_NUMBER = r"(\d+(?:\.\d+)?)"
_ISO_DURATION = re.compile(rf"^P(?:{_ISO_NUMBER}D)?(?:T(?:{_ISO_NUMBER}H)?(?:{_ISO_NUMBER}M)?(?:{_ISO_NUMBER}S)?)?$")
_NUMBER_AND_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z%]*)\s*$")

# SLA properties that are promises, just not SLOs meshkit measures, and why
_NOT_AN_SLO: dict[str, str] = {
    "retention": "retention is a data-lifecycle promise (kept by storage lifecycle rules and checked by the "
    "review), not a service level measured over a window",
    "generalavailability": "a lifecycle date, not a service level",
    "endofsupport": "a lifecycle date, not a service level",
    "endoflife": "a lifecycle date, not a service level",
    "timeofavailability": "a daily deadline (data ready by a time of day) is not derived yet; for near-real-time "
    "products latency and frequency state the promise",
    "throughput": "throughput is a capacity figure shown on the dashboards, not an objective with an error budget",
    "support": "support hours are a promise of the owning team, not a pipeline measurement",
    "timetodetect": "an incident-process figure, not a pipeline measurement",
    "timetonotify": "an incident-process figure, not a pipeline measurement",
    "timetorepair": "an incident-process figure, not a pipeline measurement",
}
_ALIASES = {"ly": "latency", "fy": "frequency", "er": "errorrate", "freshness": "latency"}


@dataclass(frozen=True)
class DerivationNote:
    """Why an SLA entry gave no objective, or how an ambiguous value was read."""

    sla_property: str  # the slaProperties entry (or customProperty) concerned
    reason: str
    index: int | None = None  # position in slaProperties, for a file location

    @property
    def field_path(self) -> str:
        return f"slaProperties[{self.index}]" if self.index is not None else "customProperties"


@dataclass(frozen=True)
class SloDerivation:
    """The objectives of one product and the notes on what was skipped or interpreted."""

    product: str
    objectives: tuple[Objective, ...]
    notes: tuple[DerivationNote, ...]


class _Unusable(ValueError):
    """An SLA value meshkit cannot turn into an objective; the message says why."""


def derive_objectives(contract: Contract, product_ref: str) -> list[Objective]:
    """The objectives a contract's SLA implies (see `derive_slos` for the notes on skipped entries)."""
    return list(derive_slos(contract, product_ref).objectives)


def derive_slos(contract: Contract, product_ref: str) -> SloDerivation:
    """Latency -> freshness, errorRate -> validity, availability -> availability, frequency -> frequency,
    completeness -> completeness; retention and lifecycle dates are no SLOs and say so in the notes."""
    notes: list[DerivationNote] = []
    window = _window_days(contract, notes)
    entries = [(i, p) for i, p in enumerate(contract.odcs.slaProperties or ()) if p.property]
    by_name: dict[str, list[tuple[int, Any]]] = {}
    for index, prop in entries:
        key = _ALIASES.get(str(prop.property).strip().lower(), str(prop.property).strip().lower())
        by_name.setdefault(key, []).append((index, prop))

    availability = _availability_target(by_name.get("availability", []), notes)
    default_target = availability if availability is not None else DEFAULT_TARGET
    target_origin = "the contract's availability" if availability is not None else f"the default {DEFAULT_TARGET:.0%}"

    objectives: list[Objective] = []
    for key, found in by_name.items():
        index, prop = found[0]
        name = str(prop.property)
        for dup_index, dup in found[1:]:
            notes.append(DerivationNote(str(dup.property), f"only the first {name} entry is used", dup_index))
        if key in _NOT_AN_SLO:
            notes.append(DerivationNote(name, _NOT_AN_SLO[key], index))
            continue
        try:
            objective = _objective(key, prop, product_ref, window, default_target, target_origin, notes, index)
        except _Unusable as exc:
            notes.append(DerivationNote(name, str(exc), index))
            continue
        if objective is None:
            notes.append(DerivationNote(name, "unknown SLA property: meshkit derives no objective from it", index))
        else:
            objectives.append(objective)
    objectives.sort(key=lambda o: _KIND_ORDER.index(o.kind))
    if contract.source is None and any(o.kind == "freshness" for o in objectives):
        notes.append(
            DerivationNote(
                "latency",
                "the product has no change-feed source, so its runs carry no source timestamps: the freshness "
                "objective reports no data until lag from upstream products is measured",
            )
        )
    return SloDerivation(product_ref, tuple(objectives), tuple(notes))


_KIND_ORDER: tuple[SliKind, ...] = ("freshness", "frequency", "availability", "validity", "completeness")


def _objective(
    key: str,
    prop: Any,
    product: str,
    window: int,
    default_target: float,
    target_origin: str,
    notes: list[DerivationNote],
    index: int,
) -> Objective | None:
    name = str(prop.property)
    element = str(prop.element) if prop.element else None
    if key == "latency":
        seconds = duration_seconds(prop.value, prop.unit)
        return Objective(
            product=product,
            kind="freshness",
            target=default_target,
            window_days=window,
            threshold_seconds=seconds,
            source_property=name,
            description=(
                f"A run is good when every change it commits reached the current-state table within "
                f"{human_duration(seconds)} of its source timestamp (Cosmos DB _ts/crts, PostgreSQL commit time); "
                f"target from {target_origin}."
            ),
            element=element,
        )
    if key == "frequency":
        seconds = duration_seconds(prop.value, prop.unit)
        return Objective(
            product=product,
            kind="frequency",
            target=default_target,
            window_days=window,
            threshold_seconds=seconds,
            source_property=name,
            description=(
                f"Time is good while the last successful run ended at most {human_duration(seconds)} ago "
                f"(share of time since the first successful run); target from {target_origin}."
            ),
            element=element,
        )
    if key == "availability":
        target = _target(share(prop.value, prop.unit, name, notes, index), name)
        return Objective(
            product=product,
            kind="availability",
            target=target,
            window_days=window,
            threshold_seconds=None,
            source_property=name,
            description="A run is good when it completed (committed its output and offsets); failed runs are bad.",
            element=element,
        )
    if key == "errorrate":
        target = _target(round(1.0 - share(prop.value, prop.unit, name, notes, index), 10), name)
        return Objective(
            product=product,
            kind="validity",
            target=target,
            window_days=window,
            threshold_seconds=None,
            source_property=name,
            description="A change event read from the bus is good when it passes the contract's checks "
            "(it is not dead-lettered); counted over completed runs.",
            element=element,
        )
    if key == "completeness":
        target = _target(share(prop.value, prop.unit, name, notes, index), name)
        return Objective(
            product=product,
            kind="completeness",
            target=target,
            window_days=window,
            threshold_seconds=None,
            source_property=name,
            description="A valid change event is good when its effect reached the changelog table (written, or "
            "recognised as a duplicate or replay of a change already written); counted over completed runs.",
            element=element,
        )
    return None


def _availability_target(found: list[tuple[int, Any]], notes: list[DerivationNote]) -> float | None:
    """The availability target, shared as the default of freshness and frequency (None when unusable)."""
    if not found:
        return None
    index, prop = found[0]
    try:
        return _target(share(prop.value, prop.unit, str(prop.property), [], index), str(prop.property))
    except _Unusable:
        return None  # the availability entry itself reports why


def _target(value: float, name: str) -> float:
    if not 0.0 < value < 1.0:
        raise _Unusable(
            f"{name} gives a target of {value:.4%}: a target must lie strictly between 0% and 100% "
            "(100% leaves no error budget; use e.g. 99.9)"
        )
    return value


def _window_days(contract: Contract, notes: list[DerivationNote]) -> int:
    raw = custom_properties(contract.odcs.customProperties).get(WINDOW_PROPERTY)
    if raw is None:
        return DEFAULT_WINDOW_DAYS
    try:
        days = int(str(raw).strip())
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_WINDOW_DAYS:
        notes.append(
            DerivationNote(
                WINDOW_PROPERTY,
                f"{WINDOW_PROPERTY} {raw!r} is not a whole number of days from 1 to {MAX_WINDOW_DAYS}; "
                f"the default window of {DEFAULT_WINDOW_DAYS} days is used",
            )
        )
        return DEFAULT_WINDOW_DAYS
    return days


def _number(value: Any) -> tuple[float, str]:
    """A value as (number, unit written inside the value, if any): 15, "15", "15m", "15 min"."""
    if isinstance(value, bool) or value is None:
        raise _Unusable(f"value {value!r} is not a number")
    if isinstance(value, int | float):
        return float(value), ""
    match = _NUMBER_AND_UNIT.match(str(value))
    if not match:
        raise _Unusable(f"value {value!r} is not a number")
    return float(match.group(1)), match.group(2)


def duration_seconds(value: Any, unit: str | None) -> float:
    """An ODCS duration in seconds: value 15 with unit `m` (minutes), or `PT15M`, or `"15 min"`."""
    if isinstance(value, str) and (iso := _ISO_DURATION.match(value.strip().upper())) and value.strip() != "P":
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    else:
        number, inline = _number(value)
        written = (unit or inline or "").strip()
        if not written:
            raise _Unusable(f"value {value!r} has no unit; valid units are s, m (minutes), h, d, w, y")
        factor = _SECONDS_PER_UNIT.get(written.lower())
        if factor is None:
            raise _Unusable(f"unknown unit {written!r}; valid units are s, m (minutes), h, d, w, y")
        total = number * factor
    if total <= 0:
        raise _Unusable(f"duration {value!r} is not positive")
    return total


def share(value: Any, unit: str | None, name: str, notes: list[DerivationNote], index: int | None = None) -> float:
    """A share in [0, 1]: `99.5` with unit `percent` (or `%`), `0.995` with unit `ratio`; without a unit a
    value above 1 is read as a percentage and one up to 1 as a fraction (and a note says so)."""
    number, inline = _number(value)
    written = (unit or inline or "").strip().lower()
    if written in _PERCENT_UNITS:
        result = number / 100.0
    elif written in _FRACTION_UNITS:
        result = number
    elif written:
        raise _Unusable(f"unknown unit {written!r} for a share; valid units are percent (or %) and ratio")
    else:
        result = number / 100.0 if number > 1 else number
        how = "a percentage" if number > 1 else "a fraction"
        notes.append(DerivationNote(name, f"value {value!r} has no unit: read as {how} ({result:.4%})", index))
    if not 0.0 <= result <= 1.0:
        raise _Unusable(f"value {value!r} {written} is not a share between 0 and 100%")
    return round(result, 10)  # 99.9 / 100 is 0.9990000000000001 in binary floating point


def human_duration(seconds: float) -> str:
    """`900` -> `15 min`, `3600` -> `1 h`, `86400` -> `1 d` (the largest unit that divides it)."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
