"""A column's flow through the lineage graph: every column edge upstream and downstream of it, and
where its values are masked (from the transformations' `masking` flags along the way).
"""

from __future__ import annotations

import difflib
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.errors import ConfigError
from monitoring.lineage.graph import ColumnEdge, LineageGraph

Field = tuple[str, str]  # (dataset id, field name)


@dataclass(frozen=True)
class ColumnFlow:
    """Every column edge upstream and downstream of the fields called `column`."""

    column: str
    edges: tuple[ColumnEdge, ...]  # sources first
    fields: frozenset[Field]
    masked: Mapping[Field, str]  # fields that hold masked values, with how (e.g. HASHED)

    @property
    def masking_points(self) -> tuple[ColumnEdge, ...]:
        return tuple(e for e in self.edges if e.masking)


def column_flow(graph: LineageGraph, column: str) -> ColumnFlow:
    """Column edges reachable upstream and downstream of every field named `column`."""
    known = graph.columns()
    if column not in known:
        close = difflib.get_close_matches(column, known, n=3, cutoff=0.5)
        some = ", ".join((*close, *(c for c in known if c not in close))[:12]) or "none (no schema facets yet)"
        raise ConfigError(f"no column named {column!r} in the lineage events", hint=f"Known columns include: {some}.")
    forward: dict[Field, list[ColumnEdge]] = defaultdict(list)
    backward: dict[Field, list[ColumnEdge]] = defaultdict(list)
    for edge in graph.column_edges:
        forward[(edge.source, edge.source_field)].append(edge)
        backward[(edge.target, edge.target_field)].append(edge)
    seeds = {(d.id, column) for d in graph.datasets.values() if column in d.fields}
    seeds |= {f for f in (*forward, *backward) if f[1] == column}
    found: set[ColumnEdge] = set()
    for index, downstream in ((forward, True), (backward, False)):
        seen, queue = set(seeds), deque(seeds)
        while queue:
            for edge in index.get(queue.popleft(), ()):
                found.add(edge)
                nxt = (edge.target, edge.target_field) if downstream else (edge.source, edge.source_field)
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
    ordered = _sources_first(found)
    fields = frozenset(
        seeds | {(e.source, e.source_field) for e in ordered} | {(e.target, e.target_field) for e in ordered}
    )
    return ColumnFlow(column, ordered, fields, _masked(ordered))


def _sources_first(edges: set[ColumnEdge]) -> tuple[ColumnEdge, ...]:
    """Edges ordered by how far their source field is from the flow's roots (cycles cut)."""
    depth: dict[Field, int] = {}
    for _ in range(len(edges) + 1):
        changed = False
        for e in edges:
            d = depth.get((e.source, e.source_field), 0) + 1
            if d > depth.get((e.target, e.target_field), 0) and d <= len(edges):
                depth[(e.target, e.target_field)] = d
                changed = True
        if not changed:
            break
    return tuple(
        sorted(edges, key=lambda e: (depth.get((e.source, e.source_field), 0), e.source, e.target, e.target_field))
    )


def _masked(edges: tuple[ColumnEdge, ...]) -> dict[Field, str]:
    """A field holds masked values when every DIRECT input is a masking step or a masked field."""
    incoming: dict[Field, list[ColumnEdge]] = defaultdict(list)
    for e in edges:
        if not e.indirect:
            incoming[(e.target, e.target_field)].append(e)
    masked: dict[Field, str] = {}
    for _ in range(len(edges) + 1):
        before = dict(masked)
        for target, into in incoming.items():
            labels = [e.label if e.masking else masked.get((e.source, e.source_field)) for e in into]
            if all(labels):
                masked[target] = str(labels[0])
        if masked == before:
            break
    return masked
