"""The Kafka surface of Event Hubs (or any Kafka broker) as an `EventTransport`, over librdkafka.

Keys map to partitions with librdkafka's `murmur2_random`, the Java client's partitioner, so every
process (and any Java producer) puts a key in the same partition. Offsets are Kafka offsets; they may
have gaps (transaction markers, compaction), which readers skip. Consumer-group offsets are committed
synchronously through the group coordinator, without joining the group (no rebalances).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from meshkit.errors import ConfigError, TerminalError, TransientError
from meshkit.secrets import EVENTHUBS_CONNECTION_STRING_ENV
from pipelines.transports.base import EventRecord

# Microsoft's recommended client settings for Event Hubs' Kafka surface (learn.microsoft.com,
# "Recommended configurations for Apache Kafka clients"); harmless against a plain broker.
EVENTHUBS_CLIENT_SETTINGS: dict[str, Any] = {
    "metadata.max.age.ms": 180_000,  # < 240 s: pick up metadata changes before Azure drops idle state
    "connections.max.idle.ms": 180_000,  # Azure closes TCP connections idle > 240 s; close them first
    "socket.keepalive.enable": True,  # keep long-lived connections through Azure's load balancers
    "message.max.bytes": 1_000_000,  # the service closes connections on requests > 1,046,528 bytes
}
PRODUCER_SETTINGS: dict[str, Any] = {
    "partitioner": "murmur2_random",  # Java-compatible: same key -> same partition in every client
    "enable.idempotence": True,  # librdkafka's own retries neither duplicate nor reorder a partition
    "request.timeout.ms": 60_000,  # Event Hubs applies >= 20 s internally; 60 s is Microsoft's advice
    "linger.ms": 5,
    "retry.backoff.ms": 200,
}
CONSUMER_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,  # the runner commits after the sinks have written
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "allow.auto.create.topics": False,  # a typo must not create an empty topic
    "session.timeout.ms": 30_000,  # Microsoft's advice for Event Hubs (Tansu tests use 6,000)
    "heartbeat.interval.ms": 3_000,
    "max.poll.interval.ms": 300_000,
}
DEFAULT_TIMEOUT_S = 30.0
_PRODUCER_ONLY = {*PRODUCER_SETTINGS, "message.timeout.ms", "delivery.timeout.ms"}
_CLIENT_ONLY = {*PRODUCER_SETTINGS, *CONSUMER_SETTINGS, "message.timeout.ms", "delivery.timeout.ms"}
_READER_GROUP = "meshkit-reader"  # readers assign partitions and never commit under this name


class AzureTokenCallback:
    """librdkafka `oauth_cb` for OAUTHBEARER: an Azure AD token for `https://<namespace>/.default`."""

    def __init__(self, namespace: str) -> None:
        self.scope = f"https://{namespace}/.default"
        self._credential: Any = None

    def __call__(self, _config: str) -> tuple[str, float]:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        token = self._credential.get_token(self.scope)
        return token.token, float(token.expires_on)


def kafka_config(
    bootstrap: str | None,
    security: str = "plaintext",
    *,
    namespace: str | None = None,
    profile: str = "local",
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """librdkafka settings shared by producer, consumers and admin client.

    - `plaintext`: a local broker (Tansu in the emulator tests), no authentication.
    - `eventhubs`: SASL_SSL as Event Hubs requires, plus `EVENTHUBS_CLIENT_SETTINGS`. Outside the cloud
      profile: SASL PLAIN with user `$ConnectionString` and the connection string from
      `MESHKIT_EVENTHUBS_CONNECTION_STRING` as password (emulators and tests only). In the cloud profile:
      OAUTHBEARER with an Azure AD token (managed / workload identity) for `https://<namespace>/.default`.
    `bootstrap` defaults to `<namespace>:9093` for Event Hubs. `overrides` are extra librdkafka settings
    (never secrets: keys naming a password or token are refused).
    """
    if security not in {"plaintext", "eventhubs"}:
        raise ConfigError(f"invalid kafka_security {security!r}", hint="Valid values are: plaintext, eventhubs.")
    if not bootstrap and security == "eventhubs" and namespace:
        bootstrap = f"{namespace}:9093"
    if not bootstrap:
        raise ConfigError(
            "setting 'kafka_bootstrap' is not set (bus 'kafka')",
            hint="Set MESHKIT_KAFKA_BOOTSTRAP (host:port), or for Event Hubs set 'eventhubs_namespace' "
            "(<namespace>.servicebus.windows.net) and kafka_security: eventhubs.",
        )
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "client.id": "meshkit"}
    if security == "eventhubs":
        config.update(EVENTHUBS_CLIENT_SETTINGS)
        config["security.protocol"] = "SASL_SSL"
        if profile == "cloud":
            if not namespace:
                raise ConfigError(
                    "setting 'eventhubs_namespace' is not set (kafka_security 'eventhubs', profile 'cloud')",
                    hint="Set it to the fully qualified namespace, e.g. `mesh.servicebus.windows.net`; the "
                    "token scope is derived from it.",
                )
            if EVENTHUBS_CONNECTION_STRING_ENV in os.environ:
                raise ConfigError(
                    f"{EVENTHUBS_CONNECTION_STRING_ENV} is set but the profile is 'cloud'",
                    hint="The cloud profile authenticates to Event Hubs with Azure AD (managed identity or "
                    f"workload identity); unset {EVENTHUBS_CONNECTION_STRING_ENV} and grant the identity "
                    "'Azure Event Hubs Data Sender/Receiver' instead.",
                )
            config["sasl.mechanism"] = "OAUTHBEARER"
            config["oauth_cb"] = AzureTokenCallback(namespace)
        else:
            secret = os.environ.get(EVENTHUBS_CONNECTION_STRING_ENV)
            if not secret:
                raise ConfigError(
                    f"{EVENTHUBS_CONNECTION_STRING_ENV} is not set (kafka_security 'eventhubs', profile {profile!r})",
                    hint="Export the namespace's connection string (Endpoint=sb://...;SharedAccessKeyName=...;"
                    "SharedAccessKey=...) from your secret store; it is never read from meshkit.yaml.",
                )
            config.update({"sasl.mechanism": "PLAIN", "sasl.username": "$ConnectionString", "sasl.password": secret})
    for key, value in (overrides or {}).items():
        if any(word in key for word in ("password", "secret", "token", "oauth", "sasl.username")):
            raise ConfigError(
                f"librdkafka setting {key!r} cannot be passed as an option",
                hint="Credentials come from the environment or Azure AD, never from options or files.",
            )
        config[key] = value
    return config


def _error_of(exc: KafkaException) -> KafkaError | None:
    err = exc.args[0] if exc.args else None
    return err if isinstance(err, KafkaError) else None


class KafkaTransport:
    """One topic on a Kafka broker; implements `EventTransport`.

    `publish` waits for every delivery ack. Failed deliveries are re-sent up to `publish_attempts`
    times with exponential backoff (re-sending every later record of a failed key too, so per-key order
    holds; at-least-once: a re-send can duplicate, which the pipeline de-duplicates by LSN). Reads
    raise `TransientError` when a partition makes no progress for `stall_seconds`.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        partitions: int,
        *,
        create: bool = True,
        publish_attempts: int = 3,
        stall_seconds: float = DEFAULT_TIMEOUT_S,
        timeout_seconds: float = DEFAULT_TIMEOUT_S,
        probe_end_offsets: bool = False,
    ) -> None:
        if partitions < 1 or publish_attempts < 1:
            raise ConfigError(f"topic {topic!r}: partitions ({partitions}) and publish_attempts must be positive")
        self.topic, self.partitions = topic, partitions
        self._config = dict(config)
        self._attempts, self._stall_s, self._timeout_s = publish_attempts, stall_seconds, timeout_seconds
        self._producer: Producer | None = None
        self._groups: dict[str, Consumer] = {}
        self._readers: dict[int, tuple[Consumer, int]] = {}  # partition -> (consumer, its next offset)
        self._meta: Consumer | None = None
        self._probe = probe_end_offsets
        self._probed: dict[int, tuple[int, int]] = {}  # partition -> (reported high watermark, true end)
        self._ensure_topic(create)

    def __enter__(self) -> KafkaTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- topic -----------------------------------------------------------------------------------
    def _ensure_topic(self, create: bool) -> None:
        admin = AdminClient({k: v for k, v in self._config.items() if k not in _CLIENT_ONLY})
        # list all topics: asking for one by name makes some brokers auto-create it
        existing = self._partition_count(admin)
        if existing is None and create:
            future = admin.create_topics([NewTopic(self.topic, num_partitions=self.partitions)])[self.topic]
            try:
                future.result(timeout=self._timeout_s)
            except KafkaException as exc:
                err = _error_of(exc)
                if err is None or err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ConfigError(
                        f"cannot create topic {self.topic!r} on {self._config['bootstrap.servers']}: {exc}",
                        hint="Create the topic (event hub) with the platform's Terraform, with "
                        f"{self.partitions} partitions, or grant the client the right to create topics.",
                    ) from exc
            existing = self._partition_count(admin)
        if existing is None:
            raise ConfigError(
                f"topic {self.topic!r} does not exist on {self._config['bootstrap.servers']}",
                hint=f"Create it (event hub) with {self.partitions} partitions, or open the transport with "
                "create=True.",
            )
        if existing != self.partitions:
            raise ConfigError(
                f"topic {self.topic!r} has {existing} partitions, but was opened with {self.partitions}",
                hint="Open it with the topic's partition count (setting 'eventlog_partitions'), or use a new "
                "topic: a different count would move keys to other partitions and break per-key order.",
            )

    def _partition_count(self, admin: AdminClient) -> int | None:
        try:
            metadata = admin.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            raise TransientError(
                f"cannot reach the Kafka broker at {self._config['bootstrap.servers']} (topic {self.topic!r}): {exc}",
                hint="Check kafka_bootstrap, the network and the credentials, then retry.",
            ) from exc
        found = metadata.topics.get(self.topic)
        return None if found is None or found.error is not None else len(found.partitions)

    # -- publish ---------------------------------------------------------------------------------
    def publish(self, records: Iterable[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, int]]:
        """Send records and wait for their acks; `(partition, offset)` per record in input order."""
        items = list(records)
        results: list[tuple[int, int] | None] = [None] * len(items)
        pending = list(range(len(items)))
        for attempt in range(self._attempts):
            failures = self._send(items, pending, results)
            if not failures:
                break
            fatal = [err for _, err in failures if not _retriable(err)]
            if fatal:
                raise TerminalError(
                    f"topic {self.topic!r}: {len(failures)} of {len(pending)} events were refused: {fatal[0].str()}",
                    hint="Retrying cannot help (e.g. an event larger than the 1 MB limit); fix the events.",
                )
            if attempt + 1 == self._attempts:
                raise TransientError(
                    f"topic {self.topic!r}: {len(failures)} of {len(pending)} events were not delivered after "
                    f"{self._attempts} attempts: {failures[0][1].str()}",
                    hint="The broker is unreachable or throttling; nothing is lost upstream, publish again later.",
                )
            failed_keys = {items[i][0] for i, _ in failures}
            first = min(i for i, _ in failures)
            pending = [i for i in pending if i >= first and items[i][0] in failed_keys]
            time.sleep(min(0.5 * 2**attempt, 10.0))
        delivered = [r for r in results if r is not None]
        if len(delivered) != len(items):
            raise TransientError(f"topic {self.topic!r}: {len(items) - len(delivered)} events got no delivery report")
        return delivered

    def _send(
        self, items: list[tuple[str, bytes, dict[str, str]]], indices: list[int], results: list[tuple[int, int] | None]
    ) -> list[tuple[int, KafkaError]]:
        producer = self._producer_or_new()
        failures: list[tuple[int, KafkaError]] = []

        def on_delivery(index: int) -> Callable[[KafkaError | None, Message], None]:
            def report(err: KafkaError | None, msg: Message) -> None:
                if err is None:
                    results[index] = (int(msg.partition() or 0), _offset(msg))
                else:
                    failures.append((index, err))

            return report

        for count, index in enumerate(indices, 1):
            key, body, properties = items[index]
            headers: list[tuple[str, str | bytes | None]] = [(k, v.encode("utf-8")) for k, v in properties.items()]
            while True:
                try:
                    producer.produce(
                        self.topic, body, key.encode("utf-8"), headers=headers, on_delivery=on_delivery(index)
                    )
                    break
                except BufferError:
                    producer.poll(0.05)  # local queue full: let acks drain it
                except KafkaException as exc:  # a fatal producer error: a fresh producer may succeed
                    self._producer = None
                    raise TransientError(f"topic {self.topic!r}: the producer failed: {exc}") from exc
            if count % 1000 == 0:
                producer.poll(0)
        left = producer.flush(float(self._config.get("message.timeout.ms", 300_000)) / 1000 + self._timeout_s)
        if left:
            producer.purge()
            producer.flush(0)  # delivers the purge errors to the callbacks above
        if failures:
            # after timed-out sends an idempotent producer may be fenced; retry with a fresh one
            self._producer = None
        failures.sort()
        return failures

    def _producer_or_new(self) -> Producer:
        if self._producer is None:
            shared = {k: v for k, v in self._config.items() if k not in CONSUMER_SETTINGS}
            self._producer = Producer({**shared, **PRODUCER_SETTINGS, **self._overrides(PRODUCER_SETTINGS)})
        return self._producer

    def _overrides(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in self._config.items() if k in defaults}

    # -- read ------------------------------------------------------------------------------------
    def _consumer(self, group: str) -> Consumer:
        return Consumer(
            {
                **{k: v for k, v in self._config.items() if k not in _PRODUCER_ONLY},
                **CONSUMER_SETTINGS,
                **self._overrides(CONSUMER_SETTINGS),
                "group.id": group,
            }
        )

    def end_offsets(self) -> dict[int, int]:
        """High watermarks: the next offset to be written, per partition."""
        if self._meta is None:
            self._meta = self._consumer(_READER_GROUP)
        ends: dict[int, int] = {}
        for partition in range(self.partitions):
            try:
                _, high = self._meta.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=self._timeout_s
                )
            except KafkaException as exc:
                raise TransientError(f"topic {self.topic!r}: cannot read end offsets: {exc}") from exc
            ends[partition] = self._probed_end(partition, int(high)) if self._probe and high > 0 else int(high)
        return ends

    def _probed_end(self, partition: int, high: int) -> int:
        """The true end when a broker reports the last batch's base offset + 1 as high watermark (Tansu
        0.6 does): fetch from `high - 1` and take the last offset that comes back, plus one. A new batch
        moves the reported value, so an unchanged one needs no new probe."""
        assert self._meta is not None
        reported, end = self._probed.get(partition, (-1, 0))
        if reported == high:
            return end
        self._meta.assign([TopicPartition(self.topic, partition, high - 1)])
        last, fetched, deadline = high - 1, False, time.monotonic() + min(self._timeout_s, 5.0)
        while time.monotonic() < deadline:
            offsets = [_offset(m) for m in self._meta.consume(1000, timeout=0.1) if m.error() is None]
            if offsets:
                fetched, last = True, max(last, *offsets)
            elif fetched:
                break
        self._meta.unassign()
        self._probed[partition] = (high, last + 1)
        return last + 1

    def read(self, partition: int, start: int, end: int, max_batch: int = 5000) -> Iterator[list[EventRecord]]:
        """Events with offsets in `[start, end)`, in order; offsets missing from the log are skipped."""
        self._check_partition(partition)
        if not 0 <= start <= end or max_batch < 1:
            raise ValueError(
                f"topic {self.topic!r} partition {partition}: cannot read [{start}, {end}) with max_batch={max_batch}"
            )
        if start == end:
            return
        consumer, position = self._readers.get(partition, (None, -1))
        if consumer is None:
            consumer = self._consumer(_READER_GROUP)
        if position != start:
            consumer.assign([TopicPartition(self.topic, partition, start)])
        self._readers[partition] = (consumer, start)
        progress = time.monotonic()
        while start < end:
            messages = consumer.consume(max_batch, timeout=0.2)
            batch: list[EventRecord] = []
            for msg in messages:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise TransientError(f"topic {self.topic!r} partition {partition}: read failed: {err.str()}")
                offset = _offset(msg)
                start = max(start, offset + 1)
                if offset < end:
                    batch.append(_record(msg))
            self._readers[partition] = (consumer, start)
            if batch:
                progress = time.monotonic()
                yield batch
                continue
            if start < end and not messages:
                # a gap (transaction marker) at the tail leaves nothing to fetch: the position says so
                (pos,) = consumer.position([TopicPartition(self.topic, partition)])
                if pos.offset >= end:
                    break
                if time.monotonic() - progress > self._stall_s:
                    raise TransientError(
                        f"topic {self.topic!r} partition {partition}: no events for {self._stall_s:.0f} s "
                        f"while offsets [{start}, {end}) are expected",
                        hint="The broker or the consumer stalled; reopen the transport and read again.",
                    )

    # -- consumer groups ------------------------------------------------------------------------
    def _group(self, group: str) -> Consumer:
        if group not in self._groups:
            self._groups[group] = self._consumer(group)
        return self._groups[group]

    def committed(self, group: str) -> dict[int, int]:
        """The group's next offset per partition; 0 where it never committed."""
        wanted = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        try:
            found = self._group(group).committed(wanted, timeout=self._timeout_s)
        except KafkaException as exc:
            raise TransientError(f"topic {self.topic!r} group {group!r}: cannot read committed offsets: {exc}") from exc
        return {tp.partition: max(tp.offset, 0) for tp in found}

    def commit(self, group: str, offsets: Mapping[int, int]) -> None:
        """Commit `offsets` for `group` synchronously; raises if the coordinator refuses any."""
        ends = self.end_offsets()
        for partition, offset in offsets.items():
            self._check_partition(partition)
            if not 0 <= offset <= ends[partition]:
                raise ValueError(
                    f"topic {self.topic!r} group {group!r}: cannot commit offset {offset} for partition "
                    f"{partition}; valid offsets are 0..{ends[partition]}"
                )
        if not offsets:
            return
        tps = [TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())]
        try:
            result = self._group(group).commit(offsets=tps, asynchronous=False) or []
        except KafkaException as exc:
            raise TransientError(f"topic {self.topic!r} group {group!r}: commit failed: {exc}") from exc
        refused = [tp for tp in result if tp.error is not None]
        if refused:
            raise TransientError(f"topic {self.topic!r} group {group!r}: commit refused: {refused[0].error}")

    def close(self) -> None:
        """Flush pending sends and close every client."""
        if self._producer is not None:
            self._producer.flush(self._timeout_s)
            self._producer = None
        for consumer in [*self._groups.values(), *(c for c, _ in self._readers.values())]:
            consumer.close()
        if self._meta is not None:
            self._meta.close()
        self._groups.clear()
        self._readers.clear()
        self._meta = None

    def _check_partition(self, partition: int) -> None:
        if not 0 <= partition < self.partitions:
            raise ValueError(f"topic {self.topic!r} has partitions 0..{self.partitions - 1}; got partition {partition}")


def _retriable(err: KafkaError) -> bool:
    return bool(err.retriable()) or err.code() in {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
    }


def _offset(msg: Message) -> int:
    offset = msg.offset()
    if offset is None:
        raise TransientError(f"a message of topic {msg.topic()!r} came back without an offset")
    return int(offset)


def _record(msg: Message) -> EventRecord:
    key = msg.key()
    raw = msg.headers() or []
    headers = raw.items() if isinstance(raw, dict) else raw
    _, timestamp_ms = msg.timestamp()  # enqueued time (LogAppendTime on Event Hubs) in epoch ms
    return EventRecord(
        partition=int(msg.partition() or 0),
        offset=_offset(msg),
        key=key.decode("utf-8") if isinstance(key, bytes) else (key or ""),
        timestamp_ms=int(timestamp_ms),
        properties={k: v.decode("utf-8") if isinstance(v, bytes) else (v or "") for k, v in headers},
        body=msg.value() or b"",
    )
