"""Decode raw change-feed records into typed Arrow batches; everything unusable becomes a dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from meshkit.contracts.model import Contract
from meshkit.contracts.types import arrow_type
from pipelines.events import META_FIELDS, EnvelopeError, delete_key_source, parse_envelope
from pipelines.transforms.rules import RuleViolation, compile_column

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("enqueued_ms", pa.int64(), nullable=False),
        pa.field("reason_code", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("body", pa.binary(), nullable=False),
    ]
)


def source_schema(contract: Contract) -> pa.Schema:
    """Arrow schema of decoded events: the contract's source columns, then the pipeline's meta columns."""
    # Only key columns are non-nullable: a delete carries the key alone; `required` is checked per event.
    fields = [
        pa.field(c.name, arrow_type(c.logical_type, c.physical_type, c.options), nullable=not c.primary_key)
        for c in contract.source_columns
    ]
    return pa.schema([*fields, *META_FIELDS])


def dead_letter_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=DEAD_LETTER_SCHEMA)


@dataclass(frozen=True)
class DecodeResult:
    events: pa.RecordBatch
    dead_letters: pa.RecordBatch


class ChangeEventDecoder:
    """Compiled once per contract; `decode` turns one raw batch into valid events and dead letters."""

    def __init__(self, contract: Contract) -> None:
        if not contract.primary_key:
            raise ValueError(f"contract {contract.path} has no primary key")
        self.schema = source_schema(contract)
        self.columns = contract.source_columns
        self.converters = [compile_column(c) for c in self.columns]
        self.key_columns = [contract.column(k) for k in contract.primary_key]
        self.key_indexes = [self.columns.index(c) for c in self.key_columns]

    def decode(self, raw: pa.RecordBatch) -> DecodeResult:
        values: list[list[Any]] = [[] for _ in self.columns]
        keys: list[str] = []
        lsns: list[int] = []
        ops: list[str] = []
        source_ts: list[int | None] = []  # microseconds since the epoch
        partitions: list[int] = []
        offsets: list[int] = []
        dead: list[dict[str, Any]] = []
        raw_cols = raw.to_pydict()
        for partition, offset, enqueued, body in zip(
            raw_cols["partition"], raw_cols["offset"], raw_cols["enqueued_ms"], raw_cols["body"], strict=True
        ):
            try:
                row, key, lsn, op, ts = self._decode_one(body)
            except (EnvelopeError, RuleViolation) as exc:
                dead.append(
                    {
                        "partition": partition,
                        "offset": offset,
                        "enqueued_ms": enqueued,
                        "reason_code": exc.code,
                        "reason": str(exc),
                        "body": body,
                    }
                )
                continue
            for column_values, value in zip(values, row, strict=True):
                column_values.append(value)
            keys.append(key)
            lsns.append(lsn)
            ops.append(op)
            source_ts.append(ts)
            partitions.append(partition)
            offsets.append(offset)
        arrays = [pa.array(v, type=f.type) for v, f in zip(values, self.schema, strict=False)]
        meta = [keys, lsns, ops, source_ts, partitions, offsets]
        arrays += [pa.array(v, type=f.type) for v, f in zip(meta, META_FIELDS, strict=True)]
        return DecodeResult(pa.RecordBatch.from_arrays(arrays, schema=self.schema), dead_letter_batch(dead))

    def _decode_one(self, body: bytes) -> tuple[list[Any], str, int, str, int | None]:
        try:
            item = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError("invalid-json", f"not valid JSON: {str(exc).split(':')[0]}") from exc
        envelope = parse_envelope(item)
        doc = envelope.document
        if envelope.operation == "delete":
            row: list[Any] = [None] * len(self.columns)
            for index, column in zip(self.key_indexes, self.key_columns, strict=True):
                row[index] = self.converters[index](delete_key_source(envelope, column.source_field))
        else:
            row = [convert(doc.get(c.source_field)) for convert, c in zip(self.converters, self.columns, strict=True)]
        key_parts = [row[i] for i in self.key_indexes]
        if any(part is None for part in key_parts):
            raise EnvelopeError("missing-key", "the primary key is missing")
        key = "|".join(str(part) for part in key_parts)
        seconds = envelope.source_ts_seconds
        return row, key, envelope.lsn, envelope.operation, None if seconds is None else int(seconds * 1_000_000)
