"""The refined pipeline: read the current state of the input products, run the domain's `build`,
check the result against the contract, and publish a snapshot (curated Parquet + warehouse table)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from meshkit.contracts.model import Contract
from meshkit.contracts.types import arrow_type
from meshkit.products.discovery import find_product
from pipelines.product import RefinedPipeline, load_pipeline
from pipelines.sinks.factory import warehouse_for
from pipelines.sinks.lake import write_dead_letters, write_parquet
from pipelines.sinks.stages import layout_of, tables_of
from pipelines.sinks.warehouse import WarehouseTables
from pipelines.transforms.decode import dead_letter_batch
from pipelines.transforms.stages import NAMESPACE, StageContext


def contract_schema(contract: Contract) -> pa.Schema:
    return pa.schema(
        [
            pa.field(c.name, arrow_type(c.logical_type, c.physical_type, c.options), nullable=not c.required)
            for c in contract.columns
        ]
    )


def check_rows(contract: Contract, table: pa.Table) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Conform `table` to the contract; rows with a missing required value or a duplicate key are rejected."""
    schema = contract_schema(contract)
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"the refined build did not produce column(s) {', '.join(missing)}")
    table = pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], names=schema.names)
    bad = pa.array([False] * table.num_rows)
    reasons = [""] * table.num_rows
    for column in contract.columns:
        if column.required:
            nulls = pc.is_null(table.column(column.name)).combine_chunks()
            for i in [i for i, v in enumerate(nulls.to_pylist()) if v]:
                reasons[i] = reasons[i] or f"required:{column.name}"
            bad = pc.or_(bad, nulls)
    keys = [
        "|".join(map(str, row))
        for row in zip(*(table.column(k).to_pylist() for k in contract.primary_key), strict=True)
    ]
    seen: set[str] = set()
    dup_mask = []
    for i, key in enumerate(keys):
        dup_mask.append(key in seen)
        if key in seen:
            reasons[i] = reasons[i] or "duplicate-key"
        seen.add(key)
    bad = pc.or_(bad, pa.array(dup_mask))
    rejected = [
        {"partition": 0, "offset": i, "enqueued_ms": 0, "reason_code": reasons[i], "reason": reasons[i],
         "body": str({k: table.column(k)[i].as_py() for k in contract.primary_key}).encode()}
        for i, flag in enumerate(bad.to_pylist()) if flag
    ]  # fmt: skip
    return table.filter(pc.invert(bad)), rejected


class _BuildSnapshot(beam.DoFn):
    def __init__(self, ctx: StageContext, inputs: dict[str, str]) -> None:
        self.ctx, self.inputs = ctx, inputs  # port name -> upstream product ref

    def process(self, _: Any) -> Iterator[int]:
        settings = self.ctx.settings
        contract = self.ctx.contract()
        pipeline = load_pipeline(Path(self.ctx.pipeline_path))
        if not isinstance(pipeline, RefinedPipeline):
            raise TypeError("a refined product's pipeline.py must define RefinedPipeline")
        warehouse = warehouse_for(settings)
        tables: dict[str, pa.Table] = {}
        for port, ref in self.inputs.items():
            upstream = find_product(settings.domains_dir, ref)
            tables[port] = warehouse.read(WarehouseTables.of(upstream.domain, upstream.contract.table_name), "current")
            Metrics.counter(NAMESPACE, "events_in").inc(tables[port].num_rows)
        built = pipeline.build(tables)
        good, rejected = check_rows(contract, built)
        if rejected:
            Metrics.counter(NAMESPACE, "dead_letters").inc(len(rejected))
            for row in rejected:
                Metrics.counter(NAMESPACE, f"dead_letter:{row['reason_code']}").inc()
            write_dead_letters(layout_of(self.ctx), dead_letter_batch(rejected), self.ctx.ingest_date, self.ctx.run_id)
        key = pa.array(
            [
                "|".join(map(str, r))
                for r in zip(*(good.column(k).to_pylist() for k in contract.primary_key), strict=True)
            ],
            pa.string(),
        )
        snapshot = good.append_column("_key", key).append_column("_lsn", pa.array([0] * good.num_rows, pa.int64()))
        write_parquet(layout_of(self.ctx), "refined", snapshot, self.ctx.ingest_date)
        warehouse.replace(tables_of(self.ctx), "current", good)
        Metrics.counter(NAMESPACE, "rows:refined").inc(good.num_rows)
        yield good.num_rows


def build_refined_pipeline(p: beam.Pipeline, ctx: StageContext, inputs: dict[str, str]) -> None:
    """One snapshot per run: the refined product is recomputed from its inputs' current state."""
    _ = p | "Trigger" >> beam.Create([None]) | "BuildSnapshot" >> beam.ParDo(_BuildSnapshot(ctx, inputs))
