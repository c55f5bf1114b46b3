"""What the catalog reads from runs: quality assertions and product neighbours in the OpenLineage events.

The events are read once (monitoring.lineage.graph's reader); a mesh that never ran has none, and the
neighbours then come from the descriptors' input ports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshkit.errors import MeshkitError
from meshkit.products.model import DataProduct
from monitoring.lineage.graph import build_graph, product_of, read_events
from monitoring.lineage.layout import STORE_NAMES
from monitoring.lineage.render import dataset_label, product_view

_DATASET_PREFIX = "dataset:"  # product_view's id of a source dataset no product writes


@dataclass(frozen=True)
class Assertion:
    """A quality check as the last run that judged it reported it (counts only, never values)."""

    name: str
    success: bool
    metric: str | None = None
    column: str | None = None
    expected: str | None = None
    actual: str | None = None
    at: str | None = None  # the run's event time


@dataclass(frozen=True)
class Neighbours:
    """Products (and source datasets) a product reads from and is read by."""

    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # datasets no product writes: the operational stores it reads
    from_events: bool = False
    unseen: tuple[str, ...] = ()  # neighbours the input ports declare that no event shows yet


def load_events(path: Path) -> list[dict[str, Any]]:
    """The readable events of the NDJSON file, or none when nothing ran yet."""
    return read_events(path)[0] if path.is_file() else []


def _time(event: Mapping[str, Any]) -> str:
    try:
        return datetime.fromisoformat(str(event.get("eventTime"))).astimezone(UTC).isoformat()
    except ValueError:
        return str(event.get("eventTime", ""))


def _assertions(items: Any, facet_key: str, at: str) -> Iterable[Assertion]:
    for item in items if isinstance(items, list) else ():
        facets = item.get(facet_key) if isinstance(item, dict) else None
        facet = facets.get("dataQualityAssertions") if isinstance(facets, dict) else None
        for a in facet.get("assertions") or [] if isinstance(facet, dict) else []:
            if isinstance(a, dict) and isinstance(a.get("success"), bool):
                name = a.get("name") or a.get("assertion")
                yield Assertion(
                    str(name), a["success"], a.get("assertion"), a.get("column"), a.get("expected"), a.get("actual"), at
                )


def latest_assertions(events: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Assertion]]:
    """Per product ref, the assertions of its latest completed run that reported any, by name: checks
    on what the run read, overridden by checks on what it wrote."""
    latest: dict[str, tuple[str, dict[str, Assertion]]] = {}
    for event in events:
        job = event.get("job")
        if event.get("eventType") != "COMPLETE" or not isinstance(job, dict):
            continue
        product, _ = product_of(str(job.get("name", "")))
        if product is None:
            continue
        at = _time(event)
        found = {a.name: a for a in _assertions(event.get("inputs"), "inputFacets", at)}
        found |= {a.name: a for a in _assertions(event.get("outputs"), "facets", at)}
        if found and (product not in latest or at >= latest[product][0]):
            latest[product] = (at, found)
    return {product: found for product, (_, found) in latest.items()}


def lineage_neighbours(products: Sequence[DataProduct], events: Sequence[Mapping[str, Any]]) -> dict[str, Neighbours]:
    """Upstream and downstream products of each product: those the events show (product_view's product
    edges) and those the input ports declare; declared ones no event shows yet are marked unseen."""
    declared: set[tuple[str, str]] = set()
    for p in products:
        try:
            declared |= {(u, p.ref) for u in p.descriptor.upstream}
        except MeshkitError:
            continue  # validation reports the descriptor
    observed: set[tuple[str, str]] = set()
    sources: dict[str, set[str]] = defaultdict(set)
    if events:
        graph = build_graph(dict(e) for e in events)
        for link in product_view(graph).links:
            if link.source.startswith(_DATASET_PREFIX):
                ds = graph.datasets.get(link.source.removeprefix(_DATASET_PREFIX))
                label = f"{dataset_label(ds)[0]} ({STORE_NAMES.get(ds.store, ds.store)})" if ds else link.source
                sources[link.target].add(label)
            else:
                observed.add((link.source, link.target))
    up: dict[str, set[str]] = defaultdict(set)
    down: dict[str, set[str]] = defaultdict(set)
    unseen: dict[str, set[str]] = defaultdict(set)
    for a, b in observed | declared:
        up[b].add(a)
        down[a].add(b)
        if events and (a, b) not in observed:
            unseen[a].add(b)
            unseen[b].add(a)
    return defaultdict(
        Neighbours,
        {
            p.ref: Neighbours(
                tuple(sorted(up[p.ref])),
                tuple(sorted(down[p.ref])),
                tuple(sorted(sources[p.ref])),
                bool(events),
                tuple(sorted(unseen[p.ref])),
            )
            for p in products
        },
    )
