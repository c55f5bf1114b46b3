"""Time-series charts as geometry: axes, ticks, lines, bars and thresholds, laid out once in Python
and drawn as inline SVG by the dashboard template (no JavaScript, no external assets).

`layout_chart` turns a `ChartSpec` (plain `(ISO timestamp, value)` series) into a `ChartLayout` of
pixel coordinates and tick labels; the template only places what it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Literal

from monitoring.slo.budget import parse_time

Unit = Literal["seconds", "count", "rate", "percent"]
ChartKind = Literal["line", "bar"]

WIDTH, HEIGHT = 360, 190
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 14, 12, 30
# one colour per series, distinguishable for the common colour-vision deficiencies (Okabe–Ito)
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
_LABEL_HALF_WIDTH = 3.2  # px per character / 2 at the ticks' 10.5 px font
MAX_MARKERS = 60  # beyond this many points a marker per point is noise
# tick steps a person reads at a glance: seconds up to a week
_DURATION_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
_TIME_STEPS = (1, 2, 5, 10, 15, 30, *_DURATION_STEPS)


@dataclass(frozen=True)
class Series:
    """One line (or the bars) of a chart: `(ISO-8601 timestamp, value)` points, oldest first."""

    label: str
    points: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Threshold:
    """A horizontal reference line, e.g. the contract's latency bound."""

    label: str
    value: float


@dataclass(frozen=True)
class ChartSpec:
    """What to draw; `floor`/`ceiling` are values the y axis must include (0 and 100 for a budget)."""

    key: str
    title: str
    unit: Unit
    series: tuple[Series, ...]
    kind: ChartKind = "line"
    threshold: Threshold | None = None
    floor: float | None = 0.0
    ceiling: float | None = None
    clip_below: float | None = None  # values under it are drawn on it (tooltips keep the true value)
    empty_text: str = "No data in the recorded runs."
    note: str | None = None


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class PlottedSeries:
    label: str
    color: str
    polyline: str  # the SVG `points` attribute of a line chart
    markers: tuple[Marker, ...]
    bars: tuple[Bar, ...]
    point_count: int
    latest: str  # the newest value, formatted, for the legend


@dataclass(frozen=True)
class PlottedThreshold:
    y: float
    label: str


@dataclass(frozen=True)
class ChartLayout:
    """A chart in pixels: the plot box, both axes' ticks, the series and the threshold."""

    key: str
    title: str
    kind: ChartKind
    unit: Unit
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    series: tuple[PlottedSeries, ...]
    threshold: PlottedThreshold | None
    zero_y: float | None  # where y = 0 lies, when it is inside the plot
    time_range: str  # "2026-03-01 10:00 – 10:05 UTC", for the caption
    empty_text: str
    note: str | None

    @property
    def empty(self) -> bool:
        return not self.series


def _compact(value: float) -> str:
    """Three significant digits at most, with k/M/G: 1234 -> 1.23k, 999.9 -> 1k."""
    rounded = float(f"{value:.3g}")
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= bound:
            return f"{rounded / bound:g}{suffix}"
    return f"{rounded:g}"


def format_duration(seconds: float) -> str:
    """`45 s`, `12.5 min`, `3 h`, `2 d`: one unit, at most three significant digits."""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{sign}{seconds / size:.3g} {unit}"
    return f"{sign}{_compact(seconds)} s"


def format_value(value: float, unit: Unit) -> str:
    """A value as an axis or legend label in its unit."""
    if unit == "seconds":
        return format_duration(value)
    if unit == "percent":
        return f"{_compact(value)}%"
    if unit == "rate":
        return f"{_compact(value)}/s"
    return _compact(value)


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def value_ticks(low: float, high: float, unit: Unit, count: int = 4) -> tuple[float, float, list[float]]:
    """A y range widened to round steps and the tick values inside it; durations step in minutes
    and hours once the span is long enough."""
    if high <= low:
        high = low + (1.0 if unit != "percent" else 10.0)
    span = high - low
    step = _nice_step(span, count)
    if unit == "seconds" and span / count >= 60:
        step = next((s for s in _DURATION_STEPS if s >= span / count), _DURATION_STEPS[-1])
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [start + i * step for i in range(round((end - start) / step) + 1)]
    return start, end, ticks


def time_ticks(start: float, end: float, count: int = 4) -> list[tuple[float, str]]:
    """Tick times on round boundaries (UTC) between `start` and `end`, labelled at the step's grain."""
    step = next((s for s in _TIME_STEPS if s >= (end - start) / count), _TIME_STEPS[-1])
    grain = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m-%d"
    first = math.ceil(start / step) * step
    return [
        (t, datetime.fromtimestamp(t, UTC).strftime(grain))
        for t in (first + i * step for i in range(int((end - first) // step) + 1))
    ]


def _time_range(start: float, end: float) -> str:
    first, last = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    tail = last.strftime("%H:%M:%S" if first.date() == last.date() else "%Y-%m-%d %H:%M:%S")
    return f"{first:%Y-%m-%d %H:%M:%S} – {tail} UTC" if last != first else f"{first:%Y-%m-%d %H:%M:%S} UTC"


def _bar(x: float, y: float, base: float, width: float, title: str) -> Bar:
    """A bar from the baseline to `y`; a zero still shows, as one pixel on the baseline."""
    top, height = min(y, base), abs(base - y)
    if height < 1:
        top, height = base - 1, 1.0
    return Bar(round(x - width / 2, 1), round(top, 1), round(width, 1), round(height, 1), title)


def layout_chart(spec: ChartSpec, width: int = WIDTH, height: int = HEIGHT) -> ChartLayout:
    """Place a chart's series in a `width` × `height` SVG; series without points are left out."""
    left, top = float(MARGIN_LEFT), float(MARGIN_TOP)
    right, bottom = float(width - MARGIN_RIGHT), float(height - MARGIN_BOTTOM)
    drawn = [s for s in spec.series if s.points]
    frame = (spec.key, spec.title, spec.kind, spec.unit, width, height, left, top, right, bottom)
    if not drawn:
        return ChartLayout(*frame, (), (), (), None, None, "", spec.empty_text, spec.note)
    times = [parse_time(ts).timestamp() for s in drawn for ts, _ in s.points]
    first, last = min(times), max(times)
    # room at both ends: a line's end markers stay inside the box, a bar's half-width too
    slots = max(max(len(s.points) for s in drawn) - 1, 1)
    pad = max((last - first) * (0.5 / slots if spec.kind == "bar" else 0.04), 30.0 if last == first else 0.0)
    t0, t1 = first - pad, last + pad
    clip = spec.clip_below if spec.clip_below is not None else -math.inf
    values = [max(v, clip) for s in drawn for _, v in s.points]
    limits = [*values, *(b for b in (spec.floor, spec.ceiling) if b is not None)]
    if spec.threshold is not None:
        limits.append(spec.threshold.value)
    y0, y1, y_values = value_ticks(min(limits), max(limits), spec.unit)

    def x_of(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (right - left)

    def y_of(v: float) -> float:
        return bottom - (v - y0) / (y1 - y0) * (bottom - top)

    plotted = []
    for index, s in enumerate(drawn):
        xy = [
            (x_of(parse_time(ts).timestamp()), y_of(max(v, clip)), f"{ts}: {format_value(v, spec.unit)}")
            for ts, v in s.points
        ]
        bars: tuple[Bar, ...] = ()
        if spec.kind == "bar":
            xs = sorted(x for x, _, _ in xy)
            gaps = [b - a for a, b in pairwise(xs) if b > a]
            bar_width = max(2.0, min(24.0, 0.6 * min(gaps, default=40.0), 0.6 * (right - left) / len(xy)))
            base = y_of(max(y0, 0.0))
            bars = tuple(_bar(x, y, base, bar_width, tip) for x, y, tip in xy)
        markers = tuple(Marker(round(x, 1), round(y, 1), tip) for x, y, tip in xy) if len(xy) <= MAX_MARKERS else ()
        plotted.append(
            PlottedSeries(
                label=s.label,
                color=PALETTE[index % len(PALETTE)],
                polyline=" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy),
                markers=markers if spec.kind == "line" else (),
                bars=bars,
                point_count=len(xy),
                latest=format_value(s.points[-1][1], spec.unit),
            )
        )
    threshold = None
    if spec.threshold is not None:
        label = f"{spec.threshold.label} {format_value(spec.threshold.value, spec.unit)}"
        threshold = PlottedThreshold(round(y_of(spec.threshold.value), 1), label)
    return ChartLayout(
        *frame,
        x_ticks=tuple(
            Tick(round(x, 1), label)
            for x, label in ((x_of(t), label) for t, label in time_ticks(t0, t1))
            if _LABEL_HALF_WIDTH * len(label) <= x <= width - _LABEL_HALF_WIDTH * len(label)  # none cut by an edge
        ),
        y_ticks=tuple(Tick(round(y_of(v), 1), format_value(v, spec.unit)) for v in y_values),
        series=tuple(plotted),
        threshold=threshold,
        zero_y=round(y_of(0.0), 1) if y0 < 0 < y1 else None,
        time_range=_time_range(first, last),
        empty_text=spec.empty_text,
        note=spec.note,
    )
