"""A small HCL writer whose output `terraform fmt` leaves unchanged: two-space indents, `=` aligned
across runs of one-line attributes (a multi-line value or a comment ends a run), keys sorted by
the caller. Values: str, int, float, bool, None, list, dict, `Expr` (raw expression), `Commented`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
INDENT = "  "
_MAX_INLINE = 100


class Expr(str):
    """An HCL expression written as is (a reference such as `var.project_id`)."""


@dataclass(frozen=True)
class Commented:
    """A map entry or list item with comment lines written above it."""

    value: Any
    comments: tuple[str, ...]


def string(text: str) -> str:
    """An HCL string literal: JSON escapes plus `$${` / `%%{` so text is never interpolated."""
    return json.dumps(text, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def _key(key: str) -> str:
    return key if _IDENTIFIER.match(key) else string(key)


def value(v: Any, depth: int) -> str:
    """`v` as HCL at nesting `depth` (continuation lines are indented for it)."""
    if isinstance(v, Commented):
        return value(v.value, depth)
    if isinstance(v, Expr):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return json.dumps(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        inner = attributes(list(v.items()), depth + 1)
        return "{\n" + "\n".join(inner) + "\n" + INDENT * depth + "}"
    if isinstance(v, Sequence):
        items = list(v)
        if not items:
            return "[]"
        simple = all(not isinstance(i, Mapping | Commented | list | tuple) for i in items)
        inline = "[" + ", ".join(value(i, depth) for i in items) + "]"
        if simple and len(inline) + depth * 2 < _MAX_INLINE:
            return inline
        lines: list[str] = []
        pad = INDENT * (depth + 1)
        for item in items:
            if isinstance(item, Commented):
                lines += [f"{pad}# {c}" if c else f"{pad}#" for c in item.comments]
            lines.append(f"{pad}{value(item, depth + 1)},")
        return "[\n" + "\n".join(lines) + "\n" + INDENT * depth + "]"
    raise TypeError(f"no HCL form for {type(v).__name__}")


def attributes(items: Sequence[tuple[str, Any]], depth: int) -> list[str]:
    """Lines of `key = value` at `depth`, aligned the way `terraform fmt` aligns them."""
    pad = INDENT * depth
    rendered: list[tuple[list[str], str, str]] = []  # (comments, key, value)
    for key, v in items:
        comments = [f"{pad}# {c}" if c else f"{pad}#" for c in v.comments] if isinstance(v, Commented) else []
        rendered.append((comments, _key(key), value(v, depth)))
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        lines.extend(f"{pad}{k.ljust(width)} = {val}" for k, val in run)
        run.clear()

    for comments, key, val in rendered:
        if comments:
            flush()
            lines.extend(comments)
        if "\n" in val:
            flush()
            lines.append(f"{pad}{key} = {val}")
        else:
            run.append((key, val))
    flush()
    return lines


def block(header: str, items: Sequence[tuple[str, Any]], depth: int = 0) -> str:
    """A block such as `module "product" { ... }` with its attributes."""
    pad = INDENT * depth
    return f"{pad}{header} {{\n" + "\n".join(attributes(items, depth + 1)) + f"\n{pad}}}\n"
