"""The standard Beam graphs built from a contract: the change-feed pipeline and the refined pipeline."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam
from apache_beam.transforms.window import FixedWindows

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
CommitFactory = Callable[[list[beam.PCollection]], beam.PTransform]


def build_change_feed_pipeline(
    p: beam.Pipeline,
    ctx: StageContext,
    source: beam.PTransform,
    *,
    window_seconds: float | None = None,
    commit: CommitFactory | None = None,
) -> None:
    """read -> raw zone -> decode/validate (DLQ) -> order/dedupe -> mask -> domain transform -> sinks.

    Streaming runs pass `window_seconds` (events are grouped per key within fixed windows of enqueue
    time) and `commit`, which receives the raw events and every sink's output and commits the bus
    offsets of a window once all of them have written it."""
    read = p | "Read" >> source
    if window_seconds is not None:
        read = read | "Window" >> beam.WindowInto(FixedWindows(window_seconds))
    raw = read | "RawZone" >> WriteRawZone(ctx)
    decoded = raw | "DecodeAndValidate" >> DecodeAndValidate(ctx)
    ordered = decoded.events | "OrderAndDeduplicate" >> OrderAndDeduplicate(ctx.shards)
    masked = ordered.events | "MaskAndTransform" >> MaskAndTransform(ctx)
    changes = masked.events | "WriteChanges" >> WriteChanges(ctx)
    dead = (decoded[DEAD], masked[DEAD]) | "AllDeadLetters" >> beam.Flatten()
    dead_written = dead | "WriteDeadLetters" >> WriteDeadLetters(ctx)
    duplicates_written = ordered[DUPLICATES] | "WriteDuplicates" >> WriteDuplicates(ctx)
    if commit is not None:
        _ = raw | "CommitOffsets" >> commit([changes, dead_written, duplicates_written])
