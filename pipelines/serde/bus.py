"""What the relay and the pipeline call when `bus_format` is `avro`: one producer and one decoder per product.

The relay wraps its transport with `avro_producer(...)`; the pipeline's decode step turns each raw
batch into documents with `avro_decoder(...).decode_batch_errors(bodies, content_types)`. Both sides
derive the schema from the contract (`envelope_schema`) and the subject from the topic, so they agree
without sharing state; the subject's compatibility mode is the contract's `schemaCompatibility`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshkit.contracts.avro import compatibility_mode, envelope_schema
from pipelines.serde.avro import AvroEventDecoder, AvroProducer, Framing
from pipelines.serde.registry import SchemaRegistry, registry_from, subject_of

if TYPE_CHECKING:
    from meshkit.config import Settings
    from meshkit.contracts.model import Contract
    from pipelines.transports.base import EventTransport


def framing_of(settings: Settings) -> Framing:
    """Event Hubs over AMQP carries the Azure Schema Registry format; Kafka and the local log Confluent's."""
    return "azure" if settings.bus == "eventhubs" else "confluent"


def avro_producer(
    contract: Contract,
    transport: EventTransport,
    settings: Settings,
    topic: str,
    registry: SchemaRegistry | None = None,
) -> AvroProducer:
    """The relay's transport for `bus_format: avro`; sets the subject's mode where the registry takes it
    (local and Confluent; Azure sets compatibility on the schema group, outside the data plane)."""
    registry = registry or registry_from(settings)
    subject = subject_of(topic)
    set_mode = getattr(registry, "set_mode", None)
    if callable(set_mode):
        set_mode(subject, compatibility_mode(contract))
    return AvroProducer(transport, registry, subject, envelope_schema(contract), framing=framing_of(settings))


def avro_decoder(contract: Contract, settings: Settings, registry: SchemaRegistry | None = None) -> AvroEventDecoder:
    """The pipeline's decoder: any registered writer schema, read as the contract's current envelope,
    into the JSON document form the decoding seam (`pipelines.events.parse_envelope`) reads."""
    return AvroEventDecoder(registry or registry_from(settings), envelope_schema(contract))
