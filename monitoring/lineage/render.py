"""Draw a lineage graph: one view model, laid out once, rendered as inline SVG/HTML, Mermaid and JSON.

`mesh_view` (jobs and datasets grouped by product, a chosen column highlighted) and `product_view`
(one box per product, grouped by domain) build a `View`; `layout.layout` places it left to right by
dependency depth; the SVG template (`templates/lineage.html.j2`) and `mermaid` draw that same view.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from meshkit.config import Settings
from meshkit.templating import report_environment
from monitoring.lineage.flow import ColumnFlow, column_flow
from monitoring.lineage.graph import ColumnEdge, DatasetNode, JobNode, LineageGraph, load_graph
from monitoring.lineage.layout import (
    STORE_NAMES,
    GraphLayout,
    LinkStyle,
    View,
    ViewGroup,
    ViewLink,
    ViewNode,
    layout,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"
_STORE_ORDER = {"cosmos": 0, "postgres": 0, "event-log": 1, "lake": 2, "file": 3, "warehouse": 4, "other": 5}
_ZONE_ORDER = {"raw": 0, "curated": 1, "refined": 2}


LINEAGE_PAGE = "lineage.html"


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


@cache
def _environment() -> Environment:
    return report_environment(TEMPLATES_DIR)


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


def write_lineage_page(settings: Settings, column: str | None = None, out: Path | None = None) -> Path:
    """The mesh lineage page from the local events (with `column`'s flow highlighted when given)."""
    graph = load_graph(settings.lineage_path)
    flow = column_flow(graph, column) if column else None
    target = out or settings.reports_dir / LINEAGE_PAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_page(graph, mesh_view(graph, flow), flow, str(settings.lineage_path)), encoding="utf-8")
    return target
