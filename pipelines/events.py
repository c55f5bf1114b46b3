"""Change events on the bus and in Arrow: the raw record schema and the one envelope-decoding seam.

A change event arrives in one of three envelopes, and everything after `parse_envelope` (ordering by
LSN, de-duplication, masking, the MERGE) is the same code for all of them:
- Cosmos DB, latest version: the document itself with system properties `_lsn`, `_ts`, `_etag`, `_rid`;
- Cosmos DB, all versions and deletes: `{"current": {...}, "previous": {...}?, "metadata":
  {"operationType", "lsn", "crts", "id", "partitionKey", ...}}`, where a delete carries only metadata;
- Debezium (relational CDC, e.g. PostgreSQL logical replication): `{"before", "after", "op": c|u|d|r,
  "source": {"lsn", "ts_ms", ...}}`; `r` is a snapshot read, handled as an upsert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# What a source hands the pipeline: bytes exactly as received, with where they came from.
RAW_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("enqueued_ms", pa.int64(), nullable=False),
        pa.field("partition_key", pa.string()),
        pa.field("body", pa.binary(), nullable=False),
        # the bus's content type when it says one (`contentType` property: Avro on Event Hubs needs it)
        pa.field("content_type", pa.string()),
    ]
)


def raw_batch(
    bodies: list[bytes],
    partition: int = 0,
    offsets: list[int] | None = None,
    enqueued_ms: list[int] | None = None,
    keys: list[str | None] | None = None,
    content_types: list[str | None] | None = None,
) -> pa.RecordBatch:
    """A raw batch of one partition; offsets default to 0..n-1 (a file replay)."""
    n = len(bodies)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([partition] * n, pa.int32()),
            pa.array(offsets if offsets is not None else range(n), pa.int64()),
            pa.array(enqueued_ms if enqueued_ms is not None else [0] * n, pa.int64()),
            pa.array(keys if keys is not None else [None] * n, pa.string()),
            pa.array(bodies, pa.binary()),
            pa.array(content_types if content_types is not None else [None] * n, pa.string()),
        ],
        schema=RAW_SCHEMA,
    )


# Columns the pipeline adds beside the contract's columns.
META_FIELDS = (
    pa.field("_key", pa.string(), nullable=False),
    pa.field("_lsn", pa.int64(), nullable=False),
    pa.field("_op", pa.string(), nullable=False),
    pa.field("_source_ts", pa.timestamp("us", tz="UTC")),
    pa.field("_partition", pa.int32(), nullable=False),
    pa.field("_offset", pa.int64(), nullable=False),
)
META_NAMES = tuple(f.name for f in META_FIELDS)

OPERATIONS = {"create": "create", "replace": "update", "delete": "delete"}


@dataclass(frozen=True)
class ChangeEnvelope:
    """The parts of a change-feed item the pipeline needs, whichever format it came in."""

    operation: str  # create | update | delete | upsert
    lsn: int
    source_ts_seconds: float | None
    document: dict[str, Any]
    metadata: dict[str, Any]


class EnvelopeError(ValueError):
    """The item is not a usable change-feed item; `code` groups dead letters by reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EnvelopeError("missing-lsn", f"{what} is missing or not an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise EnvelopeError("missing-lsn", f"{what} is not an integer") from exc


def _as_seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


DEBEZIUM_OPERATIONS = {"c": "create", "u": "update", "d": "delete", "r": "upsert"}


def _debezium(item: dict[str, Any], source: dict[str, Any]) -> ChangeEnvelope:
    op = item.get("op")
    if op not in DEBEZIUM_OPERATIONS:
        raise EnvelopeError("unknown-operation", f"op {op!r} is not one of c, u, d, r")
    image = item.get("before") if op == "d" else item.get("after")
    if not isinstance(image, dict):
        side = "before" if op == "d" else "after"
        raise EnvelopeError("not-an-object", f"`{side}` of a Debezium {op!r} event must be a JSON object")
    ts_ms = source.get("ts_ms")
    return ChangeEnvelope(
        operation=DEBEZIUM_OPERATIONS[op],
        lsn=_as_int(source.get("lsn"), "source.lsn"),
        source_ts_seconds=ts_ms / 1000 if isinstance(ts_ms, int | float) and not isinstance(ts_ms, bool) else None,
        document=image,
        metadata={},
    )


def parse_envelope(item: Any) -> ChangeEnvelope:
    """Recognise a Cosmos DB change-feed item or a Debezium event; raise `EnvelopeError` with a reason otherwise."""
    if not isinstance(item, dict):
        raise EnvelopeError("not-an-object", f"a change-feed item must be a JSON object, got {type(item).__name__}")
    source = item.get("source")
    if isinstance(source, dict) and "op" in item and ("after" in item or "before" in item):
        return _debezium(item, source)
    metadata = item.get("metadata")
    # all versions and deletes: a delete has no (or a null) `current`, only metadata with its id and key
    if isinstance(metadata, dict) and ("current" in item or "operationType" in metadata):
        op = metadata.get("operationType")
        if op not in OPERATIONS:
            raise EnvelopeError(
                "unknown-operation", f"metadata.operationType {op!r} is not one of create, replace, delete"
            )
        current = item.get("current") or {}
        if not isinstance(current, dict):
            raise EnvelopeError("not-an-object", "`current` must be a JSON object")
        return ChangeEnvelope(
            operation=OPERATIONS[op],
            lsn=_as_int(metadata.get("lsn"), "metadata.lsn"),
            source_ts_seconds=_as_seconds(metadata.get("crts")) or _as_seconds(current.get("_ts")),
            document=current,
            metadata=metadata,
        )
    return ChangeEnvelope(
        operation="upsert",
        lsn=_as_int(item.get("_lsn"), "_lsn"),
        source_ts_seconds=_as_seconds(item.get("_ts")),
        document=item,
        metadata={},
    )


def delete_key_source(envelope: ChangeEnvelope, field: str) -> Any:
    """A Cosmos DB delete carries the document id and partition key in metadata only; a Debezium delete
    carries the key columns in `before`."""
    if field in envelope.document:
        return envelope.document[field]
    if field == "id":
        return envelope.metadata.get("id")
    partition_key = envelope.metadata.get("partitionKey")
    if isinstance(partition_key, dict):
        return partition_key.get(field)
    return None
