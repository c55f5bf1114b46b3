"""The standard pipeline's stages as small PTransforms over Arrow batches (design steps 2-5)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from meshkit.config import Settings
from meshkit.contracts.model import Contract, load_contract
from meshkit.contracts.types import arrow_type
from pipelines.events import META_FIELDS
from pipelines.transforms.decode import ChangeEventDecoder, dead_letter_batch
from pipelines.transforms.mask import MaskingPlan
from pipelines.transforms.order import order_and_deduplicate, split_by_shard
from pipelines.transforms.profile import DOCUMENTS_COUNTER, DocumentSampler, profile_sample

if TYPE_CHECKING:
    from pipelines.serde.avro import AvroEventDecoder

NAMESPACE = "meshkit"
DEAD = "dead_letters"
DUPLICATES = "duplicates"


@dataclass(frozen=True)
class StageContext:
    """What every stage needs, small and picklable (DoFns reload the contract in `setup`)."""

    settings: Settings
    product: str  # domain/product
    contract_path: str
    pipeline_path: str
    run_id: str
    ingest_date: str
    shards: int = 4

    def contract(self) -> Contract:
        return load_contract(Path(self.contract_path))


class StageTransform(beam.PTransform):
    """A stage of the pipeline: a PTransform built from the run's `StageContext`."""

    def __init__(self, ctx: StageContext) -> None:
        super().__init__()
        self.ctx = ctx


def output_schema(contract: Contract, masked: pa.Schema) -> pa.Schema:
    """Masked contract columns in contract order (derived ones typed from the contract), then meta."""
    fields = []
    for column in contract.columns:
        if column.name in masked.names:
            fields.append(masked.field(column.name))
        else:
            fields.append(pa.field(column.name, arrow_type(column.logical_type, column.physical_type, column.options)))
    return pa.schema([*fields, *META_FIELDS])


class _Decode(beam.DoFn):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.events_in = Metrics.counter(NAMESPACE, "events_in")
        self.dead = Metrics.counter(NAMESPACE, "dead_letters")
        self.newest = Metrics.distribution(NAMESPACE, "source_ts_ms")

    def setup(self) -> None:
        contract = self.ctx.contract()
        self.decoder = ChangeEventDecoder(contract)
        self.avro: AvroEventDecoder | None = None
        if self.ctx.settings.bus_format == "avro":  # the schema registry's format; JSON otherwise
            from pipelines.serde.bus import avro_decoder

            self.avro = avro_decoder(contract, self.ctx.settings)
        self.sampler = DocumentSampler()

    def process(self, raw: pa.RecordBatch) -> Iterator[Any]:
        if self.avro is None:
            result = self.decoder.decode(raw)
        else:  # unknown or incompatible schemas are segregated as dead letters with the reason
            documents, problems = self.avro.decode_batch_errors(
                raw.column("body").to_pylist(), raw.column("content_type").to_pylist()
            )
            failures = {i: (e.code, str(e)) for i, e in enumerate(problems) if e is not None}
            result = self.decoder.decode(raw, documents, failures)
        self._profile(raw, documents if self.avro is not None else None)
        self.events_in.inc(raw.num_rows)
        if result.dead_letters.num_rows:
            self.dead.inc(result.dead_letters.num_rows)
            for code in result.dead_letters.column("reason_code").to_pylist():
                Metrics.counter(NAMESPACE, f"dead_letter:{code}").inc()
            yield beam.pvalue.TaggedOutput(DEAD, result.dead_letters)
        if result.events.num_rows:
            ts = result.events.column("_source_ts").cast(pa.int64()).to_pylist()
            newest = max((t for t in ts if t is not None), default=None)
            if newest is not None:
                self.newest.update(newest // 1000)
            yield result.events

    def _profile(self, raw: pa.RecordBatch, documents: list[Any] | None) -> None:
        """Fields and kinds of a sample of the documents, as `profile:` counters (meshkit drift)."""
        rows = self.sampler.rows(raw.num_rows)
        if documents is not None:
            n, counts = profile_sample([documents[i] for i in rows], parse=False)
        else:
            n, counts = profile_sample(raw.column("body").take(pa.array(rows, pa.int64())).to_pylist())
        if n:
            Metrics.counter(NAMESPACE, DOCUMENTS_COUNTER).inc(n)
            for name, count in counts.items():
                Metrics.counter(NAMESPACE, name).inc(count)


class DecodeAndValidate(StageTransform):
    """Raw batches -> typed, validated events (main) and dead letters with reasons (`dead_letters`)."""

    def expand(self, raw: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return raw | beam.ParDo(_Decode(self.ctx)).with_outputs(DEAD, main="events")


class _KeyByShard(beam.DoFn):
    def __init__(self, shards: int) -> None:
        self.shards = shards

    def process(self, batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
        yield from split_by_shard(batch, self.shards)


class _Deduplicate(beam.DoFn):
    def __init__(self) -> None:
        self.duplicates = Metrics.counter(NAMESPACE, "duplicates_dropped")

    def process(self, element: tuple[int, Iterable[pa.RecordBatch]]) -> Iterator[Any]:
        events, duplicates = order_and_deduplicate(element[1])
        if duplicates.num_rows:
            self.duplicates.inc(duplicates.num_rows)
            yield beam.pvalue.TaggedOutput(DUPLICATES, duplicates)
        if events.num_rows:
            yield events


class OrderAndDeduplicate(beam.PTransform):
    """Gather every event of a key in one shard, sort by LSN, drop duplicate (key, LSN) deliveries."""

    def __init__(self, shards: int) -> None:
        super().__init__()
        self.shards = shards

    def expand(self, events: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            events
            | "KeyByShard" >> beam.ParDo(_KeyByShard(self.shards))
            | "GroupShard" >> beam.GroupByKey()
            | "Dedupe" >> beam.ParDo(_Deduplicate()).with_outputs(DUPLICATES, main="events")
        )


class _MaskAndTransform(beam.DoFn):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.failed = Metrics.counter(NAMESPACE, "dead_letters")

    def setup(self) -> None:
        from meshkit.secrets import masking_key
        from pipelines.product import ChangeFeedPipeline, load_pipeline

        contract = self.ctx.contract()
        self.key = masking_key(self.ctx.settings)
        self.plan: MaskingPlan | None = None
        self.contract = contract
        pipeline = load_pipeline(Path(self.ctx.pipeline_path))
        self.transform = pipeline.transform if isinstance(pipeline, ChangeFeedPipeline) else None

    def process(self, table: pa.Table) -> Iterator[Any]:
        batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
        if batch is None:
            return
        if self.plan is None:
            self.plan = MaskingPlan.from_contract(self.contract, batch.schema)
            self.schema = output_schema(self.contract, self.plan.schema)
        masked = self.plan.apply(batch, self.key)
        try:
            out = self.transform(masked) if self.transform else masked
            yield pa.Table.from_batches([conform(out, self.schema)])
        except Exception as exc:  # the domain's code failed: dead-letter its rows, keep the pipeline going
            self.failed.inc(masked.num_rows)
            Metrics.counter(NAMESPACE, "dead_letter:transform-error").inc(masked.num_rows)
            yield beam.pvalue.TaggedOutput(DEAD, transform_dead_letters(masked, exc))


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The domain transform's output in the contract's column order and types; missing column -> error."""
    missing = [f.name for f in schema if f.name not in batch.schema.names]
    if missing:
        raise ValueError(f"the domain transform did not produce column(s) {', '.join(missing)}")
    return pa.RecordBatch.from_arrays([batch.column(f.name).cast(f.type) for f in schema], schema=schema)


def transform_dead_letters(masked: pa.RecordBatch, exc: Exception) -> pa.RecordBatch:
    reason = f"domain transform failed: {type(exc).__name__}: {exc}"[:500]
    rows = []
    for row in masked.to_pylist():
        body = json.dumps(row, default=str, ensure_ascii=False).encode("utf-8")
        rows.append(
            {
                "partition": row["_partition"],
                "offset": row["_offset"],
                "enqueued_ms": 0,
                "reason_code": "transform-error",
                "reason": reason,
                "body": body,
            }
        )
    return dead_letter_batch(rows)


class MaskAndTransform(StageTransform):
    """Mask personal data per the contract, then run the domain's transform on the masked batch."""

    def expand(self, events: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return events | beam.ParDo(_MaskAndTransform(self.ctx)).with_outputs(DEAD, main="events")
