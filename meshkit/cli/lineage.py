"""`meshkit lineage`: the mesh lineage graph from the emitted OpenLineage events (HTML, Mermaid, JSON)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshkit.cli._common import settings_from
from meshkit.errors import ConfigError, TerminalError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--column", default=None, metavar="NAME", help="highlight where a column flows and where it is masked, e.g. cpf"
    )
    parser.add_argument(
        "--format",
        choices=("html", "mermaid", "json"),
        default="html",
        help="html (default, written to <reports dir>/lineage.html), mermaid or json (printed)",
    )
    parser.add_argument("--out", default=None, metavar="PATH", help="write to this file instead")
    parser.add_argument(
        "--view",
        choices=("mesh", "products"),
        default="mesh",
        help="mesh: jobs and datasets grouped by product (default); products: one box per product",
    )


def run(args: argparse.Namespace) -> int:
    from monitoring.lineage import render
    from monitoring.lineage.flow import column_flow
    from monitoring.lineage.graph import load_graph

    settings = settings_from(args)
    path = settings.lineage_path
    hint = (
        "Run `meshkit demo` or `meshkit run <product>` first; runs append their OpenLineage events there "
        "(the file transport, the default; see docs/lineage-graph.md for other transports)"
    )
    if not path.is_file():
        raise TerminalError(f"no lineage events yet: {path} does not exist", hint=hint)
    graph = load_graph(path)
    if graph.skipped:
        lines = "line" if graph.skipped == 1 else "lines"
        print(
            f"Warning: skipped {graph.skipped} unreadable {lines} of {path} (first: line {graph.first_skipped_line}).",
            file=sys.stderr,
        )
    if not graph.jobs and not graph.datasets:
        raise TerminalError(f"no lineage events yet in {path}", hint=hint)
    if args.column and args.view == "products":
        raise ConfigError("--column needs the mesh view", hint="Drop `--view products` to see a column's path.")
    flow = column_flow(graph, args.column) if args.column else None
    if flow is not None and not flow.edges:
        print(
            f"Warning: no column-level lineage names {args.column!r} yet (no columnLineage facet in the events); "
            "datasets with that field are outlined.",
            file=sys.stderr,
        )
    view = render.product_view(graph) if args.view == "products" else render.mesh_view(graph, flow)
    if args.format == "html":
        text = render.html_page(graph, view, flow, str(path))
    else:
        text = render.mermaid(view) if args.format == "mermaid" else render.to_json(graph, flow) + "\n"
    if args.format != "html" and not args.out:
        sys.stdout.write(text)
        return 0
    out = Path(args.out) if args.out else settings.reports_dir / render.LINEAGE_PAGE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(out)
    for e in flow.edges if flow else ():  # where the column goes, for people
        source, target = render.dataset_title(graph, e.source), render.dataset_title(graph, e.target)
        masking = " (masking)" if e.masking else ""
        job = getattr(graph.jobs.get(e.job or ""), "name", e.job or "?")
        print(f"  {source}.{e.source_field} -> {target}.{e.target_field}  {e.label or '?'}{masking}  by {job}")
    return 0
