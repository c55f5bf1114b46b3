"""Draw a lineage graph: one view model, laid out once, rendered as inline SVG/HTML and as Mermaid.

`mesh_view` (jobs and datasets grouped by product, a chosen column highlighted) and `product_view`
(one box per product, grouped by domain) build a `View`; `layout` places it left to right by
dependency depth; the SVG template (`templates/lineage.html.j2`) and `mermaid` draw that same view.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from monitoring.lineage.graph import ColumnEdge, ColumnFlow, DatasetNode, JobNode, LineageGraph

TEMPLATES_DIR = Path(__file__).parent / "templates"
STORE_NAMES = {"cosmos": "Cosmos DB", "postgres": "PostgreSQL", "event-log": "event log", "lake": "lake"}
STORE_NAMES |= {"warehouse": "warehouse", "file": "file", "other": "dataset"}
_STORE_ORDER = {"cosmos": 0, "postgres": 0, "event-log": 1, "lake": 2, "file": 3, "warehouse": 4, "other": 5}
_ZONE_ORDER = {"raw": 0, "curated": 1, "refined": 2}
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


def dataset_label(ds: DatasetNode) -> tuple[str, str]:
    """(title, detail) a person recognises: container, topic, zone and path, table."""
    ns, name, scheme = ds.namespace, ds.name, ds.namespace.split("://", 1)[0]
    host = ns.split("://", 1)[-1].split("/", 1)[0]
    if ds.store == "cosmos":
        return name.removeprefix("colls/"), f"Cosmos DB · {ns.rsplit('/', 1)[-1]}"
    if ds.store == "event-log" and scheme == "kafka":
        kind = "Event Hubs" if host.endswith(".servicebus.windows.net:9093") else "Kafka"
        return name, f"{kind} · {host.split('.')[0]}"
    if ds.store == "event-log":
        return name.rstrip("/").rsplit("/", 1)[-1], "event log · local"
    if ds.store == "lake":
        parts = name.strip("/").split("/")  # file: .../lake/<bucket>/<domain>/<product>[/more]
        lake = max((i for i, p in enumerate(parts[:-3]) if p == "lake"), default=-1)
        parts = parts[lake + 1 :] if scheme == "file" else [host, *parts]
        zone, path, rest = parts[0].rsplit("-", 1)[-1], "/".join(parts[1:3]), "/".join(parts[3:])
        return (rest or f"{zone} zone"), f"lake · {zone} · {path}" if rest else f"lake · {path}"
    if ds.store == "warehouse":
        engine = {"bigquery": "BigQuery", "duckdb": "DuckDB"}.get(scheme, scheme)
        *schema, table = name.split(".")
        return table, " · ".join(("warehouse", engine, *schema[-1:]))
    return name.rstrip("/").rsplit("/", 1)[-1] or name, f"{STORE_NAMES.get(ds.store, ds.store)} · {ns}"


def job_label(job: JobNode) -> tuple[str, str]:
    try:
        when = datetime.fromisoformat(job.event_time or "").astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        when = job.event_time or ""
    return job.stage or job.name, " · ".join(p for p in (job.state or "no run seen", when) if p)


def _dataset_node(ds: DatasetNode, group: str | None, badge: str | None = None) -> ViewNode:
    title, detail = dataset_label(ds)
    order = _STORE_ORDER.get(ds.store, 5) * 10 + (_ZONE_ORDER.get(title.split()[0], 3) if ds.store == "lake" else 0)
    tooltip = f"{ds.namespace} {ds.name}" + (f" (contract {ds.contract_id})" if ds.contract_id else "")
    return ViewNode(
        f"dataset:{ds.id}", title, detail, "dataset", ds.store, group, tooltip, order, None, badge, bool(badge)
    )


def mesh_view(graph: LineageGraph, flow: ColumnFlow | None = None) -> View:
    """Every job and dataset, grouped by product; with `flow`, its column's path highlighted."""
    badges: dict[str, list[str]] = defaultdict(list)
    for dataset, field in sorted(flow.fields if flow else ()):
        how = flow.masked.get((dataset, field)) if flow else None
        badges[dataset].append(f"{field} · {how}" if how else field)
    nodes = [_dataset_node(d, d.product, ", ".join(badges[d.id]) or None) for d in graph.datasets.values()]
    flow_jobs = {e.job for e in flow.edges} if flow else set()
    for j in graph.jobs.values():
        title, detail = job_label(j)
        tip, style = f"{j.namespace} {j.name} (run {j.run_id or '?'})", (j.state or "unknown").lower()
        order, lit = 0 if j.stage == "relay" else 1, j.id in flow_jobs
        nodes.append(ViewNode(f"job:{j.id}", title, detail, "job", style, j.product, tip, order, highlighted=lit))
    links: dict[tuple[str, str, LinkStyle], ViewLink] = {}
    for e in graph.edges:
        ends = (f"dataset:{e.dataset}", f"job:{e.job}")
        ends = ends if e.direction == "input" else (ends[1], ends[0])
        links[(*ends, "flow")] = ViewLink(*ends)
    for p in graph.parents:
        parent, child = f"job:{p.parent_job}", f"job:{p.child_job}"
        links[(parent, child, "parent")] = ViewLink(parent, child, "parent", "parent run")
    for c in flow.edges if flow else ():
        src, job, dst = f"dataset:{c.source}", f"job:{c.job}", f"dataset:{c.target}"
        hops: list[tuple[str, str, LinkStyle]] = [(src, job, "flow"), (job, dst, "flow")]
        if not all(h in links for h in hops):  # the facet names an input the run did not list
            hops = [(src, dst, "column")]
            links.setdefault(hops[0], ViewLink(src, dst, "column"))
        for key in hops:
            old, last = links[key], key[1] == dst
            label = c.label if c.masking and last else old.label
            links[key] = ViewLink(old.source, old.target, old.style, label, True, old.masking or (c.masking and last))
    groups = tuple(ViewGroup(p, p, p.split("/", 1)[0]) for p in sorted({n.group for n in nodes if n.group}))
    title = f"Lineage of column {flow.column}" if flow else "Mesh lineage"
    return View(title, tuple(nodes), tuple(links.values()), groups)


def product_view(
    graph: LineageGraph, statuses: Mapping[str, str] | None = None, declared: Iterable[tuple[str, str]] = ()
) -> View:
    """One box per product (grouped by domain) and the source datasets no product writes.

    `statuses` (ref -> passed/warning/failed, as the review has them) colour the boxes and link them
    to `#<ref>`; `declared` product edges (input ports) no event shows yet are dashed once events exist.
    """
    declared = set(declared)
    refs = set(graph.products) | set(statuses or {}) | {r for edge in declared for r in edge}
    jobs_of: dict[str, list[JobNode]] = defaultdict(list)
    for job in graph.jobs.values():
        jobs_of[job.product or ""].append(job)
    nodes: list[ViewNode] = []
    for ref in sorted(refs):
        jobs = sorted(jobs_of[ref], key=lambda j: (j.stage != "relay", j.name))
        states = {(j.state or "?").lower() for j in jobs}
        stages = ", ".join(j.stage or j.name for j in jobs)
        each = " · ".join(f"{j.stage or j.name}: {(j.state or '?').lower()}" for j in jobs)
        detail = (f"{stages}: {states.pop()}" if len(states) == 1 else each) or "no run seen"
        failed = any(j.state in ("FAIL", "ABORT") for j in jobs)
        style = (statuses or {}).get(ref) or ("failed" if failed else "passed" if jobs else "unknown")
        domain, _, name = ref.partition("/")
        href = f"#{ref}" if statuses is not None else None
        nodes.append(ViewNode(ref, name or ref, detail, "product", style, domain, ref, href=href))
    observed: set[tuple[str, str]] = set()
    sources: dict[str, ViewNode] = {}
    for e in graph.edges:
        reader, ds = graph.jobs.get(e.job), graph.datasets.get(e.dataset)
        if e.direction != "input" or not reader or not reader.product or not ds or ds.product == reader.product:
            continue
        if not ds.product:
            sources.setdefault(ds.id, _dataset_node(ds, None))
        observed.add((ds.product or f"dataset:{ds.id}", reader.product))
    unseen: LinkStyle = "declared" if graph.events else "flow"
    links = [ViewLink(a, b) for a, b in sorted(observed)]
    links += [ViewLink(a, b, unseen) for a, b in sorted(declared - observed)]
    groups = tuple(ViewGroup(d, d, d) for d in sorted({n.group for n in nodes if n.group}))
    return View("Product lineage", (*nodes, *sources.values()), tuple(links), groups)


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


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def svg(graph: GraphLayout) -> Markup:
    """The inline SVG alone, for embedding (the review does): styles inside, no external assets."""
    module: Any = _environment().get_template("lineage.html.j2").make_module({})
    return Markup(str(module.svg(graph)))  # noqa: S704 - output of an autoescaping template


def dataset_title(graph: LineageGraph, dataset_id: str) -> str:
    """`curated zone (lake)` for a dataset of the graph; the raw id otherwise."""
    ds = graph.datasets.get(dataset_id)
    return f"{dataset_label(ds)[0]} ({STORE_NAMES.get(ds.store, ds.store)})" if ds else dataset_id


def html_page(graph: LineageGraph, view: View, flow: ColumnFlow | None = None, source: str = "") -> str:
    """A self-contained page: the SVG, the column's path as a table, the jobs and the datasets."""
    return (
        _environment()
        .get_template("lineage.html.j2")
        .render(
            layout=layout(view),
            graph=graph,
            flow=flow,
            source=source,
            title=lambda dataset_id: dataset_title(graph, dataset_id),
            labels={d.id: dataset_label(d) for d in graph.datasets.values()},
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )


_MERMAID_UNSAFE = re.compile(r"[#&\"<>`|\[\](){};\\\n\r]")
_MERMAID_FILL = {"cosmos": "#dbeafe,stroke:#1d4ed8", "postgres": "#dbeafe,stroke:#1e3a8a"}
_MERMAID_FILL |= {"event_log": "#fef3c7,stroke:#b45309", "lake": "#dcfce7,stroke:#15803d"}
_MERMAID_FILL |= {"warehouse": "#ede9fe,stroke:#6d28d9", "complete": "#f0fdf4,stroke:#15803d"}
_MERMAID_FILL |= {"passed": "#f0fdf4,stroke:#15803d", "fail": "#fee2e2,stroke:#b91c1c"}
_MERMAID_FILL |= {"failed": "#fee2e2,stroke:#b91c1c", "warning": "#fef9c3,stroke:#a16207"}


def _mm(text: str) -> str:
    """Text safe inside a quoted Mermaid label: specials become `#<code>;` entities, one line."""
    return _MERMAID_UNSAFE.sub(lambda m: " " if m.group() in "\n\r" else f"#{ord(m.group())};", text)


def mermaid(view: View) -> str:
    """`flowchart LR` text: a subgraph per group, quoted escaped labels, sanitized unique ids."""
    ids: dict[str, str] = {}
    taken: set[str] = set()

    def ident(ref: str, prefix: str) -> str:
        if ref not in ids:
            name = ref.partition(":")[2] if ref.startswith(("dataset:", "job:", "group:")) else ref
            words = re.sub(r"\W+", "_", "_".join(re.split(r"[/:]+", name)[-3:]), flags=re.ASCII).strip("_").split("_")
            while len("_".join(words)) > 48 and len(words) > 1:  # readable: the name's last words
                words.pop(0)
            base = candidate = prefix + "_".join(words)
            n = 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
            ids[ref] = candidate
            taken.add(candidate)
        return ids[ref]

    shapes = {"dataset": ('("', '")'), "job": ('{{"', '"}}'), "product": ('["', '"]')}
    lines = ["flowchart LR"]
    by_group: dict[str | None, list[ViewNode]] = defaultdict(list)
    for node in view.nodes:
        by_group[node.group if node.group in {g.key for g in view.groups} else None].append(node)
    for group in [*view.groups, None]:
        if group is not None:
            lines.append(f'  subgraph {ident("group:" + group.key, "g_")}["{_mm(group.label)}"]')
        for n in sorted(by_group.pop(group.key if group else None, []), key=lambda n: (n.order, n.title, n.ref)):
            opening, closing = shapes[n.shape]
            text = "<br/>".join(_mm(t) for t in (n.title, n.detail, n.badge) if t)
            lines.append(f"{'    ' if group else '  '}{ident(n.ref, n.shape[0] + '_')}{opening}{text}{closing}")
        if group is not None:
            lines.append("  end")
    drawn = [link for link in view.links if link.source in ids and link.target in ids]
    for link in drawn:
        label = f'|"{_mm(link.label)}"|' if link.label else ""
        lines.append(f"  {ids[link.source]} {'-->' if link.style == 'flow' else '-.->'}{label} {ids[link.target]}")
    classes: dict[str, list[str]] = defaultdict(list)
    for n in view.nodes:
        classes[re.sub(r"\W", "_", n.style)].append(ids[n.ref])
    for style in sorted(classes.keys() & _MERMAID_FILL.keys()):
        lines += [
            f"  classDef {style} fill:{_MERMAID_FILL[style]}",
            f"  class {','.join(sorted(classes[style]))} {style}",
        ]
    if lit := sorted(ids[n.ref] for n in view.nodes if n.highlighted):
        lines += ["  classDef onflow stroke:#c2410c,stroke-width:3px", f"  class {','.join(lit)} onflow"]
    if hot := [str(i) for i, link in enumerate(drawn) if link.highlighted]:
        lines.append(f"  linkStyle {','.join(hot)} stroke:#c2410c,stroke-width:3px")
    return "\n".join(lines) + "\n"


def _column_edge(e: ColumnEdge) -> dict[str, Any]:
    return {
        "source": {"dataset": e.source, "field": e.source_field},
        "target": {"dataset": e.target, "field": e.target_field},
        "job": e.job,
        "transformations": [asdict(t) for t in e.transformations],
        "masking": e.masking,
        "label": e.label,
    }


def to_json(graph: LineageGraph, flow: ColumnFlow | None = None) -> str:
    """Nodes, edges and column edges (and the chosen column's flow) as one JSON document."""
    nodes = [{"id": d.id, "kind": "dataset", **asdict(d)} for d in graph.datasets.values()]
    nodes += [{"id": j.id, "kind": "job", **asdict(j)} for j in graph.jobs.values()]
    edges = [
        {"source": e.dataset, "target": e.job, "kind": "input"}
        if e.direction == "input"
        else {"source": e.job, "target": e.dataset, "kind": "output"}
        for e in graph.edges
    ]
    edges += [{"source": p.parent_job, "target": p.child_job, "kind": "parent", **asdict(p)} for p in graph.parents]
    doc: dict[str, Any] = {
        "events": graph.events,
        "skipped_lines": graph.skipped,
        "products": list(graph.products),
        "nodes": nodes,
        "edges": edges,
        "column_edges": [_column_edge(e) for e in graph.column_edges],
    }
    if flow is not None:
        masked = [{"dataset": d, "field": f, "how": how} for (d, f), how in sorted(flow.masked.items())]
        doc["column"] = {"name": flow.column, "edges": [_column_edge(e) for e in flow.edges], "masked": masked}
    return json.dumps(doc, indent=2)
