"""Choose and open the event bus from configuration (`settings.bus`), by a spec Beam can pickle.

A `TransportSpec` names the kind, topic and partition count plus non-secret options; workers open the
transport from it, reading any credential from the environment (or Azure AD) at that moment, so no
secret travels in a pickled pipeline. Backends are imported lazily: only the chosen one is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from meshkit.config import Settings
from meshkit.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.transports.base import EventTransport

TransportKind = Literal["local", "kafka", "eventhubs"]
KINDS: tuple[TransportKind, ...] = ("local", "kafka", "eventhubs")
KAFKA_OPTION_PREFIX = "kafka."  # options `kafka.<librdkafka key>` pass through to the client
_SECRET_NAMES = ("password", "secret", "token", "connection_string", "sasl.", "oauth")
_SECRET_VALUES = ("sharedaccesskey=", "accountkey=", "password=")


@dataclass(frozen=True)
class TransportSpec:
    """What to open on a worker: kind, topic, partitions and non-secret `(name, value)` options."""

    kind: TransportKind
    topic: str
    partitions: int
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown transport kind {self.kind!r}", hint=f"Valid values are: {', '.join(KINDS)}.")
        for name, value in self.options:
            if any(w in name.lower() for w in _SECRET_NAMES) or any(w in value.lower() for w in _SECRET_VALUES):
                raise ConfigError(
                    f"transport option {name!r} looks like a credential",
                    hint="Secrets are read from the environment when the transport opens; never put them in a spec.",
                )

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)


def transport_spec(settings: Settings, topic: str) -> TransportSpec:
    """The spec of `topic` on the configured bus (`settings.bus`)."""
    partitions = settings.eventlog_partitions
    options: dict[str, str] = {"profile": settings.profile}
    if settings.bus == "local":
        options = {"root": str(settings.eventlog_dir)}
    elif settings.bus == "kafka":
        if settings.kafka_bootstrap:
            options["bootstrap"] = settings.kafka_bootstrap
        options["security"] = settings.kafka_security
        if settings.kafka_probe_end_offsets:
            options["probe_end_offsets"] = "true"
        if settings.kafka_security == "eventhubs":  # Event Hubs' Kafka surface cannot create topics
            options["create"] = "false"  # the hub comes from Terraform (terraform/modules/azure-platform)
        if settings.eventhubs_namespace:
            options["namespace"] = settings.eventhubs_namespace
    else:  # AMQP: Event Hubs keeps no consumer offsets for these clients; they live beside the relay's checkpoints
        options["checkpoint_root"] = str(settings.checkpoint_dir)
        options["checkpoint_store"] = settings.checkpoint_store
        options["checkpoint_container"] = settings.checkpoint_container
        if settings.blob_account_url:
            options["blob_account_url"] = settings.blob_account_url
        # the consumer group terraform/modules/azure-platform creates for the product's pipeline
        options["consumer_group"] = f"{topic.replace('.', '-')}-pipeline"
        if settings.eventhubs_namespace:
            options["namespace"] = settings.eventhubs_namespace
    return TransportSpec(settings.bus, topic, partitions, tuple(sorted(options.items())))


def open_transport(spec: TransportSpec) -> EventTransport:
    """Open the transport a spec names (a new connection; the caller closes it)."""
    if spec.kind == "local":
        from pipelines.transports.local_log import LocalEventLog

        root = spec.option("root")
        if root is None:
            raise ConfigError(f"local transport spec for {spec.topic!r} has no 'root' option")
        return LocalEventLog(Path(root), spec.topic, spec.partitions)
    if spec.kind == "kafka":
        from pipelines.transports.kafka import KafkaTransport, kafka_config

        overrides = {
            k.removeprefix(KAFKA_OPTION_PREFIX): v for k, v in spec.options if k.startswith(KAFKA_OPTION_PREFIX)
        }
        config = kafka_config(
            spec.option("bootstrap"),
            spec.option("security", "plaintext") or "plaintext",
            namespace=spec.option("namespace"),
            profile=spec.option("profile", "local") or "local",
            overrides=overrides,
        )
        return KafkaTransport(
            config,
            spec.topic,
            spec.partitions,
            create=spec.option("create", "true") == "true",
            publish_attempts=int(spec.option("publish_attempts", "3") or 3),
            stall_seconds=float(spec.option("stall_seconds", "30") or 30),
            probe_end_offsets=spec.option("probe_end_offsets") == "true",
        )
    from pipelines.transports.eventhubs import open_eventhubs  # type: ignore[import-not-found,unused-ignore]

    transport: EventTransport = open_eventhubs(spec)
    return transport
