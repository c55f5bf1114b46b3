"""Column values from PostgreSQL's text output, by type OID: the one mapping the snapshot and the stream share.

Both sessions run with `SESSION_OPTIONS` (ISO dates, UTC, round-trip floats), so the text forms parsed
here are fixed whatever the server's defaults. Types without an entry stay text (uuid, text, enums,
arrays, intervals...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

SESSION_OPTIONS = "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c IntervalStyle=iso_8601"


def _bool(text: str) -> bool:
    return text == "t"


def _numeric(text: str) -> Decimal | str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return value if value.is_finite() else text  # NaN/Infinity stay text: JSON has no number for them


def _float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text  # NaN/Infinity stay text, as for numeric


def _date(text: str) -> date | str:
    try:
        return date.fromisoformat(text)
    except ValueError:  # infinity, BC dates
        return text


def _timestamp(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def _timestamptz(text: str) -> datetime | str:
    value = _timestamp(text)
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo is not None else value


def _json(text: str) -> Any:
    return orjson.loads(text)


CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: _bool,  # bool
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    26: int,  # oid
    700: _float,  # float4
    701: _float,  # float8
    1700: _numeric,  # numeric
    1082: _date,  # date
    1114: _timestamp,  # timestamp
    1184: _timestamptz,  # timestamptz
    114: _json,  # json
    3802: _json,  # jsonb
    # text, varchar, bpchar, name, uuid and every other type: the text form as is
}


def convert(type_oid: int, text: str | None) -> Any:
    """One column value from its text output form (None for SQL NULL; unknown types stay text)."""
    if text is None:
        return None
    converter = CONVERTERS.get(type_oid)
    return text if converter is None else converter(text)
