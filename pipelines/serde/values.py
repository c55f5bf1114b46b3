"""Between a change event's JSON document form and the Python values Avro writes, compiled once per schema.

Sources hand the relay JSON documents (ISO-8601 dates and timestamps, decimals as numbers or strings);
Avro writes `Decimal`, `datetime` and `date` values. `avro_values(schema)` converts a document to
those, refusing (with `UnfitValue`) what the schema cannot hold, so the producer can send that event
as JSON for the pipeline to dead-letter with the contract rule it breaks. `plain_values(schema)` is
the way back, to exactly the form the pipeline's JSON decoding seam reads (decimals as exact strings).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from meshkit.contracts.avro import JSON_ATTRIBUTE

Convert = Callable[[Any], Any]


class UnfitValue(ValueError):
    """A value the writer schema cannot hold; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _identity(value: Any) -> Any:
    return value


def _named(schema: Any, names: dict[str, Any], namespace: str) -> Any:
    if isinstance(schema, str) and schema in names:
        return names[schema]
    if isinstance(schema, str) and f"{namespace}.{schema}" in names:
        return names[f"{namespace}.{schema}"]
    return schema


def _register(schema: dict[str, Any], names: dict[str, Any], namespace: str) -> str:
    name = str(schema["name"])
    full = name if "." in name else f"{schema.get('namespace', namespace)}.{name}".lstrip(".")
    names[full] = schema
    return full.rpartition(".")[0]


def _typed(check: type | tuple[type, ...], what: str, path: str) -> Convert:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) and bool not in (check if isinstance(check, tuple) else (check,)):
            raise UnfitValue(path, f"expected {what}, got a boolean")
        if not isinstance(value, check):
            raise UnfitValue(path, f"expected {what}, got {type(value).__name__}")
        return value

    return convert


def _decimal(schema: dict[str, Any], path: str) -> Convert:
    precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise UnfitValue(path, f"expected a decimal number, got {type(value).__name__}")
        try:
            number = Decimal(str(value))
            exact = number.quantize(quantum)
        except InvalidOperation as exc:
            raise UnfitValue(path, "not a decimal number within the precision") from exc
        if not number.is_finite() or number != exact or exact.adjusted() >= precision - scale:
            raise UnfitValue(path, f"does not fit decimal({precision},{scale})")
        return exact

    return convert


def _parse(kind: type, path: str) -> Convert:
    def convert(value: Any) -> Any:
        if isinstance(value, kind) and not (kind is date and isinstance(value, datetime)):
            return value
        try:
            return kind.fromisoformat(value)  # type: ignore[attr-defined]
        except (TypeError, ValueError) as exc:
            raise UnfitValue(path, f"expected an ISO-8601 {kind.__name__}") from exc

    return convert


def _timestamp(path: str, *, aware: bool) -> Convert:
    parse = _parse(datetime, path)

    def convert(value: Any) -> datetime:
        parsed: datetime = parse(value)
        if aware and parsed.tzinfo is None:
            raise UnfitValue(path, "timestamp has no time zone offset")
        return parsed.astimezone(UTC) if aware else parsed.replace(tzinfo=None)

    return convert


def _uuid(path: str) -> Convert:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise UnfitValue(path, "expected a UUID string")
        try:
            uuid.UUID(value)
        except ValueError as exc:
            raise UnfitValue(path, "not a UUID") from exc
        return value  # written as received: the reader schema reads it back as the same string

    return convert


def _json_text(path: str) -> Convert:
    def convert(value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    return convert


def _bytes(path: str) -> Convert:
    def convert(value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):  # JSON carries binary as base64
            try:
                return base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise UnfitValue(path, "expected base64 text") from exc
        raise UnfitValue(path, f"expected bytes, got {type(value).__name__}")

    return convert


_PRIMITIVE_CHECKS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "a string"),
    "boolean": (bool, "true or false"),
    "int": (int, "an integer"),
    "long": (int, "an integer"),
    "float": ((int, float), "a number"),
    "double": ((int, float), "a number"),
}


def avro_values(schema: Any) -> Convert:
    """document -> the Python values fastavro writes for `schema`; `UnfitValue` for what it cannot hold."""
    return _to_avro(schema, {}, "", "")


def _to_avro(schema: Any, names: dict[str, Any], namespace: str, path: str) -> Convert:
    schema = _named(schema, names, namespace)
    if isinstance(schema, list):
        return _union_to_avro(schema, names, namespace, path)
    if isinstance(schema, str):
        if schema == "null":
            return _identity
        if schema == "bytes":
            return _bytes(path)
        check, what = _PRIMITIVE_CHECKS[schema]
        return _typed(check, what, path)
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, dict | list):
        return _to_avro(kind, names, namespace, path)
    if kind == "record":
        return _record_to_avro(schema, names, namespace, path)
    if kind == "array":
        item = _to_avro(schema["items"], names, namespace, f"{path}[]")
        return lambda v: [item(x) for x in _typed(list, "an array", path)(v)]
    if kind == "map":
        value = _to_avro(schema["values"], names, namespace, f"{path}{{}}")
        return lambda v: {k: value(x) for k, x in _typed(dict, "an object", path)(v).items()}
    special: dict[str | None, Callable[[], Convert]] = {
        "decimal": lambda: _decimal(schema, path),
        "timestamp-micros": lambda: _timestamp(path, aware=True),
        "timestamp-millis": lambda: _timestamp(path, aware=True),
        "local-timestamp-micros": lambda: _timestamp(path, aware=False),
        "local-timestamp-millis": lambda: _timestamp(path, aware=False),
        "date": lambda: _parse(date, path),
        "time-micros": lambda: _parse(time, path),
        "time-millis": lambda: _parse(time, path),
        "uuid": lambda: _uuid(path),
    }
    if logical in special:
        return special[logical]()
    if schema.get(JSON_ATTRIBUTE):
        return _json_text(path)
    return _to_avro(kind, names, namespace, path)


def _union_to_avro(schema: list[Any], names: dict[str, Any], namespace: str, path: str) -> Convert:
    branches = [b for b in schema if b != "null"]
    nullable = len(branches) < len(schema)
    if len(branches) != 1:  # a union of primitives (e.g. a partition key value): fastavro picks the branch
        return _identity
    inner = _to_avro(branches[0], names, namespace, path)
    # Cosmos DB's delete carries `current: {}`: an empty object where an optional record goes is null
    empty_is_null = nullable and _kind_of(branches[0], names, namespace) == "record"

    def convert(value: Any) -> Any:
        if value is None or (empty_is_null and value == {}):
            if not nullable:
                raise UnfitValue(path, "required value is missing")
            return None
        return inner(value)

    return convert


def _record_to_avro(schema: dict[str, Any], names: dict[str, Any], namespace: str, path: str) -> Convert:
    inner_ns = _register(schema, names, namespace)
    fields = [
        (
            f["name"],
            _to_avro(f["type"], names, inner_ns, f"{path}.{f['name']}" if path else f["name"]),
            _accepts_null(f["type"], names, inner_ns),
        )
        for f in schema["fields"]
    ]

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise UnfitValue(path or schema["name"], f"expected an object, got {type(value).__name__}")
        out: dict[str, Any] = {}
        for name, field, nullable in fields:
            item = value.get(name)
            if item is None and not nullable:
                raise UnfitValue(f"{path}.{name}" if path else name, "required value is missing")
            out[name] = None if item is None else field(item)
        return out

    return convert


def _kind_of(schema: Any, names: dict[str, Any], namespace: str) -> str:
    schema = _named(schema, names, namespace)
    return str(schema.get("type")) if isinstance(schema, dict) else str(schema)


def _accepts_null(schema: Any, names: dict[str, Any], namespace: str) -> bool:
    schema = _named(schema, names, namespace)
    return schema == "null" or (isinstance(schema, list) and "null" in schema)


def plain_values(schema: Any) -> Convert:
    """decoded Avro values -> the JSON document form (ISO text, decimals as exact strings, JSON objects)."""
    return _to_plain(schema, {}, "")


def _iso(value: Any) -> Any:
    return value.isoformat()


def _to_plain(schema: Any, names: dict[str, Any], namespace: str) -> Convert:
    schema = _named(schema, names, namespace)
    if isinstance(schema, list):
        branches = [_to_plain(b, names, namespace) for b in schema if b != "null"]
        if len(branches) == 1:
            inner = branches[0]
            if inner is _identity:
                return _identity
            return lambda v: None if v is None else inner(v)
        return _plain_any
    if isinstance(schema, str):
        return _base64 if schema == "bytes" else _identity
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, dict | list):
        return _to_plain(kind, names, namespace)
    if kind == "record":
        inner_ns = _register(schema, names, namespace)
        fields = [(f["name"], _to_plain(f["type"], names, inner_ns)) for f in schema["fields"]]
        plain = [n for n, c in fields if c is _identity]
        converted = [(n, c) for n, c in fields if c is not _identity]

        def record(value: dict[str, Any]) -> dict[str, Any]:
            out = {n: value[n] for n in plain}
            for n, c in converted:
                out[n] = c(value[n])
            return out

        return record
    if kind == "array":
        item = _to_plain(schema["items"], names, namespace)
        return _identity if item is _identity else (lambda v: [item(x) for x in v])
    if kind == "map":
        value = _to_plain(schema["values"], names, namespace)
        return _identity if value is _identity else (lambda v: {k: value(x) for k, x in v.items()})
    if logical == "decimal":
        return str
    if logical in {"timestamp-micros", "timestamp-millis", "local-timestamp-micros", "local-timestamp-millis"}:
        return _iso
    if logical in {"date", "time-micros", "time-millis"}:
        return _iso
    if logical == "uuid":
        return str
    if schema.get(JSON_ATTRIBUTE):
        return json.loads
    return _to_plain(kind, names, namespace)


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _plain_any(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return _base64(value)
    return value


def without_uuid_logical_type(schema: Any) -> Any:
    """A copy of `schema` reading uuid strings as written (fastavro would return `uuid.UUID`, lower-cased)."""
    if isinstance(schema, list):
        return [without_uuid_logical_type(b) for b in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("logicalType") == "uuid":
        return {k: v for k, v in schema.items() if k != "logicalType"}
    out = dict(schema)
    for key in ("type", "items", "values"):
        if key in out and isinstance(out[key], dict | list):
            out[key] = without_uuid_logical_type(out[key])
    if "fields" in out:
        out["fields"] = [{**f, "type": without_uuid_logical_type(f["type"])} for f in out["fields"]]
    return out
