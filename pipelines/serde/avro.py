"""Avro change events on the bus: the Confluent and Azure framings, decoding with reasons, and the producer.

Framings:
- Kafka surface (Confluent wire format): magic byte 0, the schema id as 4 bytes big-endian, the Avro
  binary body; the property `contentType` is `application/vnd.confluent.avro`.
- Event Hubs (Azure Schema Registry format): the body is the Avro binary alone and the content type
  `avro/binary+<schema id>` carries the (GUID) id, as the SDK's `AvroEncoder` writes it.
- `application/json`: an event the producer could not fit into the writer schema travels as JSON,
  for the pipeline to dead-letter with the contract rule it breaks (no event is dropped at the producer).

`decode` raises `AvroDecodeError` with a reason code; `decode_batch` never raises for an event (it
returns the reason instead), only for an unreachable registry (`TransientError`: retry the batch,
never dead-letter events because of an outage).
"""

from __future__ import annotations

import io
import struct
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson

from meshkit.contracts.avro_compat import resolve
from meshkit.errors import TerminalError
from pipelines.serde.registry import SchemaId, SchemaNotFoundError, canonical_text
from pipelines.serde.values import UnfitValue, avro_values, plain_values, without_uuid_logical_type

if TYPE_CHECKING:
    from pipelines.serde.registry import SchemaRegistry
    from pipelines.transports.base import EventRecord, EventTransport

ReasonCode = Literal["unknown-schema", "incompatible-schema", "not-avro", "invalid-json"]
Framing = Literal["confluent", "azure"]
MAGIC = 0
CONFLUENT_CONTENT_TYPE = "application/vnd.confluent.avro"
AZURE_CONTENT_TYPE_PREFIX = "avro/binary+"
JSON_CONTENT_TYPE = "application/json"
CONTENT_TYPE_PROPERTY = "contentType"
_HEADER = struct.Struct(">bI")


class AvroDecodeError(ValueError):
    """An event that cannot be decoded; `code` is the dead-letter reason code."""

    def __init__(self, code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def parsed(schema: dict[str, Any]) -> Any:
    """fastavro's parsed form (own name table, so two schemas with the same names never clash)."""
    import fastavro

    return fastavro.parse_schema(schema, named_schemas={})


def encode(event: dict[str, Any], schema_id: int, parsed_schema: Any) -> bytes:
    """The Confluent wire format: magic 0, 4-byte big-endian schema id, Avro binary of `event` (Avro values)."""
    import fastavro

    out = io.BytesIO()
    out.write(_HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(out, parsed_schema, event)
    return out.getvalue()


def encode_body(event: dict[str, Any], parsed_schema: Any) -> bytes:
    """The Avro binary alone (the Azure Schema Registry format puts the id in the content type)."""
    import fastavro

    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed_schema, event)
    return out.getvalue()


def _framing(payload: bytes, content_type: str | None) -> tuple[SchemaId, int]:
    """(schema id, where the Avro body starts)."""
    if content_type and content_type.startswith(AZURE_CONTENT_TYPE_PREFIX):
        return content_type[len(AZURE_CONTENT_TYPE_PREFIX) :], 0
    if len(payload) < _HEADER.size or payload[0] != MAGIC:
        first = f"first byte {payload[0]:#04x}" if payload else "an empty body"
        raise AvroDecodeError("not-avro", f"not the Confluent Avro wire format ({first}, length {len(payload)})")
    return _HEADER.unpack_from(payload)[1], _HEADER.size


class _Reader:
    """Everything needed to decode one writer schema id into the reader schema, built once."""

    def __init__(self, writer: dict[str, Any], reader: dict[str, Any] | None, plain: bool) -> None:
        target = reader if reader is not None else writer
        self.writer = parsed(without_uuid_logical_type(writer))
        self.reader = parsed(without_uuid_logical_type(reader)) if reader is not None else None
        self.convert = plain_values(without_uuid_logical_type(target)) if plain else None

    def read(self, payload: bytes, start: int) -> dict[str, Any]:
        import fastavro

        stream = io.BytesIO(payload)
        stream.seek(start)
        try:
            record: Any = fastavro.schemaless_reader(stream, self.writer, self.reader)
        except (EOFError, ValueError, IndexError, TypeError, UnicodeDecodeError, struct.error) as exc:
            raise AvroDecodeError("not-avro", f"the Avro body does not match its writer schema: {exc}") from exc
        if stream.tell() != len(payload):
            raise AvroDecodeError("not-avro", f"{len(payload) - stream.tell()} bytes after the Avro record")
        if self.convert is None:
            return record
        try:
            return self.convert(record)
        except ValueError as exc:  # JSON text that is not JSON
            raise AvroDecodeError("not-avro", f"a value does not convert to its document form: {exc}") from exc


class AvroEventDecoder:
    """Decodes Avro events of any registered writer schema into `reader_schema` (the contract's current
    envelope), caching one `_Reader` per schema id; `plain` gives the JSON document form the pipeline's
    decoding seam reads, else Avro's Python values (`Decimal`, `datetime`, `date`)."""

    def __init__(self, registry: SchemaRegistry, reader_schema: dict[str, Any] | None, *, plain: bool = True) -> None:
        self.registry = registry
        self.reader_schema = reader_schema
        self.plain = plain
        self._readers: dict[SchemaId, _Reader | AvroDecodeError] = {}

    def _reader(self, schema_id: SchemaId) -> _Reader:
        cached = self._readers.get(schema_id)
        if cached is None:
            cached = self._build(schema_id)
            if not (isinstance(cached, AvroDecodeError) and cached.code == "unknown-schema"):
                self._readers[schema_id] = cached  # an unknown id is asked again: it may be registered later
        if isinstance(cached, AvroDecodeError):
            raise cached
        return cached

    def _build(self, schema_id: SchemaId) -> _Reader | AvroDecodeError:
        try:
            writer = self.registry.get(schema_id)
        except SchemaNotFoundError:
            return AvroDecodeError("unknown-schema", f"schema id {schema_id} is not in the registry")
        if self.reader_schema is not None:
            problems = resolve(self.reader_schema, writer, "backward")
            if problems:
                shown = "; ".join(str(p) for p in problems[:3])
                return AvroDecodeError(
                    "incompatible-schema", f"writer schema {schema_id} cannot be read as the contract's: {shown}"
                )
        try:
            return _Reader(writer, self.reader_schema, self.plain)
        except ValueError as exc:  # fastavro: a schema it cannot parse
            return AvroDecodeError("incompatible-schema", f"writer schema {schema_id} is not usable: {exc}")

    def decode(self, payload: bytes, content_type: str | None = None) -> tuple[dict[str, Any], SchemaId | None]:
        """(event, writer schema id); a JSON event (the producer's fallback) has no schema id."""
        # a JSON fallback event read without its properties still starts with `{` (Avro framing with 0)
        if content_type == JSON_CONTENT_TYPE or (content_type is None and payload[:1] == b"{"):
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise AvroDecodeError("invalid-json", f"not valid JSON: {str(exc).split(':')[0]}") from exc
            return event, None
        schema_id, start = _framing(payload, content_type)
        return self._reader(schema_id).read(payload, start), schema_id

    def decode_batch_errors(
        self, bodies: list[bytes], content_types: list[str | None] | None = None
    ) -> tuple[list[dict[str, Any] | None], list[AvroDecodeError | None]]:
        """Decoded events, or the error (code and message) of each body that could not be decoded."""
        events: list[dict[str, Any] | None] = []
        errors: list[AvroDecodeError | None] = []
        types = content_types or [None] * len(bodies)
        for body, content_type in zip(bodies, types, strict=True):
            try:
                events.append(self.decode(body, content_type)[0])
                errors.append(None)
            except AvroDecodeError as exc:
                events.append(None)
                errors.append(exc)
        return events, errors

    def decode_batch(
        self, bodies: list[bytes], content_types: list[str | None] | None = None
    ) -> tuple[list[dict[str, Any] | None], list[str | None]]:
        events, errors = self.decode_batch_errors(bodies, content_types)
        return events, [e.code if e is not None else None for e in errors]


_DECODERS: weakref.WeakKeyDictionary[Any, dict[tuple[str, bool], AvroEventDecoder]] = weakref.WeakKeyDictionary()


def decoder_for(
    registry: SchemaRegistry, reader_schema: dict[str, Any] | None, *, plain: bool = True
) -> AvroEventDecoder:
    """The cached decoder of (registry, reader schema): batches after the first reuse parsed schemas."""
    per_registry = _DECODERS.setdefault(registry, {})
    key = (canonical_text(reader_schema) if reader_schema is not None else "", plain)
    if key not in per_registry:
        per_registry[key] = AvroEventDecoder(registry, reader_schema, plain=plain)
    return per_registry[key]


def decode(
    payload: bytes,
    registry: SchemaRegistry,
    reader_schema: dict[str, Any] | None = None,
    *,
    content_type: str | None = None,
    plain: bool = True,
) -> tuple[dict[str, Any], SchemaId | None]:
    """One event: (event, writer schema id); `AvroDecodeError` with `code` unknown-schema,
    incompatible-schema or not-avro (invalid-json for a JSON fallback event that is not JSON)."""
    return decoder_for(registry, reader_schema, plain=plain).decode(payload, content_type)


def decode_batch(
    bodies: list[bytes],
    registry: SchemaRegistry,
    reader_schema: dict[str, Any] | None,
    content_types: list[str | None] | None = None,
    *,
    plain: bool = True,
) -> tuple[list[dict[str, Any] | None], list[str | None]]:
    """Per body: the decoded event or None, and None or the reason code; never raises for an event."""
    return decoder_for(registry, reader_schema, plain=plain).decode_batch(bodies, content_types)


class AvroProducer:
    """An `EventTransport` that serialises JSON change events as Avro before the wrapped transport
    publishes them: the relays keep producing JSON bodies and wrap their transport in this.

    The envelope schema is registered under `subject` on first use (idempotent; an incompatible
    contract change fails here, before anything is published). `framing` is `confluent` (Kafka
    surface and local log) or `azure` (Event Hubs: id in the content type). An event that does not fit
    the schema is published as JSON (`contentType: application/json`, `serdeError: <why>`).
    """

    def __init__(
        self,
        transport: EventTransport,
        registry: SchemaRegistry,
        subject: str,
        schema: dict[str, Any],
        *,
        framing: Framing = "confluent",
    ) -> None:
        self.transport = transport
        self.registry = registry
        self.subject = subject
        self.schema = schema
        self.framing = framing
        self._id: SchemaId | None = None
        self._parsed = parsed(schema)
        self._convert = avro_values(schema)
        self.fallbacks = 0  # events sent as JSON since this producer opened

    @property
    def schema_id(self) -> SchemaId:
        if self._id is None:
            self._id = self.registry.register(self.subject, self.schema)
        return self._id

    def serialise(self, body: bytes | dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """(payload, properties to add) of one JSON change event."""
        try:
            event = orjson.loads(body) if isinstance(body, bytes) else body
            values = self._convert(event)
        except (orjson.JSONDecodeError, UnfitValue) as exc:
            self.fallbacks += 1
            raw = body if isinstance(body, bytes) else orjson.dumps(body)
            return raw, {CONTENT_TYPE_PROPERTY: JSON_CONTENT_TYPE, "serdeError": str(exc)[:200]}
        schema_id = self.schema_id
        if self.framing == "azure":
            return encode_body(values, self._parsed), {CONTENT_TYPE_PROPERTY: f"{AZURE_CONTENT_TYPE_PREFIX}{schema_id}"}
        if not isinstance(schema_id, int):
            raise TerminalError(f"schema id {schema_id!r} is not a Confluent id; the confluent framing needs one")
        return encode(values, schema_id, self._parsed), {CONTENT_TYPE_PROPERTY: CONFLUENT_CONTENT_TYPE}

    def publish(self, records: Iterable[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, int]]:
        out = []
        for key, body, properties in records:
            payload, extra = self.serialise(body)
            out.append((key, payload, {**properties, **extra}))
        return self.transport.publish(out)

    def end_offsets(self) -> dict[int, int]:
        return self.transport.end_offsets()

    def read(self, partition: int, start: int, end: int, max_batch: int = 5000) -> Iterator[list[EventRecord]]:
        return self.transport.read(partition, start, end, max_batch)

    def committed(self, group: str) -> dict[int, int]:
        return self.transport.committed(group)

    def commit(self, group: str, offsets: Mapping[int, int]) -> None:
        self.transport.commit(group, offsets)

    def close(self) -> None:
        self.transport.close()
