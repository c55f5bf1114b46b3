"""Decode raw change-feed records into typed Arrow batches; everything unusable becomes a dead letter."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from meshkit.contracts.model import Contract
from meshkit.contracts.types import arrow_type
from pipelines.events import META_FIELDS, ChangeEnvelope, EnvelopeError, delete_key_source, parse_envelope
from pipelines.transforms.rules import RuleViolation, VectorTest, compile_column, vector_checks

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
        self.vector_checks = [vector_checks(c) for c in self.columns]
        self.key_columns = [contract.column(k) for k in contract.primary_key]
        self.key_indexes = [self.columns.index(c) for c in self.key_columns]

    def decode(
        self,
        raw: pa.RecordBatch,
        documents: Sequence[Any] | None = None,
        failures: Mapping[int, tuple[str, str]] | None = None,
    ) -> DecodeResult:
        """Envelopes record by record, then columns one at a time: a string column whose rules all
        have an Arrow form is converted and checked in one vectorised pass; any other column (or a
        string column holding a non-string) value by value. Each bad row keeps its first error in
        column order, exactly as a value-by-value check would report it."""
        cols = raw.to_pydict()
        envelopes: list[ChangeEnvelope] = []
        live: list[int] = []  # input rows whose envelope is usable
        errors: dict[int, tuple[str, str]] = dict(failures or {})  # input row -> (code, reason)
        for i, body in enumerate(cols["body"]):
            if i in errors:  # already refused by the bus format (e.g. an unknown Avro schema)
                continue
            try:
                envelopes.append(parse_envelope(documents[i]) if documents is not None else _envelope(body))
                live.append(i)
            except EnvelopeError as exc:
                errors[i] = (exc.code, str(exc))
        failed: list[tuple[str, str] | None] = [None] * len(live)
        deletes = [e.operation == "delete" for e in envelopes]
        any_delete = any(deletes)
        columns: list[pa.Array | list[Any]] = []
        for index, column in enumerate(self.columns):
            field = column.source_field
            # `sourceField` names the field in a document source (Cosmos DB); a relational source's
            # row carries the contract's own column name, so that is the fallback
            get = _getter(field, column.name)
            if index in self.key_indexes:
                values = [get(e.document) for e in envelopes]
                if any_delete:  # a Cosmos DB delete carries its key in metadata only
                    values = [
                        delete_key_source(e, field) if d and v is None else v
                        for e, d, v in zip(envelopes, deletes, values, strict=True)
                    ]
                skip = None
            else:
                values = [None if d else get(e.document) for e, d in zip(envelopes, deletes, strict=True)]
                skip = deletes if any_delete else None  # a delete carries its key only
            columns.append(self._column(index, values, skip, failed))
        keep = [j for j, f in enumerate(failed) if f is None]
        keys = self._keys(columns, keep)
        for j, f in enumerate(failed):
            if f is not None:
                errors[live[j]] = f
        for j, key in zip(keep, keys, strict=True):
            if key is None:
                errors[live[j]] = ("missing-key", "the primary key is missing")
        keep = [j for j, key in zip(keep, keys, strict=True) if key is not None]
        take = pa.array(keep, pa.int64())
        arrays = [
            c.take(take) if isinstance(c, pa.Array) else pa.array([c[j] for j in keep], type=f.type)
            for c, f in zip(columns, self.schema, strict=False)
        ]
        rows = [live[j] for j in keep]
        chosen = [envelopes[j] for j in keep]
        meta = [
            [k for k in keys if k is not None],
            [e.lsn for e in chosen],
            [e.operation for e in chosen],
            [None if e.source_ts_seconds is None else int(e.source_ts_seconds * 1_000_000) for e in chosen],
            [cols["partition"][i] for i in rows],
            [cols["offset"][i] for i in rows],
        ]
        arrays += [pa.array(v, type=f.type) for v, f in zip(meta, META_FIELDS, strict=True)]
        dead = [
            {"partition": cols["partition"][i], "offset": cols["offset"][i], "enqueued_ms": cols["enqueued_ms"][i],
             "reason_code": code, "reason": reason, "body": cols["body"][i]}
            for i, (code, reason) in sorted(errors.items())
        ]  # fmt: skip
        return DecodeResult(pa.RecordBatch.from_arrays(arrays, schema=self.schema), dead_letter_batch(dead))

    def _column(
        self, index: int, values: list[Any], skip: list[bool] | None, failed: list[tuple[str, str] | None]
    ) -> pa.Array | list[Any]:
        """Convert and check one column; record the first error of each row in `failed`."""
        checks = self.vector_checks[index]
        if checks is not None:
            try:
                return self._column_vectorised(index, values, skip, failed, checks)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                pass  # a non-string value, or a pattern RE2 cannot compile: check value by value
        convert = self.converters[index]
        out: list[Any] = [None] * len(values)
        for j, value in enumerate(values):
            if failed[j] is not None or (skip is not None and skip[j]):
                continue
            try:
                out[j] = convert(value)
            except RuleViolation as exc:
                failed[j] = (exc.code, str(exc))
        return out

    def _column_vectorised(
        self,
        index: int,
        values: list[Any],
        skip: list[bool] | None,
        failed: list[tuple[str, str] | None],
        checks: list[tuple[str, str, VectorTest]],
    ) -> pa.Array:
        column = self.columns[index]
        array = pa.array(values, type=pa.string())
        verdicts = [(pc.invert(c[2](array)).fill_null(False), c[0], c[1]) for c in checks]
        if column.required:
            missing = (pc.is_null(array), "required", f"{column.name}: required value is missing")
            verdicts.insert(0, missing)
        ignored = pa.array(skip, pa.bool_()) if skip is not None else None
        for verdict, rule, message in verdicts:
            bad = pc.and_not(verdict, ignored) if ignored is not None else verdict
            for j in pc.indices_nonzero(bad).to_pylist():
                if failed[j] is None:
                    failed[j] = (f"{rule}:{column.name}", message)
        return array

    def _keys(self, columns: list[pa.Array | list[Any]], keep: list[int]) -> list[str | None]:
        """`_key` of each kept row: the key columns' values joined with `|` (None when one is missing)."""
        parts = []
        for index in self.key_indexes:
            c = columns[index]
            parts.append(
                c.take(pa.array(keep, pa.int64())).to_pylist() if isinstance(c, pa.Array) else [c[j] for j in keep]
            )
        return [
            None if any(p is None for p in row) else "|".join(str(p) for p in row) for row in zip(*parts, strict=True)
        ]


def _getter(field: str, name: str) -> Callable[[dict[str, Any]], Any]:
    """Read `field` from a document, or the column's own `name` when the document has no `field`."""
    if field == name:
        return lambda doc: doc.get(field)
    return lambda doc: doc[field] if field in doc else doc.get(name)


def _envelope(body: bytes) -> ChangeEnvelope:
    try:
        item = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid-json", f"not valid JSON: {str(exc).split(':')[0]}") from exc
    return parse_envelope(item)
