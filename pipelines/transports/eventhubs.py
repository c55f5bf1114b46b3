"""Event Hubs over AMQP (azure-eventhub) as an `EventTransport`.

Publishing: records are grouped by key, in input order per key, into `EventDataBatch`es made by the SDK's
`create_batch(partition_key=key)`, so the size limit is the link's max message size as the service
announced it and the service puts every event of a key in the same partition. `publish` returns only
after the service has settled (accepted) every batch; that is the relay's contract: advance the source
checkpoint after `publish` returns, never before. Throttling (`server-busy`, `resource-limit-exceeded`)
and transient connection errors are retried with exponential backoff; a rejected batch was not stored,
so re-sending it neither loses nor duplicates events. A batch whose acknowledgement is lost on the way
(connection drop after the service stored it) is sent again: delivery is at-least-once, and the pipeline
de-duplicates per key by LSN.

Event Hubs does not return sequence numbers on send, so `publish` returns `(partition, -1)` per record:
the partition is computed with the partition-key hash the SDK's buffered producer uses to mirror the
service's assignment, and -1 says "offset unknown". An empty key means "no key": the service spreads such
events round-robin and `publish` returns `(-1, -1)` for them.

Reading uses sequence numbers as offsets (contiguous per partition). Event Hubs keeps no consumer-group
offsets for AMQP clients, so `committed`/`commit` go through a `StoreOffsets`-like document store.
Authentication: Azure AD (`DefaultAzureCredential`: managed or workload identity) with the namespace in the
cloud profile; a connection string (from `MESHKIT_EVENTHUBS_CONNECTION_STRING`) only for emulators.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from azure.eventhub import EventData, EventDataBatch, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._buffered_producer._partition_resolver import generate_hash_code
from azure.eventhub.exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    EventHubError,
    OperationTimeoutError,
)

from meshkit.config import Settings
from meshkit.errors import ConfigError, TerminalError, TransientError
from meshkit.secrets import EVENTHUBS_CONNECTION_STRING_ENV, emulator_secret
from pipelines.transports.base import EventRecord

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from pipelines.checkpoints.store import DocumentStore
    from pipelines.transports.factory import TransportSpec

T = TypeVar("T")
DEFAULT_CONSUMER_GROUP = "$Default"
# Conditions (after the `amqp:` / `com.microsoft:` prefix) that mean "slow down and send again": the
# service did not store the batch.
_THROTTLED = {"server-busy", "resource-limit-exceeded"}
_TRANSIENT_TYPES = (ConnectError, ConnectionLostError, OperationTimeoutError)
_AUTH_HINT = (
    "In the cloud profile set 'eventhubs_namespace' (<namespace>.servicebus.windows.net) and grant the "
    "managed or workload identity 'Azure Event Hubs Data Sender/Receiver'; for emulators export "
    f"{EVENTHUBS_CONNECTION_STRING_ENV}."
)


class EventHubsThrottledError(TransientError):
    """The service refused a send for lack of capacity (`server-busy`, `resource-limit-exceeded`)."""


class ConsumerOffsets(Protocol):
    """What `pipelines.checkpoints.offsets.StoreOffsets` provides."""

    def committed(self, group: str) -> dict[int, int]: ...

    def commit(self, group: str, offsets: Mapping[int, int]) -> None: ...


def partition_for_key(key: str, partitions: int) -> int:
    """The partition Event Hubs assigns to `key` (the SDK's mirror of the service hash); -1 for no key."""
    if not key:
        return -1
    return abs(generate_hash_code(key) % partitions)


class EventHubsTransport:
    """One event hub over AMQP; implements `EventTransport`. Clients open lazily and are closed by `close`."""

    def __init__(
        self,
        *,
        hub: str,
        partitions: int,
        offsets: ConsumerOffsets,
        connection_string: str | None = None,
        namespace: str | None = None,
        credential: TokenCredential | None = None,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        consumer_group: str = DEFAULT_CONSUMER_GROUP,
        stall_seconds: float = 60.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if partitions < 1 or max_retries < 0:
            raise ConfigError(f"event hub {hub!r}: partitions ({partitions}) must be positive, max_retries >= 0")
        if connection_string is None and not namespace:
            raise ConfigError(f"event hub {hub!r}: no namespace and no connection string", hint=_AUTH_HINT)
        self.hub = hub
        self.partitions = partitions
        self.offsets = offsets
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.consumer_group = consumer_group
        self.stall_seconds = stall_seconds
        self._connection_string = connection_string
        self._namespace = namespace
        self._credential = credential
        self._client_options = dict(client_options or {})  # extra SDK keywords, e.g. transport_type, use_tls
        self._producer: EventHubProducerClient | None = None
        self._checked = False

    # -- clients ------------------------------------------------------------------------------------

    def _client_kwargs(self) -> dict[str, Any]:
        # The SDK retries connection-level errors itself; a rejected send (throttling) comes back as
        # EventDataSendError without retry, and `_retrying` retries that.
        options = {"eventhub_name": self.hub, "retry_total": self.max_retries, "retry_backoff_factor": 0.2}
        return {**options, **self._client_options}

    def _credential_or_default(self) -> TokenCredential:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        return self._credential

    def _new_producer(self) -> EventHubProducerClient:
        if self._connection_string is not None:
            return EventHubProducerClient.from_connection_string(self._connection_string, **self._client_kwargs())
        return EventHubProducerClient(
            fully_qualified_namespace=str(self._namespace),
            credential=self._credential_or_default(),
            **self._client_kwargs(),
        )

    def _new_consumer(self, prefetch: int) -> EventHubConsumerClient:
        kwargs = {**self._client_kwargs(), "consumer_group": self.consumer_group, "prefetch": prefetch}
        if self._connection_string is not None:
            return EventHubConsumerClient.from_connection_string(self._connection_string, **kwargs)
        return EventHubConsumerClient(
            fully_qualified_namespace=str(self._namespace), credential=self._credential_or_default(), **kwargs
        )

    @property
    def producer(self) -> EventHubProducerClient:
        if self._producer is None:
            self._producer = self._new_producer()
        return self._producer

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def __enter__(self) -> EventHubsTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- errors and retries -------------------------------------------------------------------------

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """Run `call`, retrying throttling with exponential backoff and jitter; map errors to meshkit's.

        Only throttling is retried here: the service rejected the whole batch, so sending it again can
        neither lose nor duplicate. Connection errors and timeouts were already retried by the SDK
        (`retry_total`); retrying them again here would multiply the attempts.
        """
        for attempt in range(self.max_retries + 1):
            try:
                return call()
            except Exception as exc:
                error = self._classify(what, exc)
                if not isinstance(error, EventHubsThrottledError) or attempt == self.max_retries:
                    raise error from exc
            delay = min(self.backoff_s * 2**attempt, 30.0)
            time.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not cryptography
        raise AssertionError("unreachable")  # pragma: no cover

    def _classify(self, what: str, exc: Exception) -> Exception:
        from azure.core.exceptions import ClientAuthenticationError

        where = f"event hub {self.hub!r}: {what}"
        if isinstance(exc, AuthenticationError | ClientAuthenticationError):
            # The SDK's message names the endpoint, never the key; ours names the setting.
            return ConfigError(f"{where}: authentication failed ({type(exc).__name__})", hint=_AUTH_HINT)
        if isinstance(exc, EventHubError) and (exc.error or "") in _THROTTLED:
            return EventHubsThrottledError(
                f"{where}: throttled by the service ({exc.error}) after {self.max_retries} retries",
                hint="The namespace is over its throughput units or partition limits; nothing was stored, "
                "publish again later or raise the namespace's capacity.",
            )
        if isinstance(exc, _TRANSIENT_TYPES):
            return TransientError(
                f"{where}: {type(exc).__name__}: {exc.message}",
                hint="The namespace was unreachable or slow (the SDK already retried); retry later, and check "
                "the network and the namespace.",
            )
        if isinstance(exc, EventHubError):
            return TerminalError(f"{where}: {type(exc).__name__}: {exc.message}")
        return exc

    # -- EventTransport -----------------------------------------------------------------------------

    def _check_partitions(self) -> None:
        if self._checked:
            return
        ids = self._retrying("read event hub properties", self.producer.get_partition_ids)
        if len(ids) != self.partitions:
            raise ConfigError(
                f"event hub {self.hub!r} has {len(ids)} partitions, but the transport was opened with "
                f"{self.partitions}",
                hint="Set 'eventlog_partitions' to the hub's partition count (Terraform creates the hub from it).",
            )
        self._checked = True

    def publish(self, records: Iterable[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, int]]:
        """Send records batched per key, in order per key; return after the service accepted them all."""
        self._check_partitions()
        items = list(records)
        by_key: dict[str, list[int]] = {}
        for index, (key, _body, _properties) in enumerate(items):
            by_key.setdefault(key, []).append(index)
        result: list[tuple[int, int]] = [(-1, -1)] * len(items)
        for key, indices in by_key.items():
            self._publish_key(key, [items[i] for i in indices])
            partition = partition_for_key(key, self.partitions)
            for index in indices:
                result[index] = (partition, -1)
        return result

    def _publish_key(self, key: str, items: list[tuple[str, bytes, dict[str, str]]]) -> None:
        batch = self._new_batch(key)
        for _key, body, properties in items:
            event = EventData(body)
            event.properties = dict(properties)  # type: ignore[assignment]
            try:
                batch.add(event)
                continue
            except ValueError:
                if len(batch) == 0:
                    raise TerminalError(
                        f"event hub {self.hub!r}: an event of key {key!r} ({len(body)} bytes) is larger than the "
                        f"link's max message size ({batch.max_size_in_bytes} bytes)",
                        hint="Event Hubs cannot store it; shrink the document or store it elsewhere and send a "
                        "reference.",
                    ) from None
            self._send(batch)
            batch = self._new_batch(key)
            batch.add(event)
        if len(batch):
            self._send(batch)

    def _new_batch(self, key: str) -> EventDataBatch:
        return self._retrying("open the producer link", lambda: self.producer.create_batch(partition_key=key or None))

    def _send(self, batch: EventDataBatch) -> None:
        self._retrying("send a batch", lambda: self.producer.send_batch(batch))

    def end_offsets(self) -> dict[int, int]:
        """Per partition, the last enqueued sequence number + 1 (0 for a partition never written)."""
        self._check_partitions()
        ends: dict[int, int] = {}
        for partition in range(self.partitions):
            props = self._retrying(
                f"read partition {partition} properties",
                lambda p=partition: self.producer.get_partition_properties(str(p)),  # type: ignore[misc]
            )
            ends[partition] = int(props["last_enqueued_sequence_number"]) + 1
        return ends

    def read(self, partition: int, start: int, end: int, max_batch: int = 5000) -> Iterator[list[EventRecord]]:
        """Events with sequence numbers in `[start, end)`, received from `start` (inclusive)."""
        self._check_partition(partition)
        if not 0 <= start <= end or max_batch < 1:
            raise ValueError(
                f"event hub {self.hub!r} partition {partition}: cannot read [{start}, {end}) with max_batch={max_batch}"
            )
        if start == end:
            return
        yield from _PartitionReader(self, partition, start, end, max_batch).batches()

    def committed(self, group: str) -> dict[int, int]:
        stored = self.offsets.committed(group)
        return {partition: int(stored.get(partition, 0)) for partition in range(self.partitions)}

    def commit(self, group: str, offsets: Mapping[int, int]) -> None:
        for partition, offset in offsets.items():
            self._check_partition(partition)
            if offset < 0:
                raise ValueError(f"event hub {self.hub!r} group {group!r}: offset {offset} is negative")
        self.offsets.commit(group, offsets)

    def _check_partition(self, partition: int) -> None:
        if not 0 <= partition < self.partitions:
            raise ValueError(f"event hub {self.hub!r} has partitions 0..{self.partitions - 1}; got {partition}")


class _PartitionReader:
    """`receive_batch` on one partition in a background thread, handed over through a queue; the
    consumer client is closed (which ends `receive_batch`) as soon as the range is read or the reader
    is abandoned."""

    def __init__(self, transport: EventHubsTransport, partition: int, start: int, end: int, max_batch: int) -> None:
        self.transport = transport
        self.partition = partition
        self.start = start
        self.end = end
        self.max_batch = max_batch
        self.inbox: queue.Queue[list[Any] | Exception] = queue.Queue()

    def batches(self) -> Iterator[list[EventRecord]]:
        size = min(self.max_batch, 1000)
        client = self.transport._new_consumer(prefetch=max(size, 300))
        thread = threading.Thread(target=self._receive, args=(client, size), name="eventhubs-read", daemon=True)
        thread.start()
        expected = self.start
        try:
            while expected < self.end:
                try:
                    item = self.inbox.get(timeout=self.transport.stall_seconds)
                except queue.Empty:
                    raise TransientError(
                        f"event hub {self.transport.hub!r} partition {self.partition}: no event after sequence "
                        f"number {expected - 1} within {self.transport.stall_seconds:.0f} s (reading up to {self.end})",
                        hint="The namespace may be unreachable, or `end` is beyond what was published; retry later.",
                    ) from None
                if isinstance(item, Exception):
                    raise self.transport._classify(f"read partition {self.partition}", item) from item
                records = [_record(self.partition, event) for event in item]
                records = [r for r in records if expected <= r.offset < self.end]
                if records and records[0].offset != expected:
                    raise TerminalError(
                        f"event hub {self.transport.hub!r} partition {self.partition}: sequence numbers "
                        f"[{expected}, {records[0].offset}) are no longer retained",
                        hint="They passed the hub's retention period; replay them from the source.",
                    )
                for index in range(0, len(records), self.max_batch):
                    yield records[index : index + self.max_batch]
                if records:
                    expected = records[-1].offset + 1
        finally:
            client.close()
            thread.join(timeout=10)

    def _receive(self, client: EventHubConsumerClient, size: int) -> None:
        def on_batch(_context: Any, events: list[Any]) -> None:
            if events:
                self.inbox.put(events)

        def on_error(_context: Any, error: Exception) -> None:
            self.inbox.put(error)

        try:
            client.receive_batch(
                on_event_batch=on_batch,
                on_error=on_error,
                partition_id=str(self.partition),
                starting_position=self.start,  # a sequence number (int), not an offset string
                starting_position_inclusive=True,
                max_batch_size=size,
                max_wait_time=None,
            )
        except Exception as exc:  # handed to the reading thread, which raises it
            self.inbox.put(exc)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _record(partition: int, event: Any) -> EventRecord:
    key = event.partition_key
    return EventRecord(
        partition=partition,
        offset=int(event.sequence_number),
        key=_text(key) if key is not None else "",
        timestamp_ms=round(event.enqueued_time.timestamp() * 1000),
        properties={_text(k): _text(v) for k, v in (event.properties or {}).items()},
        body=b"".join(event.body),
    )


def _offset_store(spec: TransportSpec, profile: str, root: Path) -> DocumentStore:
    """Where consumer offsets live: the relay's checkpoint store (a folder, or Azure Blob)."""
    from pipelines.checkpoints.factory import open_store
    from pipelines.checkpoints.files import FileStore

    if spec.option("checkpoint_store", "file") != "blob":
        return FileStore(root)
    settings = Settings.model_construct(
        profile=profile,
        checkpoint_store="blob",
        blob_account_url=spec.option("blob_account_url"),
        checkpoint_container=spec.option("checkpoint_container", "meshkit-checkpoints") or "meshkit-checkpoints",
    )
    return open_store(settings, "consumers")


def open_eventhubs(spec: TransportSpec) -> EventHubsTransport:
    """Open the event hub a spec names. Options: `namespace` (cloud), `profile`, `checkpoint_root` (folder
    of consumer offsets), `consumer_group`; the emulator connection string comes from the environment."""
    from pipelines.checkpoints.files import document_key
    from pipelines.checkpoints.offsets import StoreOffsets

    profile = spec.option("profile", "local") or "local"
    root = spec.option("checkpoint_root")
    if root is None:
        raise ConfigError(
            f"event hub {spec.topic!r}: transport spec has no 'checkpoint_root' option",
            hint="Event Hubs keeps no consumer offsets for AMQP clients; give the folder (or mounted share) "
            "where they are kept.",
        )
    settings = Settings.model_construct(profile=profile)
    connection_string = emulator_secret(settings, EVENTHUBS_CONNECTION_STRING_ENV, "Event Hubs")
    namespace = spec.option("namespace")
    if profile == "cloud" and not namespace:
        raise ConfigError(f"setting 'eventhubs_namespace' is not set (event hub {spec.topic!r})", hint=_AUTH_HINT)
    offsets = StoreOffsets(_offset_store(spec, profile, Path(root)), prefix=f"eventhubs/{document_key(spec.topic)}/")
    return EventHubsTransport(
        hub=spec.topic,
        partitions=spec.partitions,
        offsets=offsets,
        connection_string=connection_string,
        namespace=namespace,
        consumer_group=spec.option("consumer_group", DEFAULT_CONSUMER_GROUP) or DEFAULT_CONSUMER_GROUP,
    )
