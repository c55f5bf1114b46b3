"""Where a lineage view's boxes go: the view model, and its placement left to right by dependency depth.

`View` (nodes, links, groups) is what `render.mesh_view` and `render.product_view` build; `layout` turns
it into the boxes, group frames, arrows and legend that the SVG template (`templates/lineage.html.j2`) draws.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

STORE_NAMES = {"cosmos": "Cosmos DB", "postgres": "PostgreSQL", "event-log": "event log", "lake": "lake"}
STORE_NAMES |= {"warehouse": "warehouse", "file": "file", "other": "dataset"}
# geometry in SVG user units; characters are estimated at ~0.58 em
COL_W, NODE_H, GAP_X, GAP_Y, PAD, HEADER, MARGIN, BAND_GAP, LEGEND_ROW = 208, 44, 76, 14, 12, 26, 16, 16, 20
Shape = Literal["dataset", "job", "product"]
LinkStyle = Literal["flow", "parent", "declared", "column"]
_LINK_NAMES = {"parent": "parent run", "declared": "declared in ports, not yet in events", "column": "column edge"}


@dataclass(frozen=True)
class ViewNode:
    ref: str  # unique in the view: a product ref, `dataset:<id>` or `job:<id>`
    title: str
    detail: str
    shape: Shape
    style: str  # store (datasets), run state (jobs) or review status (products)
    group: str | None
    tooltip: str
    order: int = 0
    href: str | None = None
    badge: str | None = None  # the chosen column's fields here, e.g. `cpf · HASHED`
    highlighted: bool = False


@dataclass(frozen=True)
class ViewLink:
    source: str
    target: str
    style: LinkStyle = "flow"
    label: str | None = None
    highlighted: bool = False
    masking: bool = False


@dataclass(frozen=True)
class ViewGroup:
    key: str
    label: str
    domain: str


@dataclass(frozen=True)
class View:
    title: str
    nodes: tuple[ViewNode, ...]
    links: tuple[ViewLink, ...]
    groups: tuple[ViewGroup, ...]


@dataclass(frozen=True)
class GraphBox:
    node: ViewNode
    x: int
    y: int
    width: int = COL_W
    height: int = NODE_H

    @property
    def ref(self) -> str:
        return self.node.ref

    def text(self, which: str) -> str:
        """Title, detail or badge cut to the box width (the tooltip keeps the full text)."""
        value = getattr(self.node, which) or ""
        limit = int((self.width - 20) / (7.3 if which == "title" else 6.2))
        return value if len(value) <= limit else value[: limit - 1] + "…"

    @property
    def points(self) -> str:
        """A hexagon inside the box (jobs)."""
        x, y, w, h, c = self.x, self.y, self.width, self.height, 12
        return f"{x + c},{y} {x + w - c},{y} {x + w},{y + h // 2} {x + w - c},{y + h} {x + c},{y + h} {x},{y + h // 2}"


@dataclass(frozen=True)
class GraphFrame:
    label: str
    domain: str
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class GraphArrow:
    link: ViewLink
    path: str
    label_x: int
    label_y: int


@dataclass(frozen=True)
class LegendItem:
    x: int
    y: int
    shape: str  # a node shape, a link style, or `masking`
    style: str
    text: str


@dataclass(frozen=True)
class GraphLayout:
    title: str
    width: int
    height: int
    boxes: tuple[GraphBox, ...]
    frames: tuple[GraphFrame, ...]
    arrows: tuple[GraphArrow, ...]
    legend: tuple[LegendItem, ...]


def layout(view: View) -> GraphLayout:
    """Columns by dependency depth; one horizontal band per group, its own nodes framed."""
    nodes = {n.ref: n for n in view.nodes}
    preds: dict[str, set[str]] = defaultdict(set)
    for link in view.links:
        if link.style in ("flow", "declared") and link.source in nodes and link.target in nodes:
            preds[link.target].add(link.source)
    depth = _depths(list(nodes), preds)
    consumers: dict[str, set[str]] = defaultdict(set)  # an ungrouped source sits in its first consumer's band
    for target, sources in preds.items():
        for source in sources:
            consumers[source].add(nodes[target].group or "")
    band_of = {ref: node.group or min(consumers[ref] - {""}, default="") for ref, node in nodes.items()}
    members: dict[str, list[ViewNode]] = defaultdict(list)
    for ref, band in band_of.items():
        members[band].append(nodes[ref])
    groups = {g.key: g for g in view.groups}
    boxes: dict[str, GraphBox] = {}
    frames: list[GraphFrame] = []
    skyline: dict[int, int] = defaultdict(lambda: MARGIN)  # per column: the first free y
    tops: dict[str, int] = {}
    for band in sorted(members, key=lambda b: (min(depth[n.ref] for n in members[b]), b == "", b)):
        layers: dict[int, list[ViewNode]] = defaultdict(list)
        for node in members[band]:
            layers[depth[node.ref]].append(node)
        span = range(min(layers), max(layers) + 1)
        # as high as the columns it spans allow, but not above a band it reads from (edges then run
        # level or downwards, between bands rather than through them)
        feeds = {band_of[p] for n in members[band] for p in preds[n.ref]} - {band}
        y = max([skyline[level] for level in span] + [tops[f] for f in feeds if f in tops])
        tops[band] = y
        rows = max(len(v) for v in layers.values())
        header = HEADER if band in groups else 0
        height = header + 2 * PAD + rows * NODE_H + (rows - 1) * GAP_Y
        for level, stack in layers.items():
            top = y + header + PAD + (rows - len(stack)) * (NODE_H + GAP_Y) // 2
            for i, node in enumerate(sorted(stack, key=lambda n: (n.order, n.title, n.ref))):
                boxes[node.ref] = GraphBox(node, MARGIN + PAD + level * (COL_W + GAP_X), top + i * (NODE_H + GAP_Y))
        owned = [boxes[n.ref] for n in members[band] if n.group == band]
        if band in groups and owned:
            x0, x1 = min(b.x for b in owned) - PAD, max(b.x + b.width for b in owned) + PAD
            frames.append(GraphFrame(groups[band].label, groups[band].domain, x0, y, x1 - x0, height))
        for level in span:
            skyline[level] = y + height + BAND_GAP
    drawn = [link for link in view.links if link.source in boxes and link.target in boxes]
    arrows = tuple(_arrow(link, boxes[link.source], boxes[link.target]) for link in drawn)
    levels = max(depth.values(), default=0) + 1
    width = 2 * (MARGIN + PAD) + levels * COL_W + (levels - 1) * GAP_X
    bottom = max(skyline.values(), default=MARGIN)
    legend = _legend(view, width, bottom + 4)
    height = (legend[-1].y if legend else bottom) + LEGEND_ROW
    return GraphLayout(view.title, width, height, tuple(boxes.values()), tuple(frames), arrows, legend)


def _depths(refs: list[str], preds: Mapping[str, set[str]]) -> dict[str, int]:
    """Longest path from a source; a cycle is cut at its alphabetically first unresolved node."""
    depth: dict[str, int] = {}
    pending = {r: {p for p in preds.get(r, ()) if p != r} for r in refs}
    while pending:
        ready = [r for r, ps in pending.items() if ps <= depth.keys()] or [min(pending)]
        for r in ready:
            depth[r] = 1 + max((depth[p] for p in pending.pop(r) if p in depth), default=-1)
    return depth


def _arrow(link: ViewLink, a: GraphBox, b: GraphBox) -> GraphArrow:
    if link.style == "parent":  # under the boxes, so it never crosses a frame's title
        x1, y1, x2, y2 = a.x + a.width // 2, a.y + a.height, b.x + b.width // 2, b.y + b.height
        c1, c2 = (x1, y1 + 38), (x2, y2 + 38)
    elif a.x == b.x:  # same column (a column edge between two outputs of one job): bulge to the right
        x1, y1, x2, y2 = a.x + a.width, a.y + a.height // 2, b.x + b.width, b.y + b.height // 2
        c1, c2 = (x1 + 44, y1), (x2 + 44, y2)
    else:
        x1, y1, x2, y2 = a.x + a.width, a.y + a.height // 2, b.x, b.y + b.height // 2
        bend = 0 if x2 > x1 else 70  # a backward edge (a cycle) loops below
        dx = max(40, (x2 - x1) // 2) if x2 > x1 else 80
        c1, c2 = (x1 + dx, y1 + bend), (x2 - dx, y2 + bend)
    t = 0.5 if link.style == "parent" or a.x == b.x else 0.62  # labels sit nearer the output they describe

    def at(p: int, q: int, r: int, s: int) -> int:
        return round((1 - t) ** 3 * p + 3 * (1 - t) ** 2 * t * q + 3 * (1 - t) * t**2 * r + t**3 * s)

    path = f"M {x1} {y1} C {c1[0]} {c1[1]}, {c2[0]} {c2[1]}, {x2} {y2}"
    return GraphArrow(link, path, at(x1, c1[0], c2[0], x2), at(y1, c1[1], c2[1], y2))


def _legend(view: View, width: int, top: int) -> tuple[LegendItem, ...]:
    """One entry per node style and special link style in the view, wrapped to `width`."""
    seen: dict[tuple[str, str], str] = {}
    for n in sorted(view.nodes, key=lambda n: (n.shape != "dataset", n.order, n.style)):
        text = STORE_NAMES.get(n.style, n.style) if n.shape == "dataset" else f"{n.shape}: {n.style}"
        seen.setdefault((n.shape, n.style), text)
    for link in view.links:
        if link.style in _LINK_NAMES:
            seen.setdefault((link.style, link.style), _LINK_NAMES[link.style])
        if link.masking:
            seen.setdefault(("masking", "masking"), "where the column is masked")
    items: list[LegendItem] = []
    x, y = MARGIN, top
    for (shape, style), text in seen.items():
        step = 44 + int(len(text) * 6.3)
        if x + step > width - MARGIN and x > MARGIN:
            x, y = MARGIN, y + LEGEND_ROW
        items.append(LegendItem(x, y, shape, style, text))
        x += step
    return tuple(items)
