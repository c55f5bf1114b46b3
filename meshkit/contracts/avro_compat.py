"""Avro schema compatibility as Confluent's registry defines its modes, on the Avro spec's resolution rules.

`check_compatibility(old, new, mode)`: BACKWARD = the new schema reads data written with the old one
(consumers upgrade first); FORWARD = the old schema reads data written with the new one (producers
upgrade first); FULL = both; NONE = no check. Each check is `resolve(reader, writer)`, the spec's rules:

- records match by unqualified name; a reader field absent from the writer needs a default; a writer
  field absent from the reader is skipped; fields match by name or a reader alias;
- promotions: int -> long, float, double; long -> float, double; float -> double; string <-> bytes;
- a writer union: every branch must be readable; a reader union: some branch must read the writer;
- enums: every writer symbol is a reader symbol, unless the reader has a default symbol;
- arrays, maps: items and values resolve; fixed: same name and size.

Logical types are checked where ignoring them would misread data (Java's resolver ignores them):
decimals need the same scale and a reader precision at least the writer's (the spec asks for equal
precision; a wider one loses no value, so it is allowed); a reader logical type differing from the
writer's on the same underlying type (timestamp-millis vs -micros, instant vs local time, plain long
vs timestamp) reinterprets values and is incompatible; a reader without a logical type reads the
underlying value, as the spec says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from meshkit.contracts.avro import CompatibilityMode
    from meshkit.contracts.model import Contract

Direction = Literal["backward", "forward"]
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_COMPLEX = ("record", "error", "enum", "fixed", "array", "map")
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}  # (writer, reader)


@dataclass(frozen=True)
class Incompatibility:
    """One reason a schema change breaks readers or writers: where, which rule, and what to do."""

    path: str  # record.field[.nested]
    code: str
    direction: Direction  # backward: the new schema cannot read old data; forward: old readers cannot read new data
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.direction}). {self.hint}"


def _names(schema: Any, namespace: str, names: dict[str, dict[str, Any]]) -> None:
    """Collect named types (record, enum, fixed) by full name, as they are defined in the schema."""
    if isinstance(schema, list):
        for branch in schema:
            _names(branch, namespace, names)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        full = _full_name(schema, namespace)
        names[full] = schema
        inner_ns = full.rpartition(".")[0]
        for field in schema.get("fields", ()) if kind != "enum" else ():
            _names(field["type"], inner_ns, names)
    elif kind == "array":
        _names(schema["items"], namespace, names)
    elif kind == "map":
        _names(schema["values"], namespace, names)
    elif isinstance(kind, dict | list):
        _names(kind, namespace, names)


def _full_name(schema: dict[str, Any], namespace: str) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


@dataclass
class _Side:
    names: dict[str, dict[str, Any]]

    def resolve(self, schema: Any, namespace: str = "") -> Any:
        """A name reference -> its definition; `{"type": "long"}` -> `"long"` unless it carries a logical type."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.names.get(schema) or self.names.get(f"{namespace}.{schema}") or _suffix(self.names, schema)
        if isinstance(schema, dict) and isinstance(schema.get("type"), str | list | dict):
            inner = schema["type"]
            if inner in _PRIMITIVES and "logicalType" not in schema:
                return inner
            if isinstance(inner, list | dict) or inner not in (*_PRIMITIVES, *_COMPLEX):
                return self.resolve(inner, namespace)
        return schema


def _suffix(names: dict[str, dict[str, Any]], short: str) -> Any:
    for full, schema in names.items():
        if full.rpartition(".")[2] == short:
            return schema
    return short


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return str(schema.get("type"))


def _logical(schema: Any) -> str | None:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def _shown(schema: Any) -> str:
    if isinstance(schema, list):
        return "union[" + ", ".join(_shown(b) for b in schema) + "]"
    if isinstance(schema, str):
        return schema
    logical = schema.get("logicalType")
    if logical == "decimal":
        return f"decimal({schema.get('precision')},{schema.get('scale', 0)})"
    if logical:
        return str(logical)
    return str(schema.get("name") or schema.get("type"))


class _Resolver:
    """`reader` reads data written with `writer`: the reasons it cannot, found in one walk."""

    def __init__(self, reader: Any, writer: Any, direction: Direction) -> None:
        self.r, self.w = _Side({}), _Side({})
        _names(reader, "", self.r.names)
        _names(writer, "", self.w.names)
        self.direction = direction
        self.found: list[Incompatibility] = []
        self.seen: set[tuple[int, int]] = set()

    def add(self, path: str, code: str, message: str, hint: str) -> None:
        self.found.append(Incompatibility(path, code, self.direction, message, hint))

    def check(self, reader: Any, writer: Any, path: str) -> None:
        reader, writer = self.r.resolve(reader), self.w.resolve(writer)
        rk, wk = _kind(reader), _kind(writer)
        if wk == "union":
            readable = [b for b in writer if self._readable(reader, b)]
            for branch in writer:
                if branch in readable:
                    continue
                if self.w.resolve(branch) == "null":
                    self.add(
                        path,
                        "null-not-readable",
                        f"null can be written but {_shown(reader)} does not take it (optional field became required)",
                        "Keep the field optional (`required: false`) or give every event a value before the change.",
                    )
                else:
                    self.add(
                        path,
                        "union-branch-unreadable",
                        f"the writer's {_shown(branch)} branch is readable by no reader type in {_shown(reader)}",
                        "Keep every branch of the union, or the old type.",
                    )
            for branch in readable:
                self._deep(reader, branch, path)
            return
        if rk == "union":
            match = next((b for b in reader if self._readable(b, writer)), None)
            if match is None:
                self.add(
                    path,
                    "type-changed",
                    f"{_shown(writer)} is readable by no branch of {_shown(reader)}",
                    "Add the old type as a branch or keep the old type.",
                )
            else:
                self.check(match, writer, path)
            return
        self._same_kind(reader, writer, rk, wk, path)

    def _readable(self, reader: Any, writer: Any) -> bool:
        """Whether a writer branch resolves to some reader type at the top level (names and kinds only)."""
        reader, writer = self.r.resolve(reader), self.w.resolve(writer)
        if _kind(reader) == "union":
            return any(self._readable(b, writer) for b in reader)
        rk, wk = _kind(reader), _kind(writer)
        if rk in ("record", "enum", "fixed") or wk in ("record", "enum", "fixed"):
            return rk == wk and _short(reader) == _short(writer)
        return rk == wk or (wk, rk) in _PROMOTIONS

    def _deep(self, reader: Any, writer: Any, path: str) -> None:
        reader = self.r.resolve(reader)
        if _kind(reader) == "union":
            match = next(b for b in reader if self._readable(b, writer))
            self.check(match, writer, path)
        else:
            self.check(reader, writer, path)

    def _same_kind(self, reader: Any, writer: Any, rk: str, wk: str, path: str) -> None:
        if rk != wk and (wk, rk) not in _PROMOTIONS:
            self.add(
                path,
                "type-changed",
                f"type {_shown(writer)} cannot be read as {_shown(reader)}",
                "Keep the type, or use an allowed promotion (int -> long -> float -> double, string <-> bytes); "
                "otherwise add a new field and retire the old one.",
            )
            return
        if rk == "record":
            self._record(reader, writer, path)
        elif rk == "enum":
            self._enum(reader, writer, path)
        elif rk == "fixed" and (reader.get("size") != writer.get("size") or _short(reader) != _short(writer)):
            self.add(path, "fixed-changed", f"fixed {_shown(writer)} cannot be read as {_shown(reader)}",
                     "Keep the fixed type's name and size.")  # fmt: skip
        elif rk == "array":
            self.check(reader["items"], writer["items"], f"{path}[]")
        elif rk == "map":
            self.check(reader["values"], writer["values"], f"{path}{{}}")
        self._logical_types(reader, writer, path)

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        key = (id(reader), id(writer))
        if key in self.seen:  # recursive types: each pair once
            return
        self.seen.add(key)
        if _short(reader) != _short(writer) and _short(writer) not in reader.get("aliases", ()):
            self.add(path, "name-changed", f"record {_short(writer)!r} renamed to {_short(reader)!r}",
                     f"Keep the record name or add the alias {_short(writer)!r} to the new record.")  # fmt: skip
            return
        written = {f["name"]: f for f in writer.get("fields", ())}
        for field in reader.get("fields", ()):
            names = [field["name"], *field.get("aliases", ())]
            source = next((written[n] for n in names if n in written), None)
            where = f"{path}.{field['name']}" if path else field["name"]
            if source is not None:
                self.check(field["type"], source["type"], where)
            elif "default" not in field:
                self.add(where, *_missing_field(self.direction, field["name"]))

    def _enum(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        missing = [s for s in writer.get("symbols", ()) if s not in reader.get("symbols", ())]
        if missing and "default" not in reader:
            self.add(
                path,
                "enum-symbol-missing",
                f"enum symbols {missing} can be written but not read",
                "Keep the symbols, or give the reader's enum a `default` symbol.",
            )

    def _logical_types(self, reader: Any, writer: Any, path: str) -> None:
        rl, wl = _logical(reader), _logical(writer)
        if rl is None:
            return  # the reader takes the underlying value (spec: unknown or absent logical types)
        if rl == "decimal" and wl == "decimal":
            ws, rs = writer.get("scale", 0), reader.get("scale", 0)
            if ws != rs:
                self.add(path, "decimal-scale-changed", f"decimal scale {ws} -> {rs}: every value would be misread",
                         "Keep the scale; to change it add a new column and backfill it.")  # fmt: skip
            elif int(reader.get("precision", 0)) < int(writer.get("precision", 0)):
                self.add(
                    path,
                    "decimal-precision-narrowed",
                    f"decimal precision {writer.get('precision')} -> {reader.get('precision')}: values may not fit",
                    "Keep or widen the precision.",
                )
        elif rl != wl:
            self.add(
                path,
                "logical-type-changed",
                f"logical type {wl or _kind(writer)} -> {rl}: the same bytes would mean something else",
                "Keep the logical type (an instant stays timestamp, a wall-clock time local-timestamp).",
            )


def _short(schema: Any) -> str:
    return str(schema.get("name", "")).rpartition(".")[2] if isinstance(schema, dict) else str(schema)


def _missing_field(direction: Direction, name: str) -> tuple[str, str, str]:
    if direction == "backward":
        return (
            "field-added-without-default",
            f"field {name!r} was added without a default: the new schema cannot read events written before",
            "Give it a default (an optional column: `required: false`), or add it in a new major version.",
        )
    return (
        "field-removed-without-default",
        f"field {name!r} was removed but readers of the old schema need it (it has no default there)",
        "Make it optional (`required: false`) in one release before removing it, or keep it.",
    )


def resolve(reader: Any, writer: Any, direction: Direction = "backward") -> list[Incompatibility]:
    """Why `reader` cannot read data written with `writer` (empty when it can)."""
    resolver = _Resolver(reader, writer, direction)
    resolver.check(reader, writer, _short(resolver.r.resolve(reader)) if isinstance(reader, dict) else "")
    return resolver.found


def check_compatibility(old: Any, new: Any, mode: CompatibilityMode) -> list[Incompatibility]:
    """Confluent's modes: backward = new reads old; forward = old reads new; full = both; none = nothing."""
    found: list[Incompatibility] = []
    if mode in ("backward", "full"):
        found += resolve(new, old, "backward")
    if mode in ("forward", "full"):
        found += resolve(old, new, "forward")
    return found


def contract_schema_changes(
    old_contract: Contract, new_contract: Contract, mode: CompatibilityMode | None = None
) -> list[Incompatibility]:
    """Avro incompatibilities of a contract change under `mode` (default: the new contract's
    `schemaCompatibility`): the table record consumers read, then what the registry checks on the bus."""
    from meshkit.contracts.avro import avro_schema, compatibility_mode, envelope_schema

    mode = mode or compatibility_mode(new_contract)
    found = check_compatibility(avro_schema(old_contract), avro_schema(new_contract), mode)
    seen = {(i.code, i.direction, i.path.rpartition(".")[2]) for i in found}
    for item in check_compatibility(envelope_schema(old_contract), envelope_schema(new_contract), mode):
        if (item.code, item.direction, item.path.rpartition(".")[2]) not in seen:
            found.append(item)
    return found
