"""Safe YAML loading that remembers where every value came from.

Dates and timestamps stay strings, as in YAML 1.2 and JSON: ODCS is defined over the JSON data
model, and a contract author who writes `2025-01-28` means that text, not a Python `date`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshkit.errors import ContractError, Location

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster when present


class _JsonCompatibleLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader without the YAML 1.1 timestamp resolver."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class YamlDocument:
    """A parsed document plus the 1-based line of each field path (`schema[0].properties[2].name`)."""

    path: Path
    data: Any
    lines: dict[str, int]

    def line_of(self, field: str) -> int | None:
        """The line of `field`, or of its nearest parent that has one."""
        probe = field
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.lines.get("", 1)

    def location(self, field: str) -> Location:
        return Location(str(self.path), self.line_of(field), field or None)


def _index_lines(node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{prefix}.{key}" if prefix else key
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{prefix}[{i}]"
            lines[child] = item.start_mark.line + 1
            _index_lines(item, child, lines)


_PARSED: dict[tuple[str, int, int], YamlDocument] = {}
_PARSED_LIMIT = 8192


def load_yaml(path: Path) -> YamlDocument:
    """Load one YAML file safely; syntax errors become a `ContractError` with file and line.

    A file unchanged since it was last parsed (same path, size and modification time) is not parsed
    again: validation, the review and its sections all read the same contracts. Treat the returned
    document as read-only."""
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)  # same spelling: locations keep the caller's path
        if key in _PARSED:
            return _PARSED[key]
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContractError(
            "file not found", location=Location(str(path)), hint="Check the path or run `meshkit new`."
        ) from exc
    document = parse_yaml(text, path)
    if len(_PARSED) >= _PARSED_LIMIT:
        _PARSED.clear()
    _PARSED[key] = document
    return document


def parse_yaml(text: str, path: Path) -> YamlDocument:
    loader = _JsonCompatibleLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ContractError(
            f"invalid YAML: {exc.problem or exc}",
            location=Location(str(path), line),
            hint="Fix the YAML syntax at that line (indentation, quotes, a missing colon).",
        ) from exc
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _index_lines(node, "", lines)
    return YamlDocument(path=path, data=data, lines=lines)
