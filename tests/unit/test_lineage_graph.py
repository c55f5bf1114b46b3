"""The mesh lineage graph from OpenLineage events: building, column flow, Mermaid, HTML, JSON and the CLI.

The events are synthetic but spec-shaped (OpenLineage 2-0-2 RunEvents with the schema, symlinks,
parent run and ColumnLineageDatasetFacet 1-2-0 facets), laid out like the mesh: a Cosmos DB
container relayed to Event Hubs, the users pipeline writing the lake and BigQuery with `cpf`
hashed outside the raw zone, and the refined product joining users with transactions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from meshkit.cli import main
from meshkit.errors import ConfigError
from monitoring.lineage.flow import column_flow
from monitoring.lineage.graph import build_graph, load_graph
from monitoring.lineage.layout import layout
from monitoring.lineage.render import html_page, mermaid, mesh_view, product_view, to_json

REPO = Path(__file__).resolve().parents[2]
NS = "meshkit-dev"
COSMOS = ("azurecosmos://meshkit-dev.documents.azure.com/dbs/app", "colls/users")
HUB = ("kafka://meshkit-dev.servicebus.windows.net:9093", "customers.users")
RAW = ("gs://meshkit-lake-raw", "customers/users")
CURATED = ("gs://meshkit-lake-curated", "customers/users")
CHANGELOG = ("bigquery", "meshkit-dev.customers.users_changelog")
CURRENT = ("bigquery", "meshkit-dev.customers.users_current")
TX_HUB = ("kafka://meshkit-dev.servicebus.windows.net:9093", "payments.transactions")
TX_CURRENT = ("bigquery", "meshkit-dev.payments.transactions_current")
EXPOSURE = ("bigquery", "meshkit-dev.risk.customer_exposure_current")
USERS_FIELDS = ("user_id", "cpf", "email")
RELAY_RUN, PIPELINE_RUN = "0190c7c5-0000-7000-8000-000000000001", "0190c7c5-0000-7000-8000-000000000002"
FACET = {"_producer": "urn:meshkit:producer:test", "_schemaURL": "https://openlineage.io/spec/facets/x.json"}
IDENTITY = {"type": "DIRECT", "subtype": "IDENTITY", "description": "copied", "masking": False}
HASHED = {
    "type": "DIRECT",
    "subtype": "TRANSFORMATION",
    "description": "HMAC-SHA256 with the managed key",
    "masking": True,
}


def _id(ds: tuple[str, str]) -> str:
    return f"{ds[0]}/{ds[1]}"


def _dataset(ds: tuple[str, str], fields: tuple[str, ...] = USERS_FIELDS, **facets: Any) -> dict[str, Any]:
    schema = {**FACET, "fields": [{"name": f, "type": "string"} for f in fields]}
    return {"namespace": ds[0], "name": ds[1], "facets": {"schema": schema, **facets}}


def _lineage(source: tuple[str, str], mapping: dict[str, list[tuple[str, dict[str, Any]]]]) -> dict[str, Any]:
    """columnLineage: output field -> [(input field, transformation)] from one input dataset."""
    fields = {
        out: {
            "inputFields": [
                {"namespace": source[0], "name": source[1], "field": f, "transformations": [t]} for f, t in ins
            ]
        }
        for out, ins in mapping.items()
    }
    return {"columnLineage": {**FACET, "fields": fields}}


def _same(source: tuple[str, str], masked: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    return _lineage(source, {f: [(f, (masked or {}).get(f, IDENTITY))] for f in USERS_FIELDS})


def _event(kind: str, job: str, run: str, time: str, inputs: list[Any], outputs: list[Any], **run_facets: Any) -> dict:
    return {
        "eventType": kind,
        "eventTime": f"2026-03-01T10:{time}+00:00",
        "producer": "urn:meshkit:producer:test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run, "facets": run_facets},
        "job": {"namespace": NS, "name": job, "facets": {}},
        "inputs": inputs,
        "outputs": outputs,
    }


def mesh_events() -> list[dict[str, Any]]:
    contract = {
        "symlinks": {
            **FACET,
            "identifiers": [
                {"namespace": "urn:meshkit", "name": "urn:meshkit:contract:customers:users", "type": "DATA_CONTRACT"}
            ],
        }
    }
    parent = {**FACET, "run": {"runId": RELAY_RUN}, "job": {"namespace": NS, "name": "customers.users.relay"}}
    mask = {"cpf": HASHED, "email": {**HASHED, "description": "redacted to the domain"}}
    users_out = [
        _dataset(RAW, **_same(HUB)),
        _dataset(CURATED, **_same(HUB, mask), **contract),
        _dataset(CHANGELOG, **_same(CURATED), **contract),
        _dataset(CURRENT, **_same(CHANGELOG), **contract),
    ]
    tx = ("transaction_id", "customer_id", "amount")
    exposure = _lineage(
        TX_CURRENT,
        {
            "customer_id": [("customer_id", IDENTITY)],
            "settled_debit_total": [("amount", {"type": "DIRECT", "subtype": "AGGREGATION", "masking": False})],
        },
    )
    join = {
        "namespace": CURRENT[0],
        "name": CURRENT[1],
        "field": "user_id",
        "transformations": [{"type": "INDIRECT", "subtype": "JOIN"}],
    }
    exposure["columnLineage"]["fields"]["customer_id"]["inputFields"].append(join)
    return [
        _event("START", "customers.users.relay", RELAY_RUN, "00:00", [_dataset(COSMOS)], [_dataset(HUB)]),
        _event(
            "COMPLETE",
            "customers.users.relay",
            RELAY_RUN,
            "01:00",
            [_dataset(COSMOS)],
            [_dataset(HUB, **_same(COSMOS))],
        ),
        # COMPLETE written before START, and START stamped later: COMPLETE still wins
        _event(
            "COMPLETE", "customers.users.pipeline", PIPELINE_RUN, "05:00", [_dataset(HUB)], users_out, parent=parent
        ),
        _event(
            "START", "customers.users.pipeline", PIPELINE_RUN, "06:00", [_dataset(HUB)], [_dataset(RAW)], parent=parent
        ),
        _event(
            "COMPLETE",
            "payments.transactions.pipeline",
            "r-tx",
            "05:30",
            [_dataset(TX_HUB, tx)],
            [_dataset(TX_CURRENT, tx)],
        ),
        _event(
            "COMPLETE",
            "risk.customer-exposure.pipeline",
            "r-risk",
            "07:00",
            [_dataset(CURRENT), _dataset(TX_CURRENT, tx)],
            [_dataset(EXPOSURE, ("customer_id", "settled_debit_total"), **exposure)],
        ),
    ]


def write_events(path: Path, events: list[dict[str, Any]], junk: bool = True) -> Path:
    lines = [json.dumps(e) for e in events]
    if junk:
        lines[2:2] = ["", "{not json", "[1, 2]", "   "]  # two blank lines, two unreadable ones
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return write_events(tmp_path / "ws" / "lineage" / "events.ndjson", mesh_events())


def test_graph_from_spec_shaped_events(events_file: Path) -> None:
    graph = load_graph(events_file)
    assert (graph.events, graph.skipped, graph.first_skipped_line) == (6, 2, 4)
    assert graph.products == ("customers/users", "payments/transactions", "risk/customer-exposure")
    pipeline = graph.jobs[f"{NS}/customers.users.pipeline"]
    assert (pipeline.product, pipeline.stage, pipeline.state, pipeline.run_id) == (
        "customers/users", "pipeline", "COMPLETE", PIPELINE_RUN,
    )  # fmt: skip
    assert pipeline.event_time == "2026-03-01T10:06:00+00:00"
    stores = {ds: graph.datasets[_id(ds)].store for ds in (COSMOS, HUB, RAW, CHANGELOG)}
    assert stores == {COSMOS: "cosmos", HUB: "event-log", RAW: "lake", CHANGELOG: "warehouse"}
    assert graph.datasets[_id(COSMOS)].product is None  # a source: no product writes it
    assert graph.datasets[_id(HUB)].product == "customers/users"  # written by the relay
    assert graph.datasets[_id(EXPOSURE)].product == "risk/customer-exposure"
    assert graph.datasets[_id(CURATED)].contract_id == "urn:meshkit:contract:customers:users"
    assert graph.datasets[_id(CURATED)].fields == USERS_FIELDS
    outputs = {e.dataset for e in graph.edges if e.job == pipeline.id and e.direction == "output"}
    assert outputs == {_id(d) for d in (RAW, CURATED, CHANGELOG, CURRENT)}  # merged across the run's events
    [link] = graph.parents
    assert (link.parent_job, link.parent_run, link.child_job) == (f"{NS}/customers.users.relay", RELAY_RUN, pipeline.id)


def test_latest_run_gives_the_state_and_the_last_good_run_the_edges() -> None:
    old = _event("COMPLETE", "customers.users.pipeline", "r1", "00:00", [_dataset(HUB)], [_dataset(RAW)])
    failed = _event("FAIL", "customers.users.pipeline", "r2", "09:00", [_dataset(HUB)], [])
    graph = build_graph([failed, old])
    job = graph.jobs[f"{NS}/customers.users.pipeline"]
    assert (job.state, job.run_id) == ("FAIL", "r2")
    assert {(e.dataset, e.direction) for e in graph.edges} == {(_id(HUB), "input"), (_id(RAW), "output")}


def test_odd_but_parsable_events_never_crash_the_graph() -> None:
    odd: list[dict[str, Any]] = [
        {"job": {"namespace": NS, "name": "a.b.pipeline"}, "run": {"runId": "r", "facets": None}, "inputs": "x"},
        {"job": {"namespace": NS, "name": "a.b.pipeline"}, "run": {"runId": "r", "facets": {"parent": {"job": {}}}},
         "eventType": "COMPLETE", "outputs": [{"namespace": "file", "name": "/o", "facets": {"columnLineage": {
             "fields": {"c": {"inputFields": [{"namespace": "file"}, "junk", {"namespace": "file", "name": "/i",
                                                "field": "c", "transformations": ["junk", {"type": "DIRECT"}]}]},
                        "d": None}}, "schema": {"fields": "nope"}, "symlinks": {"identifiers": None}}}]},
        {"dataset": {"namespace": "file", "name": "/i", "facets": {"schema": {"fields": [{"name": "c"}, 7]}}}},
        {"job": {"namespace": NS, "name": "static.job"}, "inputs": [{"namespace": "file", "name": "/i"}]},
    ]  # fmt: skip
    graph = build_graph(odd)
    assert graph.jobs[f"{NS}/a.b.pipeline"].state == "COMPLETE" and not graph.parents
    assert graph.jobs[f"{NS}/static.job"].state is None  # a JobEvent: lineage without a run
    [edge] = graph.column_edges
    assert (edge.source, edge.source_field, edge.target, edge.label) == ("file//i", "c", "file//o", "DIRECT")
    assert graph.datasets["file//i"].fields == ("c",)


def test_event_times_with_different_offsets_order_by_instant() -> None:
    early = _event("COMPLETE", "customers.users.pipeline", "r1", "30:00", [], [_dataset(RAW)])
    late = _event("FAIL", "customers.users.pipeline", "r2", "00:00", [], [])
    late["eventTime"] = "2026-03-01T08:00:00-03:00"  # 11:00 UTC, after 10:30 UTC
    assert build_graph([early, late]).jobs[f"{NS}/customers.users.pipeline"].state == "FAIL"


def test_column_flow_follows_cpf_and_marks_where_it_is_hashed(events_file: Path) -> None:
    graph = load_graph(events_file)
    flow = column_flow(graph, "cpf")
    hops = [(e.source, e.target) for e in flow.edges]
    assert hops[0] == (_id(COSMOS), _id(HUB))
    assert set(hops) == {
        (_id(COSMOS), _id(HUB)), (_id(HUB), _id(RAW)), (_id(HUB), _id(CURATED)),
        (_id(CURATED), _id(CHANGELOG)), (_id(CHANGELOG), _id(CURRENT)),
    }  # fmt: skip
    assert all(e.source_field == e.target_field == "cpf" for e in flow.edges)
    [point] = flow.masking_points
    assert (point.source, point.target, point.label) == (_id(HUB), _id(CURATED), "HASHED")
    assert flow.masked == {(_id(d), "cpf"): "HASHED" for d in (CURATED, CHANGELOG, CURRENT)}  # raw keeps it clear
    email = column_flow(graph, "email")
    assert {e.label for e in email.masking_points} == {"REDACTED"}


def test_column_flow_reaches_renamed_and_indirect_fields(events_file: Path) -> None:
    flow = column_flow(load_graph(events_file), "user_id")
    join = [e for e in flow.edges if e.target == _id(EXPOSURE)]
    assert [(e.target_field, e.indirect, e.label) for e in join] == [("customer_id", True, "JOIN")]


def test_unknown_column_lists_known_ones(events_file: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        column_flow(load_graph(events_file), "cpff")
    assert "no column named 'cpff'" in caught.value.message
    assert "Known columns include: cpf" in caught.value.message


MERMAID_NODE = re.compile(r"^\s+([A-Za-z0-9_]+)(\(\"|\{\{\"|\[\")(.*)(\"\)|\"\}\}|\"\])$")
MERMAID_EDGE = re.compile(r"^\s+([A-Za-z0-9_]+) (-->|-\.->)(\|\"[^\"]*\"\|)? ([A-Za-z0-9_]+)$")


def _parse_mermaid(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The basic grammar: a header, subgraph/end pairs, node and edge lines, class lines."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    depth = 0
    for line in lines[1:]:
        if m := re.match(r'^\s+subgraph ([A-Za-z0-9_]+)\["[^"]*"\]$', line):
            nodes.append(m.group(1))
            depth += 1
        elif line.strip() == "end":
            depth -= 1
        elif m := MERMAID_NODE.match(line):
            assert '"' not in m.group(3), line  # quotes inside a label are escaped
            nodes.append(m.group(1))
        elif m := MERMAID_EDGE.match(line):
            edges.append((m.group(1), m.group(4)))
        else:
            assert re.match(r"^\s+(classDef|class|linkStyle) \S+ \S+$", line), f"unparsable: {line!r}"
    assert depth == 0
    return nodes, edges


def test_mermaid_is_valid_and_escapes_labels(events_file: Path) -> None:
    events = mesh_events()
    events[-1]["outputs"][0]["name"] = 'meshkit-dev.risk.ex"po[su]re<script>'
    graph = build_graph(events)
    text = mermaid(mesh_view(graph, column_flow(graph, "cpf")))
    nodes, edges = _parse_mermaid(text)
    assert len(nodes) == len(set(nodes)) == len(graph.datasets) + len(graph.jobs) + len(graph.products)
    assert edges and all(a in nodes and b in nodes for a, b in edges)
    assert "ex#34;po#91;su#93;re#60;script#62;" in text and "<script" not in text
    assert '|"HASHED"|' in text and "linkStyle" in text
    products_text = mermaid(product_view(graph))
    assert all(a in _parse_mermaid(products_text)[0] for a, _ in _parse_mermaid(products_text)[1])


def test_html_draws_every_product_and_escapes_names(events_file: Path) -> None:
    events = mesh_events()
    events[-1]["outputs"][0]["name"] = "meshkit-dev.risk.<script>alert(1)</script>"
    graph = build_graph(events)
    html = html_page(graph, mesh_view(graph))
    assert html.count("<svg") == 1 and "marker-end" in html
    for product in graph.products:
        assert f">{product}</text>" in html
    assert "<script" not in html and "&lt;script&gt;alert(1)" in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)  # no external assets


def test_html_highlights_the_column_and_labels_masking(events_file: Path) -> None:
    graph = load_graph(events_file)
    view = mesh_view(graph, column_flow(graph, "cpf"))
    picture = layout(view)
    lit = {b.ref for b in picture.boxes if b.node.highlighted}
    assert f"dataset:{_id(CURATED)}" in lit and f"dataset:{_id(EXPOSURE)}" not in lit
    chips = [a for a in picture.arrows if a.link.masking]
    assert [(a.link.source, a.link.target, a.link.label) for a in chips] == [
        (f"job:{NS}/customers.users.pipeline", f"dataset:{_id(CURATED)}", "HASHED")
    ]
    html = html_page(graph, view, column_flow(graph, "cpf"))
    assert "ml-chip" in html and ">HASHED</text>" in html and "cpf · HASHED" in html


def test_layout_goes_left_to_right_by_depth(events_file: Path) -> None:
    boxes = {b.ref: b for b in layout(mesh_view(load_graph(events_file))).boxes}
    chain = [
        f"dataset:{_id(COSMOS)}",
        f"job:{NS}/customers.users.relay",
        f"dataset:{_id(HUB)}",
        f"job:{NS}/customers.users.pipeline",
        f"dataset:{_id(CURRENT)}",
        f"job:{NS}/risk.customer-exposure.pipeline",
    ]
    xs = [boxes[ref].x for ref in chain]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)


def test_json_has_nodes_edges_and_the_column(events_file: Path) -> None:
    graph = load_graph(events_file)
    doc = json.loads(to_json(graph, column_flow(graph, "cpf")))
    assert {n["kind"] for n in doc["nodes"]} == {"dataset", "job"}
    assert {"source": f"{NS}/customers.users.relay", "target": f"{NS}/customers.users.pipeline"}.items() <= next(
        e for e in doc["edges"] if e["kind"] == "parent"
    ).items()
    assert doc["column"]["name"] == "cpf" and any(e["masking"] for e in doc["column"]["edges"])
    assert doc["skipped_lines"] == 2


# --- the command -----------------------------------------------------------------------------------


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workspace: Path, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(workspace))
    code = main(["--root", str(REPO), "lineage", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_without_events_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(monkeypatch, capsys, tmp_path / "ws")
    assert code == 1 and out == ""
    assert err.startswith("Error: no lineage events yet") and "meshkit demo" in err and "meshkit run <product>" in err
    write_events(tmp_path / "ws" / "lineage" / "events.ndjson", [], junk=True)
    code, _, err = _cli(monkeypatch, capsys, tmp_path / "ws")
    assert code == 1 and "Warning: skipped 2 unreadable lines" in err and "Error: no lineage events yet" in err


def test_cli_formats(events_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = events_file.parents[1]
    code, out, err = _cli(monkeypatch, capsys, workspace, "--column", "cpf")
    assert code == 0 and "Warning: skipped 2 unreadable lines" in err
    html_path = Path(out.splitlines()[0])
    assert html_path == workspace / "reports" / "lineage.html" and "<svg" in html_path.read_text(encoding="utf-8")
    assert any("HASHED (masking)" in line for line in out.splitlines()[1:])
    code, out, _ = _cli(monkeypatch, capsys, workspace, "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart LR\n")
    code, out, _ = _cli(monkeypatch, capsys, workspace, "--format", "json", "--out", str(workspace / "g.json"))
    assert code == 0 and out.strip() == str(workspace / "g.json")
    assert json.loads((workspace / "g.json").read_text(encoding="utf-8"))["events"] == 6


def test_cli_unknown_column(
    events_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(monkeypatch, capsys, events_file.parents[1], "--column", "tax_id")
    assert code == 1 and out == ""
    assert "Error: no column named 'tax_id'" in err and "Known columns include:" in err and "cpf" in err


def test_review_embeds_the_lineage_of_the_events(events_file: Path) -> None:
    from governance.review.report import build_review, render_html, render_markdown
    from meshkit.checks import CheckRun
    from meshkit.config import load_settings

    settings = load_settings(REPO, overrides={"workspace": str(events_file.parents[1])}, environ={})
    review = build_review(settings, CheckRun())
    assert review.lineage is not None and review.lineage.events == 6
    html = render_html(review)
    assert 'class="ml"' in html and "Cosmos DB" in html  # the relay's source container, from the events
    markdown = render_markdown(review)
    block = markdown.split("```mermaid\n", 1)[1].split("```", 1)[0]
    nodes, edges = _parse_mermaid(block)
    assert {"p_customers_users", "p_risk_customer_exposure"} <= set(nodes) and edges
