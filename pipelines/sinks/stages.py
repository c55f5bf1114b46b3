"""Sink stages of the standard pipeline (design step 6): raw zone, curated zone, warehouse, audits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import BoundedWindow, GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from meshkit.names import sql_identifier
from pipelines.sinks.factory import warehouse_for
from pipelines.sinks.lake import LakeLayout, lake_layout, write_dead_letters, write_parquet, write_raw
from pipelines.sinks.warehouse import WarehouseTables
from pipelines.transforms.stages import NAMESPACE, StageContext, StageTransform


def layout_of(ctx: StageContext) -> LakeLayout:
    return lake_layout(ctx.settings, ctx.product)


def tables_of(ctx: StageContext) -> WarehouseTables:
    return WarehouseTables.of(ctx.product.split("/")[0], ctx.contract().table_name)


def count_written(zone: str, path: str) -> None:
    """`files:<zone>` and `bytes:<zone>` counters for one written file (for lineage output statistics);
    a file whose size cannot be read is left out of the bytes rather than failing the write."""
    Metrics.counter(NAMESPACE, f"files:{zone}").inc()
    try:
        Metrics.counter(NAMESPACE, f"bytes:{zone}").inc(FileSystems.match([path])[0].metadata_list[0].size_in_bytes)
    except (OSError, IndexError):
        return


class _WriteRaw(beam.DoFn):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.rows = Metrics.counter(NAMESPACE, "rows:raw")

    def process(self, raw: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        count_written("raw", write_raw(layout_of(self.ctx), raw, self.ctx.ingest_date))
        self.rows.inc(raw.num_rows)
        yield raw


class WriteRawZone(StageTransform):
    """Keep every event exactly as received (for replay), then pass it on."""

    def expand(self, raw: beam.PCollection) -> beam.PCollection:
        return raw | beam.ParDo(_WriteRaw(self.ctx))


class _WriteChanges(beam.DoFn):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.curated = Metrics.counter(NAMESPACE, "rows:curated")
        self.changelog = Metrics.counter(NAMESPACE, "rows:changelog")
        self.replayed = Metrics.counter(NAMESPACE, "replayed")
        self.lag = Metrics.distribution(NAMESPACE, "source_lag_ms")
        self.merge_ms = Metrics.distribution(NAMESPACE, "merge_ms")
        self.merge_total = Metrics.counter(NAMESPACE, "merge_ms_total")

    def setup(self) -> None:
        self.warehouse = warehouse_for(self.ctx.settings)
        self.tables = tables_of(self.ctx)
        self.columns = [c.name for c in self.ctx.contract().columns]

    def process(self, table: pa.Table) -> Iterator[int]:
        """Replayed (key, LSN)s are dropped first, so the curated zone holds each change once; the
        curated file (named by its content) is written before the warehouse commit, so a retry after
        a crash between the two rewrites the same file."""
        now_us = int(time.time() * 1_000_000)
        fresh = self.warehouse.unseen(self.tables, table)
        self.replayed.inc(table.num_rows - fresh.num_rows)
        if fresh.num_rows == 0:
            yield 0
            return
        run = pa.array([self.ctx.run_id] * fresh.num_rows, pa.string())
        ingested = pa.array([now_us] * fresh.num_rows, pa.timestamp("us", tz="UTC"))
        stamped = fresh.append_column("_ingested_at", ingested).append_column("_run_id", run)
        count_written("curated", write_parquet(layout_of(self.ctx), "curated", stamped, self.ctx.ingest_date))
        self.curated.inc(stamped.num_rows)
        for name in self.columns:  # null counts per contract column of what reached the curated zone
            nulls = stamped.column(name).null_count if name in stamped.column_names else 0
            if nulls:
                Metrics.counter(NAMESPACE, f"nulls:{name}").inc(nulls)
        started = time.monotonic()
        result = self.warehouse.apply_changes(self.tables, stamped)
        merge_ms = int((time.monotonic() - started) * 1000)
        self.merge_ms.update(merge_ms)
        self.merge_total.inc(merge_ms)
        self.changelog.inc(result.changelog_rows)
        self.replayed.inc(result.replayed)
        source_ts = [t for t in fresh.column("_source_ts").cast(pa.int64()).to_pylist() if t is not None]
        if source_ts:  # end-to-end lag: source change -> committed in the current-state table
            committed_us = int(time.time() * 1_000_000)
            self.lag.update((committed_us - min(source_ts)) // 1000)
        yield result.changelog_rows


class WriteChanges(StageTransform):
    """Curated Parquet, then the warehouse changelog and current-state MERGE, per ordered shard."""

    def expand(self, events: beam.PCollection) -> beam.PCollection:
        return events | beam.ParDo(_WriteChanges(self.ctx))


class _BundledAudit(beam.DoFn):
    """Collects a bundle's rows and writes them once in `finish_bundle`: dead letters and duplicates
    are few and arrive in many small batches, and one write per bundle keeps them cheap."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def setup(self) -> None:
        self.warehouse = warehouse_for(self.ctx.settings)
        self.tables = tables_of(self.ctx)

    def start_bundle(self) -> None:
        self.pending: dict[BoundedWindow, list[pa.RecordBatch | pa.Table]] = {}

    def process(
        self,
        rows: pa.RecordBatch | pa.Table,
        window: BoundedWindow = beam.DoFn.WindowParam,  # type: ignore[assignment]
    ) -> Iterator[int]:
        if rows.num_rows:
            self.pending.setdefault(window, []).append(rows)
        return iter(())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        """One write per window of the bundle; the row count goes out in that window, so a streaming
        run's offset commit (which waits for every sink of a window) waits for these writes too."""
        pending, self.pending = self.pending, {}
        for window, parts in pending.items():
            table = pa.Table.from_batches(
                [b for p in parts for b in (p.to_batches() if isinstance(p, pa.Table) else [p])]
            )
            self.write(table)
            at = MIN_TIMESTAMP if isinstance(window, GlobalWindow) else window.max_timestamp()
            yield WindowedValue(table.num_rows, at, (window,))

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError


class _WriteDeadLetters(_BundledAudit):
    def write(self, table: pa.Table) -> None:
        batch = table.combine_chunks().to_batches()[0]
        write_dead_letters(layout_of(self.ctx), batch, self.ctx.ingest_date, self.ctx.run_id)
        audit = table.drop_columns(["body"])
        audit = audit.append_column("run_id", pa.array([self.ctx.run_id] * table.num_rows, pa.string()))
        self.warehouse.append(self.tables, "dead_letters", audit)


class WriteDeadLetters(StageTransform):
    """Dead letters with bodies to the raw zone; reasons and origins (no bodies) to the warehouse."""

    def expand(self, dead: beam.PCollection) -> beam.PCollection:
        return dead | beam.ParDo(_WriteDeadLetters(self.ctx))


class _WriteDuplicates(_BundledAudit):
    def write(self, table: pa.Table) -> None:
        audit = table.append_column("run_id", pa.array([self.ctx.run_id] * table.num_rows, pa.string()))
        self.warehouse.append(self.tables, "duplicates", audit)


class WriteDuplicates(StageTransform):
    """Duplicate deliveries dropped by de-duplication, recorded so every event in is accounted for."""

    def expand(self, duplicates: beam.PCollection) -> beam.PCollection:
        return duplicates | beam.ParDo(_WriteDuplicates(self.ctx))


def warehouse_table_id(domain: str, table: str) -> str:
    return f"{sql_identifier(domain)}.{sql_identifier(table)}"
