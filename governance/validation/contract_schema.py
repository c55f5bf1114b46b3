"""A contract document against the official ODCS v3.1.0 JSON Schema, as precise `Check`s.

The schema ships inside `open-data-contract-standard`; jsonschema's raw messages for `oneOf` and
`if/then` branches are vague, so each error is narrowed to its best sub-error and rewritten to name
the field, the value received and the valid values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft201909Validator
from jsonschema.exceptions import ValidationError, best_match

from meshkit.checks import Check, Status
from meshkit.yamlio import YamlDocument

RULE = "odcs.schema"
_UNEXPECTED = ("unevaluatedProperties", "additionalProperties")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


@cache
def odcs_schema() -> dict[str, Any]:
    """The official schema shipped with the pinned ODCS package (loaded once)."""
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def odcs_validator() -> Draft201909Validator:
    """python-jsonschema over the official schema: slow (~30 ms a contract) but with precise errors."""
    return Draft201909Validator(odcs_schema())


@cache
def odcs_fast_verdict() -> Any:
    """jsonschema-rs over the same official schema (~0.2 ms a contract): it only decides whether a
    contract is valid; invalid ones are explained by `odcs_validator`, so messages stay precise."""
    import jsonschema_rs

    return jsonschema_rs.Draft201909Validator(odcs_schema())


def field_path(parts: Iterable[str | int]) -> str:
    """jsonschema's path (`['servers', 1, 'type']`) in our notation (`servers[1].type`)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _leaf(path: Sequence[str | int]) -> str:
    """The name a person would use for the field: its key, or `item N of <key>` for list items."""
    if not path:
        return "the document"
    if isinstance(path[-1], int):
        return f"item {path[-1]} of {_leaf(path[:-1])}"
    return f"`{path[-1]}`"


def _narrow(error: ValidationError) -> ValidationError:
    """The most specific error inside `oneOf`/`anyOf`/`allOf` branches (best_match stops when tied)."""
    return best_match([error]) if error.context else error


def _unexpected_keys(error: ValidationError) -> list[str]:
    """The keys an `unevaluatedProperties`/`additionalProperties` error names, in document order."""
    inner = error.message.rpartition("(")[2]
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [key for key in instance if repr(key) in inner]


def _context_hint(error: ValidationError) -> str:
    """The allowed forms, by their schema descriptions where the schema has them."""
    forms = []
    for sub in error.context:
        described = sub.schema.get("description") if isinstance(sub.schema, dict) else None
        forms.append(described or sub.message)
    return "Allowed forms: " + "; ".join(dict.fromkeys(forms)) + "."


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[:1] in "aeiou" else f"a {type_name}"


def _describe(error: ValidationError) -> tuple[str, str]:
    """(reason, hint) for one narrowed error."""
    path = list(error.absolute_path)
    leaf, value = _leaf(path), error.instance
    rule: Any = error.validator_value
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(rule)
        kind = value.get("type") if isinstance(value, dict) else None
        need = f" (a `{kind}` entry needs: {', '.join(rule)})" if kind and "then" in error.schema_path else ""
        where = field_path(path) or "the top level"
        return f"'{missing}' is a required property", f"Add `{missing}` to {where}{need}."
    if error.validator == "enum":
        valid = ", ".join(str(v) for v in rule)
        return (
            f"{value!r} is not a valid value for {leaf}; valid values are: {valid}",
            "Use one of the valid values (they are case-sensitive).",
        )
    if error.validator == "const":
        return f"{leaf} must be {rule!r}, got {value!r}", f"Set {leaf} to {rule!r}."
    if error.validator == "type":
        wanted = " or ".join(rule) if isinstance(rule, list) else str(rule)
        if not path and wanted == "object":
            return (
                f"a contract must be a YAML mapping, got {json_type(value)}",
                "Start from `meshkit new <domain>/<product>` or an example in domains/.",
            )
        return f"{leaf} must be of type {wanted}, got {json_type(value)} {value!r}", f"Write {leaf} as {_a(wanted)}."
    if error.validator in ("anyOf", "oneOf") and error.context:
        types = [str(e.validator_value) for e in error.context if e.validator == "type"]
        if len(types) == len(error.context):
            return (
                f"{leaf} must be one of the types {', '.join(types)}, got {json_type(value)}",
                f"Write {leaf} as a single {' or '.join(types[:2])} value.",
            )
        return f"{value!r} matches none of the forms the standard allows for {leaf}", _context_hint(error)
    if error.validator == "pattern":
        return f"{value!r} does not match the pattern {rule} required for {leaf}", (
            description or "Write the value in the form the standard expects."
        )
    if error.validator == "not":
        forbidden = rule.get("required") if isinstance(rule, dict) else None
        if forbidden:
            keys = ", ".join(f"`{k}`" for k in forbidden)
            return f"{keys} must not be set here", description or f"Remove {keys} from {field_path(path)}."
    return f"{leaf}: {error.message}", description or "See the ODCS v3.1.0 reference for this field."


def _check(document: YamlDocument, field: str, reason: str, hint: str) -> Check:
    return Check(
        RULE,
        Status.FAILED,
        reason,
        file=str(document.path),
        line=document.line_of(field),
        field=field or None,
        hint=hint,
    )


def schema_checks(document: YamlDocument) -> list[Check]:
    """Every violation of the official ODCS v3.1.0 JSON Schema, one `Check` each; [] when valid."""
    if odcs_fast_verdict().is_valid(document.data):
        return []
    errors = [_narrow(e) for e in odcs_validator().iter_errors(document.data)]
    precise = [e for e in errors if e.validator not in _UNEXPECTED]
    checks: list[Check] = []
    for error in errors:
        path = list(error.absolute_path)
        if error.validator in _UNEXPECTED:
            # A failing branch leaves its keys "unevaluated", so this error often only echoes a
            # precise error at or below the same object; report the precise one and skip the echo.
            if any(list(p.absolute_path)[: len(path)] == path for p in precise):
                continue
            for key in _unexpected_keys(error) or ["?"]:
                checks.append(
                    _check(
                        document,
                        field_path([*path, key]),
                        f"unknown field `{key}`",
                        "ODCS v3.1.0 does not define it here: fix its spelling, or move it into "
                        "`customProperties` (a list of `property`/`value` pairs).",
                    )
                )
            continue
        reason, hint = _describe(error)
        checks.append(_check(document, field_path(path), reason, hint))
    unique = {(c.field, c.reason): c for c in checks}
    return sorted(unique.values(), key=lambda c: (c.line or 0, c.field or ""))
