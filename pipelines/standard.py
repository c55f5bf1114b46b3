"""The standard Beam graphs built from a contract: the change-feed pipeline and the refined pipeline."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam

from pipelines.sinks.stages import WriteChanges, WriteDeadLetters, WriteDuplicates, WriteRawZone
from pipelines.transforms.stages import (
    DEAD,
    DUPLICATES,
    DecodeAndValidate,
    MaskAndTransform,
    OrderAndDeduplicate,
    StageContext,
)

SourceFactory = Callable[[], beam.PTransform]


def build_change_feed_pipeline(p: beam.Pipeline, ctx: StageContext, source: beam.PTransform) -> None:
    """read -> raw zone -> decode/validate (DLQ) -> order/dedupe -> mask -> domain transform -> sinks."""
    raw = p | "Read" >> source | "RawZone" >> WriteRawZone(ctx)
    decoded = raw | "DecodeAndValidate" >> DecodeAndValidate(ctx)
    ordered = decoded.events | "OrderAndDeduplicate" >> OrderAndDeduplicate(ctx.shards)
    masked = ordered.events | "MaskAndTransform" >> MaskAndTransform(ctx)
    _ = masked.events | "WriteChanges" >> WriteChanges(ctx)
    dead = (decoded[DEAD], masked[DEAD]) | "AllDeadLetters" >> beam.Flatten()
    _ = dead | "WriteDeadLetters" >> WriteDeadLetters(ctx)
    _ = ordered[DUPLICATES] | "WriteDuplicates" >> WriteDuplicates(ctx)
