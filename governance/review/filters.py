"""Jinja2 filters of the review templates: table-cell escaping, percentages, durations, money."""

from __future__ import annotations

from monitoring.slo.budget import MEASURED_IN
from monitoring.slo.status import ObjectiveStatus


def markdown_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: no HTML, no column breaks, one line."""
    text = "" if value is None else str(value)
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return " ".join(text.split())


def percent(share: float | None, digits: int = 1) -> str:
    """`0.995` -> `99.5%`; targets keep their significant digits (`digits=-1`), None is a dash."""
    if share is None:
        return "–"
    if digits < 0:
        return f"{share * 100:.3f}".rstrip("0").rstrip(".") + "%"
    return f"{share * 100:.{digits}f}%"


def measured(status: ObjectiveStatus) -> str:
    """Good / total in the objective's own unit: runs, events, or time for the frequency SLI."""
    counts = status.counts
    if not counts.total:
        return "–"
    unit = MEASURED_IN[status.objective.kind]
    if unit == "seconds":
        return f"{duration(counts.good)} / {duration(counts.total)}"
    return f"{counts.good:,.0f} / {counts.total:,.0f} {unit}"


def burn(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1f}x"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def money(value: float | None) -> str:
    return "–" if value is None else f"${value:,.2f}"


def score(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"
