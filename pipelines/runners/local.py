"""Run one product's pipeline on the local profile (DirectRunner) and account for every event.

Order of effects: lineage START -> Beam pipeline (sinks write; lineage RUNNING meanwhile) ->
consumer offsets committed -> metrics stored -> lineage COMPLETE with the run's figures and the
contract's rules judged on the current-state table. A failure emits FAIL, Ctrl-C emits ABORT; both
leave offsets where they were, so the next run replays from the last committed point (the sinks
are idempotent).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from meshkit.config import Settings
from meshkit.errors import Location, MeshkitError, TerminalError
from meshkit.products.model import DataProduct
from monitoring.cloud.publish import publish_run_metrics
from monitoring.lineage.emitter import Parent, scrub_error
from monitoring.lineage.facets import CheckResult, DatasetFigures, RunFigures
from monitoring.lineage.naming import DatasetName, file_dataset
from monitoring.lineage.run import DEFAULT_HEARTBEAT_SECONDS
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from pipelines.product import RefinedPipeline, load_pipeline
from pipelines.quality import TableMeasure, judge, measure_table, quality_rules
from pipelines.sinks.evolution import check_evolution
from pipelines.sinks.factory import warehouse_for, warehouse_table
from pipelines.sinks.warehouse import WarehouseTables
from pipelines.topics import bus_dataset, topic_of
from pipelines.transforms.profile import write_profile
from pipelines.transforms.stages import NAMESPACE, StageContext

if TYPE_CHECKING:
    import apache_beam as beam
    from apache_beam.runners.runner import PipelineResult, PipelineRunner

    from pipelines.transports.base import EventTransport

CONSUMER_GROUP = "meshkit-pipeline"
STAGE = "pipeline"


@dataclass(frozen=True)
class Streaming:
    """An unbounded run: windows of `window_seconds` of enqueue time; stop after `idle_stop_seconds`
    without new events (None: run until stopped); poll the bus every `poll_seconds` when idle."""

    window_seconds: float = 10.0
    idle_stop_seconds: float | None = None
    poll_seconds: float = 1.0


def local_runner() -> PipelineRunner:
    """Beam's in-process FnApiRunner. Named explicitly: Beam's `DirectRunner` first tries to download
    the Prism runner binary from the internet, which would make local runs depend on the network."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


@dataclass(frozen=True)
class RunPlan:
    """What one run reads and writes, known before it starts (for lineage and the summary)."""

    inputs: dict[str, DatasetName]
    outputs: dict[str, DatasetName]
    locations: dict[str, str]


def _plan(settings: Settings, product: DataProduct, refined: bool, from_file: Path | None) -> RunPlan:
    from pipelines.sinks.lake import lake_layout, zone_dataset  # Beam's filesystems: only when a run plans

    contract = product.contract
    tables = WarehouseTables.of(product.domain, contract.table_name)
    inputs: dict[str, DatasetName] = {}
    if refined:
        from meshkit.products.discovery import find_product

        warehouse = warehouse_for(settings)
        for port in product.descriptor.inputPorts:
            if port.product:
                up = find_product(settings.domains_dir, port.product)
                up_tables = WarehouseTables.of(up.domain, up.contract.table_name)
                if not warehouse.exists(up_tables, "current"):
                    raise TerminalError(
                        f"input port {port.name!r} of {product.ref} reads {port.product}, which has no "
                        "current-state table yet",
                        location=Location(str(product.descriptor_path), field=f"inputPorts.{port.name}"),
                        hint=f"Run `meshkit run {port.product}` first, or `meshkit demo` for the whole mesh.",
                    )
                inputs[port.name] = warehouse_table(settings, up_tables, "current")[0]
        zones: tuple[str, ...] = ("refined",)
        kinds: tuple[str, ...] = ("current",)
    else:
        port_name = product.descriptor.inputPorts[0].name if product.descriptor.inputPorts else "source"
        inputs[port_name] = file_dataset(from_file) if from_file else bus_dataset(settings, topic_of(product))
        zones = ("raw", "curated")
        kinds = ("changelog", "current")
    outputs: dict[str, DatasetName] = {}
    locations: dict[str, str] = {}
    layout = lake_layout(settings, product.ref)
    for zone in zones:
        outputs[zone] = zone_dataset(settings, zone, product.domain, product.name)
        locations[zone] = layout.zone(zone)
    for kind in kinds:
        outputs[kind], locations[kind] = warehouse_table(settings, tables, kind)
    outputs["dead_letters"] = zone_dataset(settings, "raw", product.domain, product.name, "_dead_letters")
    return RunPlan(inputs, outputs, locations)


def run_product(
    settings: Settings,
    product: DataProduct,
    *,
    from_file: Path | None = None,
    runner: str = "DirectRunner",
    parent: Parent | None = None,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    streaming: Streaming | None = None,
) -> RunSummary:
    """Run the product once over everything available (bounded) and return what it did; with
    `streaming`, read the bus unbounded (windows of enqueue time, offsets committed per window after
    the sinks wrote it) until it has been idle for `streaming.idle_stop_seconds` (None: until stopped).

    `parent` is the (job name, run id) of the run that fed this one (the relay); lineage RUNNING
    events follow every `heartbeat_seconds` while the run lasts.
    """
    import apache_beam as beam

    from monitoring.lineage.emitter import LineageEmitter
    from monitoring.lineage.facets import Engine
    from monitoring.lineage.run import LineageRun

    contract = product.contract
    if not contract.primary_key:
        raise TerminalError(
            "the contract has no primary key column",
            hint="Mark the key column with `primaryKey: true`; the pipeline orders and merges on it.",
        )
    refined = isinstance(load_pipeline(product.pipeline_path), RefinedPipeline)
    if from_file is not None and not from_file.is_file():
        raise TerminalError(f"replay file {from_file} not found", hint="Pass a JSON-lines file of change-feed items.")
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    ctx = StageContext(
        settings=settings,
        product=product.ref,
        contract_path=str(product.contract_path),
        pipeline_path=str(product.pipeline_path),
        run_id=run_id,
        ingest_date=started.date().isoformat(),
    )
    plan = _plan(settings, product, refined, from_file)
    beam_runner: str | PipelineRunner = local_runner() if runner == "DirectRunner" else runner
    runner_name = beam_runner if isinstance(beam_runner, str) else type(beam_runner).__name__
    engine = Engine("Apache Beam", beam.__version__, runner=runner_name, code=product.pipeline_path)
    emitter = LineageEmitter.from_settings(settings)
    clock = time.monotonic()
    try:
        with LineageRun(
            emitter, product, STAGE, run_id, inputs=plan.inputs, outputs=plan.outputs, parent=parent,
            engine=engine, heartbeat_seconds=heartbeat_seconds,
        ) as lineage:  # fmt: skip
            try:
                # a breaking contract change (type narrowed, column removed, key changed) stops here,
                # before anything is written
                check_evolution(settings, product.ref)
                result, bus, end_offsets = _execute(settings, product, ctx, beam_runner, refined, from_file, streaming)
            except MeshkitError as exc:
                _record_failure(settings, product, run_id, started, clock, plan, exc.reason)
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                _record_failure(settings, product, run_id, started, clock, plan, reason)
                raise TerminalError(
                    f"the pipeline of {product.ref} failed: {reason}",
                    hint="Run again with --debug for the traceback; no offsets were committed, so a re-run replays.",
                ) from exc
            lag: dict[str, int] = {}
            if bus is not None:  # the sinks have written: only now may the consumer group move on
                try:
                    committed = bus.committed(CONSUMER_GROUP)
                    lag = {str(p): end - committed.get(p, 0) for p, end in sorted(end_offsets.items())}
                    bus.commit(CONSUMER_GROUP, end_offsets)
                finally:
                    bus.close()
            counters, distributions = _metrics(result)
            write_profile(settings.workspace_dir, product.ref, run_id, counters)  # for `meshkit drift`
            current = measure_table(settings, product, "current")
            duration = time.monotonic() - clock
            summary = _summary(counters, distributions, product, run_id, started, duration, plan, current.rows)
            summary = replace(
                summary,
                throughput_eps=round(summary.events_in / duration, 1) if duration > 0 else None,
                merge_seconds=round(counters.get("merge_ms_total", 0) / 1000, 3) if not refined else None,
                lag_by_partition=lag,
            )
            MetricsStore(settings.metrics_path).record(summary)
            publish_run_metrics(settings, summary)
            lineage.figures = run_figures(settings, product, plan, summary, counters, current)
    finally:
        emitter.close()
    return summary


def _record_failure(
    settings: Settings,
    product: DataProduct,
    run_id: str,
    started: datetime,
    clock: float,
    plan: RunPlan,
    reason: str,
) -> None:
    """A failed run is a run too: the review and SLOs must see it, with its (scrubbed) reason."""

    summary = RunSummary(
        product=product.ref,
        run_id=run_id,
        started_at=started.isoformat(),
        ended_at=datetime.now(UTC).isoformat(),
        status="failed",
        events_in=0,
        duplicates_dropped=0,
        dead_letters=0,
        outputs=plan.locations,
        duration_seconds=round(time.monotonic() - clock, 3),
        error=scrub_error(reason),
    )
    MetricsStore(settings.metrics_path).record(summary)


def _execute(
    settings: Settings,
    product: DataProduct,
    ctx: StageContext,
    runner: str | PipelineRunner,
    refined: bool,
    from_file: Path | None,
    streaming: Streaming | None = None,
) -> tuple[PipelineResult, EventTransport | None, dict[int, int]]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.standard import build_change_feed_pipeline

    bus: EventTransport | None = None
    end_offsets: dict[int, int] = {}
    p = beam.Pipeline(runner=runner, options=PipelineOptions(flags=[], save_main_session=False))
    if refined or (streaming is not None and from_file is None):
        build_product_graph(p, settings, product, ctx, refined=refined, streaming=streaming or Streaming())
    else:
        source, bus, end_offsets = _source(settings, product, from_file)
        build_change_feed_pipeline(p, ctx, source)
    try:
        result = p.run()
        result.wait_until_finish()
    except BaseException:
        if bus is not None:
            bus.close()
        raise
    return result, bus, end_offsets


def build_product_graph(
    p: beam.Pipeline,
    settings: Settings,
    product: DataProduct,
    ctx: StageContext,
    *,
    refined: bool,
    streaming: Streaming,
) -> None:
    """The product's graph over the unbounded bus (streaming here and every Dataflow job): windows of
    enqueue time and offsets committed by the job per window after the sinks wrote it; or, for a
    refined product, its join of the input products' current state."""
    from pipelines.refined import build_refined_pipeline
    from pipelines.runners.commit import CommitAfterSinks
    from pipelines.sources.streaming import StreamFromBus
    from pipelines.standard import build_change_feed_pipeline
    from pipelines.transports.factory import transport_spec

    if refined:
        build_refined_pipeline(
            p, ctx, {port.name: port.product for port in product.descriptor.inputPorts if port.product}
        )
        return
    spec = transport_spec(settings, topic_of(product))
    stream = StreamFromBus(
        spec, CONSUMER_GROUP, settings.batch_size, poll_seconds=streaming.poll_seconds,
        idle_stop_seconds=streaming.idle_stop_seconds,
    )  # fmt: skip
    build_change_feed_pipeline(
        p, ctx, stream, window_seconds=streaming.window_seconds,
        commit=lambda written: CommitAfterSinks(spec, CONSUMER_GROUP, written),
    )  # fmt: skip


def _source(
    settings: Settings, product: DataProduct, from_file: Path | None
) -> tuple[beam.PTransform, EventTransport | None, dict[int, int]]:
    """Bounded replay of the product's topic on the configured bus: from the consumer group's committed
    offsets to the end offsets seen now; the caller commits those end offsets after the sinks wrote."""
    from pipelines.sources.bus import PartitionRange, ReadChangeFeedFile, ReadFromBus
    from pipelines.transports.factory import open_transport, transport_spec

    if from_file is not None:
        return ReadChangeFeedFile(from_file, settings.batch_size), None, {}
    spec = transport_spec(settings, topic_of(product))
    bus = open_transport(spec)
    try:
        committed = bus.committed(CONSUMER_GROUP)
        end = bus.end_offsets()
    except BaseException:
        bus.close()
        raise
    ranges = [PartitionRange(p, committed.get(p, 0), e) for p, e in sorted(end.items())]
    return ReadFromBus(spec, ranges, settings.batch_size), bus, end


def _metrics(result: PipelineResult) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """The run's Beam counters (summed over steps) and (min, max) of its distributions."""
    from apache_beam.metrics.metric import MetricsFilter

    counters: dict[str, int] = {}
    distributions: dict[str, tuple[int, int]] = {}
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for c in metrics["counters"]:
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + int(c.committed or 0)
    for d in metrics["distributions"]:
        if d.committed and d.committed.count:
            distributions[d.key.metric.name] = (d.committed.min, d.committed.max)
    return counters, distributions


def _summary(
    counters: dict[str, int],
    distributions: dict[str, tuple[int, int]],
    product: DataProduct,
    run_id: str,
    started: datetime,
    duration: float,
    plan: RunPlan,
    current_rows: int,
) -> RunSummary:
    """Figures from the pipeline's Beam metrics; `current` is the current-state table's size after the run."""
    now = datetime.now(UTC)
    newest = distributions.get("source_ts_ms")
    lag = distributions.get("source_lag_ms")
    rows = {name.split(":", 1)[1]: n for name, n in counters.items() if name.startswith("rows:")}
    rows["current"] = current_rows
    return RunSummary(
        product=product.ref,
        run_id=run_id,
        started_at=started.isoformat(),
        ended_at=now.isoformat(),
        status="completed",
        events_in=counters.get("events_in", 0),
        duplicates_dropped=counters.get("duplicates_dropped", 0),
        replayed=counters.get("replayed", 0),
        dead_letters=counters.get("dead_letters", 0),
        dead_letters_by_reason={
            name.split(":", 1)[1]: n for name, n in sorted(counters.items()) if name.startswith("dead_letter:")
        },
        rows_written=dict(sorted(rows.items())),
        outputs=plan.locations,
        freshness_seconds=round(now.timestamp() - newest[1] / 1000, 3) if newest else None,
        max_source_lag_seconds=round(lag[1] / 1000, 3) if lag else None,
        duration_seconds=round(duration, 3),
    )


def run_figures(
    settings: Settings,
    product: DataProduct,
    plan: RunPlan,
    summary: RunSummary,
    counters: Mapping[str, int],
    current: TableMeasure,
) -> RunFigures:
    """Counts for lineage: rows, bytes and files per output, nulls where measured, and the contract's
    rules judged — on the current-state table for the output, on the dead letters for the input."""
    contract = product.contract
    nulls = {c.name: counters.get(f"nulls:{c.name}", 0) for c in contract.columns}
    outputs = {
        name: DatasetFigures(
            rows=summary.rows_written.get(name, 0),
            size_bytes=counters.get(f"bytes:{name}"),
            files=counters.get(f"files:{name}"),
            null_counts=nulls if name == "curated" and summary.rows_written.get(name) else {},
        )
        for name in plan.outputs
    }
    outputs["current"] = DatasetFigures(rows=current.rows, null_counts=current.nulls)
    outputs["dead_letters"] = DatasetFigures(rows=summary.dead_letters)
    rules = quality_rules(contract)
    upstream = {p.name: p.product for p in product.descriptor.inputPorts if p.product}
    inputs: dict[str, DatasetFigures] = {}
    input_checks: dict[str, tuple[CheckResult, ...]] = {}
    for port in plan.inputs:
        if port in upstream:
            inputs[port] = DatasetFigures(
                rows=measure_table(settings, _product(settings, upstream[port]), "current").rows
            )
            continue
        inputs[port] = DatasetFigures(rows=summary.events_in)
        invalid = {r: summary.dead_letters_by_reason.get(f"enum:{r.columns[0]}", 0) for r in rules
                   if r.metric == "invalidValues" and len(r.columns) == 1}  # fmt: skip
        input_checks[port] = (
            *(CheckResult(r.name, r.metric, n == 0, r.columns[0], r.severity, "= 0", str(n),
                          "events with a value outside the contract's valid values (dead-lettered, not written)")
              for r, n in invalid.items()),
            CheckResult("events_conform_to_contract", "conformance", summary.dead_letters == 0, None, None, "= 0",
                        str(summary.dead_letters), "events rejected by the contract's checks (dead letters)"),
        )  # fmt: skip
    output_checks = tuple(judge(r, current.rules[r.name], current.rows) for r in rules if r.name in current.rules)
    return RunFigures(inputs, outputs, input_checks, {"current": output_checks})


def _product(settings: Settings, ref: str) -> DataProduct:
    from meshkit.products.discovery import find_product

    return find_product(settings.domains_dir, ref)
