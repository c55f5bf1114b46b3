"""The mesh lineage graph, read back from OpenLineage NDJSON events (spec 2-0-2 shapes).

Jobs, datasets and their edges come from each job's latest run, all events of one run merged (facets
accumulate; COMPLETE, FAIL and ABORT outrank START and RUNNING); column edges come from the
ColumnLineageDatasetFacet, parent edges from the ParentRunFacet. Plain JSON: no openlineage import.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeGuard

# state precedence inside one run; OTHER carries metadata after the fact and never sets the state
_RANK = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2, "OTHER": 3}
_STANDARD_SUBTYPES = {"IDENTITY", "TRANSFORMATION", "AGGREGATION", "JOIN", "GROUP_BY", "FILTER", "SORT", "WINDOW"}
_MASK_WORDS = {"hash": "HASHED", "hmac": "HASHED", "redact": "REDACTED", "partial": "PARTIALLY MASKED"}
_SCHEME_STORES = {"azurecosmos": "cosmos", "postgres": "postgres", "postgresql": "postgres", "kafka": "event-log"}
_SCHEME_STORES |= {"gs": "lake", "s3": "lake", "abfss": "lake", "bigquery": "warehouse", "duckdb": "warehouse"}


@dataclass(frozen=True)
class Transformation:
    """One entry of an InputField's `transformations` (DIRECT/INDIRECT, subtype, masking)."""

    type: str
    subtype: str | None = None
    description: str | None = None
    masking: bool = False

    @property
    def label(self) -> str:
        """`HASHED`, `REDACTED`… for masking: a custom subtype, else the description's leading verb or gist."""
        subtype = (self.subtype or "").upper()
        if not self.masking:
            return subtype or self.type.upper()
        first = (self.description or "").split(" ", 1)[0]
        if subtype and subtype not in _STANDARD_SUBTYPES:
            return subtype
        if first.isalpha() and first.isupper() and first.endswith("ED"):  # "HASHED (HMAC-SHA256)"
            return first
        text = (self.description or "").lower()
        return next((label for word, label in _MASK_WORDS.items() if word in text), "MASKED")


@dataclass(frozen=True)
class ColumnEdge:
    """Output `target.target_field` is computed from input `source.source_field` by `job`."""

    source: str
    source_field: str
    target: str
    target_field: str
    job: str | None
    transformations: tuple[Transformation, ...] = ()

    @property
    def masking(self) -> bool:
        return any(t.masking for t in self.transformations)

    @property
    def indirect(self) -> bool:
        return bool(self.transformations) and all(t.type.upper() == "INDIRECT" for t in self.transformations)

    @property
    def label(self) -> str:
        masking = [t for t in self.transformations if t.masking]
        return (masking or list(self.transformations) or [Transformation("")])[0].label


@dataclass(frozen=True)
class DatasetNode:
    namespace: str
    name: str
    store: str  # cosmos | postgres | event-log | lake | warehouse | file | other
    fields: tuple[str, ...] = ()
    contract_id: str | None = None
    product: str | None = None  # `<domain>/<product>` of the job that writes it

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class JobNode:
    namespace: str
    name: str
    product: str | None  # from `<domain>.<product>.<stage>`
    stage: str | None
    state: str | None  # of the latest run; None for static JobEvents
    event_time: str | None
    run_id: str | None

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class DatasetEdge:
    dataset: str
    job: str
    direction: Literal["input", "output"]  # input: dataset -> job; output: job -> dataset


@dataclass(frozen=True)
class ParentLink:
    parent_job: str
    parent_run: str
    child_job: str
    child_run: str


@dataclass(frozen=True)
class LineageGraph:
    datasets: Mapping[str, DatasetNode]
    jobs: Mapping[str, JobNode]
    edges: tuple[DatasetEdge, ...]
    column_edges: tuple[ColumnEdge, ...]
    parents: tuple[ParentLink, ...]
    events: int = 0  # events read
    skipped: int = 0  # lines that were not a readable event
    first_skipped_line: int | None = None

    @property
    def products(self) -> tuple[str, ...]:
        found = {j.product for j in self.jobs.values()} | {d.product for d in self.datasets.values()}
        return tuple(sorted(p for p in found if p))

    def columns(self) -> tuple[str, ...]:
        """Every field name seen in a schema facet or a column edge."""
        names = {f for d in self.datasets.values() for f in d.fields}
        names |= {n for e in self.column_edges for n in (e.source_field, e.target_field)}
        return tuple(sorted(names))


def store_of(namespace: str, name: str) -> str:
    """Which kind of store a dataset lives in, from its OpenLineage namespace (and local path layout)."""
    scheme = namespace.split("://", 1)[0].lower()
    if scheme in _SCHEME_STORES:
        return _SCHEME_STORES[scheme]
    if scheme == "file":  # the local profile's layout: <workspace>/eventlog/<topic>, <workspace>/lake/<bucket>/...
        parts = name.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "eventlog":
            return "event-log"
        return "lake" if "lake" in parts[:-3] else "file"
    return "other"


def product_of(job_name: str) -> tuple[str | None, str | None]:
    """`customers.users.pipeline` -> (`customers/users`, `pipeline`); anything else -> (None, None)."""
    parts = job_name.split(".")
    if len(parts) < 3 or not all(parts):
        return None, None
    return f"{parts[0]}/{'.'.join(parts[1:-1])}", parts[-1]


def read_events(path: Path) -> tuple[list[dict[str, Any]], int, int | None]:
    """(events, corrupt line count, first corrupt line number); blank lines are not counted."""
    events: list[dict[str, Any]] = []
    skipped, first = 0, None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict) and _kind(event):
                events.append(event)
            else:
                skipped += 1
                first = first or number
    return events, skipped, first


def load_graph(path: Path) -> LineageGraph:
    """The graph of the NDJSON file at `path`; unreadable lines are counted, never fatal."""
    events, skipped, first = read_events(path)
    return replace(build_graph(events), skipped=skipped, first_skipped_line=first)


def _kind(event: dict[str, Any]) -> str | None:
    job, run, dataset = event.get("job"), event.get("run"), event.get("dataset")
    if _named(job):
        return "run" if isinstance(run, dict) and isinstance(run.get("runId"), str) else "job"
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        return "dataset"
    return None


@dataclass
class _Run:
    """All events of one run, merged: facets of later (higher-ranked) events win."""

    job: tuple[str, str]
    run_id: str | None
    state: str | None = None
    time: str = ""
    inputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    outputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    run_facets: dict[str, Any] = field(default_factory=dict)


def _named(item: Any) -> TypeGuard[dict[str, Any]]:
    """A dataset or job reference with a string namespace and name."""
    return isinstance(item, dict) and isinstance(item.get("namespace"), str) and isinstance(item.get("name"), str)


def _datasets(items: Any) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for item in items if isinstance(items, list) else ():
        if _named(item):
            facets = item.get("facets")
            yield (item["namespace"], item["name"]), facets if isinstance(facets, dict) else {}


def _utc(event: dict[str, Any]) -> str:
    """The event time in UTC, so times written with different offsets order correctly."""
    try:
        return datetime.fromisoformat(str(event.get("eventTime"))).astimezone(UTC).isoformat()
    except ValueError:
        return str(event.get("eventTime", ""))


def _merge_runs(events: Iterable[tuple[int, dict[str, Any]]]) -> list[_Run]:
    runs: dict[tuple[str, str, str | None], _Run] = {}
    for _, event in sorted(events, key=lambda e: (_RANK.get(str(e[1].get("eventType")), 1), _utc(e[1]), e[0])):
        job = (event["job"]["namespace"], event["job"]["name"])
        run_id = event["run"]["runId"] if isinstance(event.get("run"), dict) else None
        run = runs.setdefault((*job, run_id), _Run(job, run_id))
        state = event.get("eventType")
        if state != "OTHER" or run.state is None:
            run.state = str(state) if state else None
        run.time = max(run.time, _utc(event))
        for key, items in (("inputs", run.inputs), ("outputs", run.outputs)):
            for ds, facets in _datasets(event.get(key)):
                items.setdefault(ds, {}).update(facets)
        run_facets = event["run"].get("facets") if isinstance(event.get("run"), dict) else None
        run.run_facets.update(run_facets if isinstance(run_facets, dict) else {})
    return list(runs.values())


def build_graph(events: Iterable[dict[str, Any]]) -> LineageGraph:
    """The graph of spec-shaped RunEvents, JobEvents and DatasetEvents (any order)."""
    job_events: list[tuple[int, dict[str, Any]]] = []
    dataset_facets: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    count = 0
    for index, event in enumerate(events):
        count += 1
        kind = _kind(event)
        if kind == "dataset":
            for ds, facets in _datasets([event["dataset"]]):
                dataset_facets[ds].update(facets)
        elif kind:
            job_events.append((index, event))
    by_job: dict[tuple[str, str], list[_Run]] = defaultdict(list)
    for run in _merge_runs(job_events):
        by_job[run.job].append(run)
    jobs: dict[str, JobNode] = {}
    edges: list[DatasetEdge] = []
    writers: dict[tuple[str, str], set[str]] = defaultdict(set)
    parents: list[ParentLink] = []
    column_edges: list[ColumnEdge] = []
    mentioned: set[tuple[str, str]] = set()  # datasets named only as a column edge's input
    unseen_parents: dict[str, tuple[str, str, str]] = {}
    for (namespace, name), runs in sorted(by_job.items()):
        latest = max(runs, key=lambda r: r.time)
        done = [r for r in runs if r.state == "COMPLETE"]
        used = max(done, key=lambda r: r.time) if done else latest  # topology from the last good run
        product, stage = product_of(name)
        job = JobNode(namespace, name, product, stage, latest.state, latest.time or None, latest.run_id)
        jobs[job.id] = job
        for ds, facets in sorted(used.inputs.items()):
            edges.append(DatasetEdge(f"{ds[0]}/{ds[1]}", job.id, "input"))
            dataset_facets[ds] = {**facets, **dataset_facets[ds]}  # an input's schema yields to its writer's
        for ds, facets in sorted(used.outputs.items()):
            edges.append(DatasetEdge(f"{ds[0]}/{ds[1]}", job.id, "output"))
            dataset_facets[ds].update(facets)
            if product:
                writers[ds].add(product)
            for edge, source in _column_edges(f"{ds[0]}/{ds[1]}", facets.get("columnLineage"), job.id):
                column_edges.append(edge)
                mentioned.add(source)
        parent = latest.run_facets.get("parent")
        pjob, prun = (parent.get("job"), parent.get("run")) if isinstance(parent, dict) else (None, None)
        if _named(pjob) and isinstance(prun, dict):
            key, parent_run = f"{pjob['namespace']}/{pjob['name']}", str(prun.get("runId", ""))
            parents.append(ParentLink(key, parent_run, job.id, latest.run_id or ""))
            unseen_parents.setdefault(key, (pjob["namespace"], pjob["name"], parent_run))
    for key, (pns, pname, parent_run) in unseen_parents.items():
        if key not in jobs:  # a parent that emitted nothing itself still appears
            jobs[key] = JobNode(pns, pname, *product_of(pname), None, None, parent_run)
    known = set(dataset_facets) | mentioned
    datasets = {
        f"{ns}/{name}": DatasetNode(
            ns,
            name,
            store_of(ns, name),
            _fields(dataset_facets.get((ns, name), {}).get("schema")),
            _contract_id(dataset_facets.get((ns, name), {})),
            min(writers[(ns, name)]) if writers.get((ns, name)) else None,
        )
        for ns, name in sorted(known)
    }
    return LineageGraph(datasets, jobs, tuple(edges), tuple(column_edges), tuple(parents), count)


def _fields(schema: Any) -> tuple[str, ...]:
    """Field names of a SchemaDatasetFacet; nested fields as `parent.child`."""

    def walk(items: Any, prefix: str) -> Iterator[str]:
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                yield prefix + item["name"]
                yield from walk(item.get("fields"), f"{prefix}{item['name']}.")

    return tuple(walk(schema.get("fields") if isinstance(schema, dict) else None, ""))


def _contract_id(facets: Mapping[str, Any]) -> str | None:
    """The data contract a dataset is a symlink of (an identifier of type or name `…contract…`)."""
    symlinks = facets.get("symlinks")
    for ident in symlinks.get("identifiers") or [] if isinstance(symlinks, dict) else []:
        if isinstance(ident, dict) and "contract" in f"{ident.get('type', '')} {ident.get('name', '')}".lower():
            return str(ident.get("name"))
    return None


def _column_edges(target: str, facet: Any, job: str) -> Iterator[tuple[ColumnEdge, tuple[str, str]]]:
    """Edges of one output's ColumnLineageDatasetFacet, each with its input's (namespace, name)."""
    fields = facet.get("fields") if isinstance(facet, dict) else None
    for out_field, spec in sorted(fields.items()) if isinstance(fields, dict) else ():
        if not isinstance(spec, dict):
            continue
        legacy = str(spec.get("transformationType") or "").upper()  # deprecated field-level form
        for item in spec.get("inputFields") or []:
            if not (
                isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("namespace", "name", "field"))
            ):
                continue
            steps = tuple(
                Transformation(str(t.get("type", "")), t.get("subtype"), t.get("description"), t.get("masking") is True)
                for t in item.get("transformations") or []
                if isinstance(t, dict)
            )
            if not steps and legacy:
                desc = spec.get("transformationDescription")
                steps = (Transformation("DIRECT", None if legacy == "MASKED" else legacy, desc, legacy == "MASKED"),)
            source = (item["namespace"], item["name"])
            edge = ColumnEdge(f"{source[0]}/{source[1]}", item["field"], target, str(out_field), job, steps)
            yield edge, source
