"""Per-column conversion and validation compiled once from the contract.

Each column becomes one function value -> converted value that raises `RuleViolation`; messages name
the column and the rule, and include the received value only for columns that are not personal data,
so a dead-letter reason never carries personal data out of the raw zone.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from meshkit.contracts.model import Column
from meshkit.contracts.types import arrow_type, decimal_params

Converter = Callable[[Any], Any]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_FORMATS = {"uuid": _UUID, "email": _EMAIL}


class RuleViolation(ValueError):
    """One value broke one rule; `code` is `<rule>:<column>` for grouping dead letters."""

    def __init__(self, rule: str, column: str, message: str) -> None:
        super().__init__(message)
        self.code = f"{rule}:{column}"


def _shown(column: Column, value: Any) -> str:
    return "a personal value (not shown)" if column.personal else repr(value)[:80]


def _to_string(column: Column, value: Any) -> str:
    if not isinstance(value, str):
        raise RuleViolation("type", column.name, f"{column.name}: expected a string, got {type(value).__name__}")
    return value


def _to_integer(column: Column, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise RuleViolation("type", column.name, f"{column.name}: expected an integer, got {_shown(column, value)}")
    return int(value)


def _number_converter(column: Column) -> Converter:
    params = decimal_params(column.physical_type)
    if params is None:

        def to_float(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RuleViolation(
                    "type", column.name, f"{column.name}: expected a number, got {_shown(column, value)}"
                )
            return float(value)

        return to_float
    precision, scale = params
    quantum = Decimal(1).scaleb(-scale)

    def to_decimal(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise RuleViolation("type", column.name, f"{column.name}: expected a number, got {_shown(column, value)}")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise RuleViolation(
                "type", column.name, f"{column.name}: expected a decimal number, got {_shown(column, value)}"
            ) from exc
        if not number.is_finite():
            raise RuleViolation("type", column.name, f"{column.name}: must be a finite number")
        if number != number.quantize(quantum):
            raise RuleViolation(
                "scale",
                column.name,
                f"{column.name}: more than {scale} decimal places ({_shown(column, value)})",
            )
        if number.adjusted() >= precision - scale:
            raise RuleViolation("precision", column.name, f"{column.name}: does not fit NUMERIC({precision},{scale})")
        return number.quantize(quantum)

    return to_decimal


def _to_bool(column: Column, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RuleViolation("type", column.name, f"{column.name}: expected true or false, got {_shown(column, value)}")
    return value


def _to_date(column: Column, value: Any) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise RuleViolation(
            "type", column.name, f"{column.name}: expected a date YYYY-MM-DD, got {_shown(column, value)}"
        ) from exc


def _timestamp_converter(column: Column) -> Converter:
    aware = arrow_type(column.logical_type, column.physical_type, column.options).tz is not None

    def to_timestamp(value: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise RuleViolation(
                "type",
                column.name,
                f"{column.name}: expected an ISO-8601 timestamp, got {_shown(column, value)}",
            ) from exc
        if aware:
            if parsed.tzinfo is None:
                raise RuleViolation(
                    "timezone",
                    column.name,
                    f"{column.name}: timestamp has no time zone offset (add Z or +00:00)",
                )
            return parsed.astimezone(UTC)
        return parsed.replace(tzinfo=None)

    return to_timestamp


def _to_json_text(column: Column, value: Any) -> str:
    expected = dict if column.logical_type == "object" else list
    if not isinstance(value, expected):
        raise RuleViolation("type", column.name, f"{column.name}: expected a JSON {column.logical_type}")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_BOUNDS: tuple[tuple[str, Callable[[Decimal, Decimal], bool], str], ...] = (
    ("minimum", operator.ge, "less than"),
    ("maximum", operator.le, "greater than"),
    ("exclusiveMinimum", operator.gt, "not greater than"),
    ("exclusiveMaximum", operator.lt, "not less than"),
)


VectorTest = Callable[[pa.Array], pa.Array]  # values -> booleans (null where the value is null)
Constraint = tuple[Callable[[Any], bool], str, str, VectorTest | None]  # test, rule, message, vectorised


def _constraints(column: Column) -> list[Constraint]:
    opts, name = column.options, column.name
    rules: list[Constraint] = []

    def add(test: Callable[[Any], bool], rule: str, words: str, vector: VectorTest | None = None) -> None:
        rules.append((test, rule, f"{name}: value {words}", vector))

    if column.logical_type == "string":
        if (lo := opts.get("minLength")) is not None:
            add(partial(_min_length, lo), "length", f"shorter than {lo} characters", partial(_v_min_length, lo))
        if (hi := opts.get("maxLength")) is not None:
            add(partial(_max_length, hi), "length", f"longer than {hi} characters", partial(_v_max_length, hi))
        if pattern := opts.get("pattern"):
            # RE2 (Arrow) already has ECMA-262's `$`; Python's `re` needs `ecma_pattern`
            add(partial(_searches, ecma_pattern(pattern)), "pattern", f"does not match {pattern}",
                partial(_v_search, pattern))  # fmt: skip
        if (fmt := opts.get("format")) in _FORMATS:
            add(partial(_matches, _FORMATS[fmt]), "format", f"is not a valid {fmt}",
                partial(_v_search, _FORMATS[fmt].pattern.replace("\\Z", "$")))  # fmt: skip
    if column.logical_type in ("number", "integer"):
        for key, test, words in _BOUNDS:
            if (bound := opts.get(key)) is not None and not isinstance(bound, bool):
                add(partial(_within, test, Decimal(str(bound))), "range", f"is {words} {bound}")
    if column.valid_values is not None:
        listed = ", ".join(map(str, column.valid_values))
        allowed = tuple(column.valid_values)
        vector = partial(_v_is_in, allowed) if all(isinstance(v, str) for v in allowed) else None
        add(frozenset(allowed).__contains__, "enum", f"is not one of {listed}", vector)
    return rules


def vector_checks(column: Column) -> list[tuple[str, str, VectorTest]] | None:
    """The column's rules as Arrow compute functions, or None when one of them has no vector form
    (the decoder then checks that column value by value)."""
    if column.logical_type != "string":
        return None
    checks = []
    for _, rule, message, vector in _constraints(column):
        if vector is None:
            return None
        checks.append((rule, message, vector))
    return checks


def _v_min_length(lo: int, values: pa.Array) -> pa.Array:
    return pc.greater_equal(pc.utf8_length(values), lo)


def _v_max_length(hi: int, values: pa.Array) -> pa.Array:
    return pc.less_equal(pc.utf8_length(values), hi)


def _v_search(pattern: str, values: pa.Array) -> pa.Array:
    return pc.match_substring_regex(values, pattern=pattern)


def _v_is_in(allowed: tuple[str, ...], values: pa.Array) -> pa.Array:
    return pc.is_in(values, value_set=pa.array(allowed, pa.string()))


def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a contract pattern with JSON Schema (ECMA-262) semantics: `$` is the end of the text,
    while Python's `$` also matches before a trailing newline (so "12345678901\\n" would pass `^[0-9]{11}$`)."""
    out, in_class, escaped = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "]":
            in_class = False
            out.append(ch)
        elif ch == "$" and not in_class:
            out.append(r"\Z")
        else:
            out.append(ch)
    return re.compile("".join(out))


def _min_length(lo: int, value: str) -> bool:
    return len(value) >= lo


def _max_length(hi: int, value: str) -> bool:
    return len(value) <= hi


def _searches(rx: re.Pattern[str], value: str) -> bool:
    return rx.search(value) is not None


def _matches(rx: re.Pattern[str], value: str) -> bool:
    return rx.match(value) is not None


def _within(test: Callable[[Decimal, Decimal], bool], bound: Decimal, value: Any) -> bool:
    return test(Decimal(str(value)), bound)


def _base_converter(column: Column) -> Converter:
    kind = column.logical_type
    if kind == "number":
        return _number_converter(column)
    if kind == "timestamp":
        return _timestamp_converter(column)
    if kind in ("string", ""):
        return partial(_to_string, column)
    simple: dict[str, Callable[[Column, Any], Any]] = {
        "integer": _to_integer,
        "boolean": _to_bool,
        "date": _to_date,
        "object": _to_json_text,
        "array": _to_json_text,
    }
    return partial(simple.get(kind, _to_string), column)


def compile_column(column: Column) -> Converter:
    """value -> typed value, or `RuleViolation`; None is allowed only for optional columns.

    This runs once per value of every event, so it is one closure with the checks inlined.
    """
    convert = _base_converter(column)
    rules = tuple(_constraints(column))
    name, required = column.name, column.required
    is_string = column.logical_type == "string"

    def run(value: Any) -> Any:
        if value is None:
            if required:
                raise RuleViolation("required", name, f"{name}: required value is missing")
            return None
        typed = value if is_string and value.__class__ is str else convert(value)
        for test, rule, message, _ in rules:
            if not test(typed):
                raise RuleViolation(rule, name, message)
        return typed

    return run
