"""A local AMQP 1.0 endpoint that speaks enough Event Hubs for the real azure-eventhub client.

No Event Hubs emulator installs here without Docker, so this in-process endpoint stands in for one. It
speaks the real wire protocol on 127.0.0.1 (plain TCP; the client's `UseDevelopmentEmulator=true` turns
TLS off and then honours the port in `Endpoint=sb://127.0.0.1:<port>`): SASL (any mechanism and
credential), connection/session/link state, CBS `put-token` on `$cbs` (answered with `cbs_status`, 202
unless a test sets 401), `$management` READ of the event hub and of a partition, sender links to `<hub>`
and `<hub>/Partitions/<n>` (single messages and the SDK's batch format 0x80013700, multi-frame transfers,
partition chosen from the `x-opt-partition-key` annotation with the hash the SDK's buffered producer uses
to mirror the service), and receiver links on `<hub>/ConsumerGroups/<cg>/Partitions/<n>` honouring the
selector filter on sequence number, offset or enqueued time (`>` / `>=`) and link credit. Throttling is
injected with `throttle_next`, which rejects the next sends with `com.microsoft:server-busy`.
Not modelled: TLS, heartbeats (the SDK asks for none by default), the session's incoming window (the
SDK's is large and it re-opens it), epochs/owner levels, retention, more than one event hub.

Framing uses the client's own codec (`azure.eventhub._pyamqp._encode` / `_decode`) rather than
hand-written bytes or python-qpid-proton, for one reason: azure-eventhub 5.15.1's decoder indexes
performative fields by position and breaks on performatives whose trailing null fields are omitted
(AMQP 1.0 section 1.4 allows it, and proton does it): an Open or Attach raises IndexError, and a short
Transfer puts the payload in the `more` slot. The fix (Azure/azure-sdk-for-python#47660, "pad the decoded
field list") is merged but not released. The SDK's encoder always writes every field, so frames from this
endpoint never trigger that bug. The codec is private API; if it moves, this file fails at import.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from azure.eventhub._buffered_producer._partition_resolver import generate_hash_code
from azure.eventhub._pyamqp import endpoints
from azure.eventhub._pyamqp import performatives as perf
from azure.eventhub._pyamqp._decode import decode_frame, decode_payload
from azure.eventhub._pyamqp._encode import encode_frame, encode_payload
from azure.eventhub._pyamqp.error import AMQPError
from azure.eventhub._pyamqp.message import Message, Properties
from azure.eventhub._pyamqp.outcomes import Accepted, Rejected
from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes

SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
BATCH_FORMAT = 0x80013700
SERVER_BUSY = b"com.microsoft:server-busy"
_MAX_FRAME = 65536
_WINDOW = 1 << 20
_SELECTOR = b"apache.org:selector-filter:string"
_ANNOTATION_KEYS = (b"x-opt-sequence-number", b"x-opt-offset")
_SOURCE: Any = endpoints.Source  # namedtuples whose defaults mypy does not see
_TARGET: Any = endpoints.Target
(_OPEN, _BEGIN, _ATTACH, _FLOW, _TRANSFER, _DISPOSITION, _DETACH, _END, _CLOSE) = range(0x10, 0x19)


@dataclass
class StoredEvent:
    """One event as the endpoint keeps it: its annotations and the message the producer sent."""

    sequence: int
    offset: int
    enqueued_ms: int
    key: bytes | None
    message: Message


@dataclass
class _Link:
    name: bytes
    remote_handle: int
    handle: int
    client_is_receiver: bool
    address: str
    partition: int | None = None
    cursor: int = 0
    credit: int = 0
    delivery_count: int = 0
    partial: bytearray = field(default_factory=bytearray)
    first_transfer: list[Any] | None = None


@dataclass
class _Session:
    channel: int
    remote_channel: int
    next_incoming_id: int
    remote_incoming_window: int
    next_outgoing_id: int = 0
    links: dict[int, _Link] = field(default_factory=dict)  # by the client's handle
    replies: dict[str, list[Message]] = field(default_factory=dict)  # by reply address


class EventHubsAmqpEndpoint:
    """One namespace with one event hub of `partitions` partitions, served on 127.0.0.1."""

    def __init__(self, hub: str = "meshkit", partitions: int = 4, *, max_message_size: int = 1_048_576) -> None:
        self.hub = hub
        self.partitions = partitions
        self.max_message_size = max_message_size
        self.created_ms = int(time.time() * 1000)
        self._events: list[list[StoredEvent]] = [[] for _ in range(partitions)]
        self._next_offset = [0] * partitions
        self._lock = threading.Lock()
        self._throttle = 0
        self.rejected = 0
        self.cbs_status = 202  # what `put-token` answers: 401 makes every client fail authentication
        self.token_types: list[str] = []  # `type` of each put-token: "servicebus.windows.net:sastoken" or "jwt"
        self.accepted_transfers = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    @property
    def connection_string(self) -> str:
        return (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName=local;SharedAccessKey=not-a-secret;"
            f"EntityPath={self.hub};UseDevelopmentEmulator=true"
        )

    def start(self) -> EventHubsAmqpEndpoint:
        thread = threading.Thread(target=self._accept_loop, name="eventhubs-amqp-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads[:1]:
            thread.join(timeout=5)
        self._sock.close()
        for conn in list(self._conns):
            conn.close()
        for thread in self._threads[1:]:
            thread.join(timeout=5)

    def throttle_next(self, transfers: int) -> None:
        """Reject the next `transfers` sends with `com.microsoft:server-busy` (stores nothing of them)."""
        with self._lock:
            self._throttle = transfers

    def events(self, partition: int) -> list[StoredEvent]:
        with self._lock:
            return list(self._events[partition])

    def partition_for(self, key: bytes) -> int:
        return abs(generate_hash_code(key.decode("utf-8")) % self.partitions)

    # -- connections ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        self._sock.settimeout(0.1)  # closing a socket does not wake a blocked accept(): poll for stop
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="eventhubs-amqp-conn", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        try:
            _Connection(self, conn).run()
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()
            if conn in self._conns:
                self._conns.remove(conn)

    # -- the event store --------------------------------------------------------------------------

    def _append(self, partition: int | None, messages: list[Message], key: bytes | None) -> None:
        with self._lock:
            now = int(time.time() * 1000)
            for message in messages:
                annotations = dict(message.message_annotations or {})
                msg_key = annotations.get(b"x-opt-partition-key", key)
                target = partition
                if target is None:
                    target = self.partition_for(msg_key) if msg_key else self.accepted_transfers % self.partitions
                log = self._events[target]
                size = len(encode_payload(bytearray(), message))
                log.append(StoredEvent(len(log), self._next_offset[target], now, msg_key, message))
                self._next_offset[target] += size
            self.accepted_transfers += 1

    def _take_throttle(self) -> bool:
        with self._lock:
            if self._throttle > 0:
                self._throttle -= 1
                self.rejected += 1
                return True
            return False

    def _read(self, partition: int, cursor: int, limit: int) -> list[StoredEvent]:
        with self._lock:
            return self._events[partition][cursor : cursor + limit]

    def _start_sequence(self, partition: int, selector: bytes | None) -> int:
        """First sequence number a receiver gets, from the SDK's selector (`... > '5'`, `>=`, offsets)."""
        if not selector:
            return 0
        text = selector.decode("utf-8")
        name, operator, raw = text.split(" ", 2)
        value = int(raw.strip("'"))
        with self._lock:
            log = self._events[partition]
            if name.endswith("x-opt-sequence-number"):
                if value == -1:  # "@latest" is sent as -1 by the SDK
                    return len(log)
                return value + (1 if operator == ">" else 0)
            if name.endswith("x-opt-offset"):
                if value == -1:
                    return len(log)
                for event in log:
                    if event.offset > value or (operator == ">=" and event.offset == value):
                        return event.sequence
                return len(log)
            if name.endswith("x-opt-enqueued-time"):
                for event in log:
                    if event.enqueued_ms > value or (operator == ">=" and event.enqueued_ms == value):
                        return event.sequence
                return len(log)
        raise ValueError(f"unsupported selector {text!r}")

    def _management(self, application_properties: dict[bytes, Any]) -> Message:
        kind = application_properties.get(b"type") or application_properties.get(b"operation-type")
        name = application_properties.get(b"name", b"").decode()
        if name != self.hub:
            return _status(404, f"event hub {name!r} not found", None)
        if kind == b"com.microsoft:eventhub":
            body: dict[str, Any] = {
                "name": self.hub,
                "type": "com.microsoft:eventhub",
                "created_at": {TYPE: AMQPTypes.timestamp, VALUE: self.created_ms},
                "partition_count": self.partitions,
                "partition_ids": [str(p) for p in range(self.partitions)],
            }
            return _status(200, "OK", body)
        partition = int(application_properties[b"partition"].decode())
        with self._lock:
            log = self._events[partition]
            last = log[-1] if log else None
        body = {
            "name": self.hub,
            "type": "com.microsoft:partition",
            "partition": str(partition),
            "begin_sequence_number": {TYPE: AMQPTypes.long, VALUE: 0},
            "last_enqueued_sequence_number": {TYPE: AMQPTypes.long, VALUE: last.sequence if last else -1},
            "last_enqueued_offset": str(last.offset if last else -1),
            "last_enqueued_time_utc": {TYPE: AMQPTypes.timestamp, VALUE: last.enqueued_ms if last else 0},
            "is_partition_empty": last is None,
        }
        return _status(200, "OK", body)


def _status(code: int, description: str, body: dict[str, Any] | None) -> Message:
    return Message(
        application_properties={"status-code": code, "status-description": description},
        value=body,
    )


class _Connection:
    """One client connection, served on its own thread: frames in, frames out, deliveries pumped."""

    def __init__(self, endpoint: EventHubsAmqpEndpoint, sock: socket.socket) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self.buffer = bytearray()
        self.sessions: dict[int, _Session] = {}
        self.remote_max_frame = 512
        self.closed = False
        self._next_handle = 0

    # -- bytes and frames -------------------------------------------------------------------------

    def _fill(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("client closed the connection")
        self.buffer += chunk
        return True

    def _next_frame(self) -> tuple[int, int, bytes] | None:
        """(frame type, channel, body) of one complete frame in the buffer; body excludes the header."""
        if len(self.buffer) < 8:
            return None
        if self.buffer[:4] == b"AMQP":
            header = bytes(self.buffer[:8])
            del self.buffer[:8]
            return -1, 0, header
        size, doff, frame_type, channel = struct.unpack(">IBBH", self.buffer[:8])
        if len(self.buffer) < size:
            return None
        body = bytes(self.buffer[doff * 4 : size])
        del self.buffer[:size]
        return frame_type, channel, body

    def _wait_frame(self) -> tuple[int, int, bytes]:
        while True:
            frame = self._next_frame()
            if frame is not None:
                return frame
            self._fill(1.0)

    def _send(self, channel: int, frame: Any, frame_type: bytes = b"\x00") -> None:
        header, body = encode_frame(frame, frame_type=frame_type)
        self.sock.sendall(header + struct.pack(">H", channel) + (body or b""))

    # -- protocol -----------------------------------------------------------------------------------

    def run(self) -> None:
        _, _, header = self._wait_frame()
        if header == SASL_HEADER:
            self.sock.sendall(SASL_HEADER)
            self._send(0, perf.SASLMechanism(sasl_server_mechanisms=[b"ANONYMOUS", b"PLAIN", b"MSSBCBS"]), b"\x01")
            self._wait_frame()  # sasl-init: any mechanism and credential are accepted
            self._send(0, perf.SASLOutcome(code=0, additional_data=None), b"\x01")
            _, _, header = self._wait_frame()
        if header != AMQP_HEADER:
            self.sock.sendall(AMQP_HEADER)
            return
        self.sock.sendall(AMQP_HEADER)
        while not self.closed and not self.endpoint._stopping.is_set():
            frame = self._next_frame()
            if frame is None:
                self._pump()
                self._fill(0.02)
                continue
            frame_type, channel, body = frame
            if frame_type != 0 or not body:
                continue  # an empty frame is a heartbeat
            code, fields = decode_frame(memoryview(body))
            self._dispatch(code, channel, fields)

    def _dispatch(self, code: int, channel: int, fields: list[Any]) -> None:
        if code == _OPEN:
            self.remote_max_frame = fields[2] or 4294967295
            self._send(
                0,
                perf.OpenFrame(
                    container_id="meshkit-eventhubs-endpoint",
                    hostname="127.0.0.1",
                    max_frame_size=_MAX_FRAME,
                    channel_max=255,
                    idle_timeout=None,
                    outgoing_locales=None,
                    incoming_locales=None,
                    offered_capabilities=None,
                    desired_capabilities=None,
                    properties=None,
                ),
            )
        elif code == _BEGIN:
            session = _Session(channel, channel, fields[1], fields[2])
            self.sessions[channel] = session
            self._send(
                channel,
                perf.BeginFrame(
                    remote_channel=channel,
                    next_outgoing_id=0,
                    incoming_window=_WINDOW,
                    outgoing_window=_WINDOW,
                    handle_max=1023,
                    offered_capabilities=None,
                    desired_capabilities=None,
                    properties=None,
                ),
            )
        elif code == _CLOSE:
            self._send(0, perf.CloseFrame(error=None))
            self.closed = True
        elif channel not in self.sessions:
            return  # a frame for a session that already ended: the client is tearing down
        elif code == _ATTACH:
            self._attach(self.sessions[channel], fields)
        elif code == _FLOW:
            self._flow(self.sessions[channel], fields)
        elif code == _TRANSFER:
            self._transfer(self.sessions[channel], fields)
        elif code == _DETACH:
            link = self.sessions[channel].links.pop(fields[0], None)
            if link is not None:
                self._send(channel, perf.DetachFrame(handle=link.handle, closed=True, error=None))
        elif code == _END:
            self.sessions.pop(channel, None)
            self._send(channel, perf.EndFrame(error=None))
        # dispositions from the client settle deliveries this endpoint sent pre-settled: nothing to do

    def _attach(self, session: _Session, fields: list[Any]) -> None:
        name, remote_handle, client_is_receiver = fields[0], fields[1], fields[2]
        source, target = fields[5], fields[6]
        node = source if client_is_receiver else target
        address = (node[0] if node else b"").decode("utf-8")
        link = _Link(name, remote_handle, self._next_handle, client_is_receiver, address)
        self._next_handle += 1
        parts = address.split("/")
        if "Partitions" in parts:
            link.partition = int(parts[parts.index("Partitions") + 1])
        if client_is_receiver and "ConsumerGroups" in parts and link.partition is not None:
            filters = source[7] or {}
            link.cursor = self.endpoint._start_sequence(link.partition, filters.get(_SELECTOR))
        session.links[remote_handle] = link
        self._send(
            session.channel,
            perf.AttachFrame(
                name=name,
                handle=link.handle,
                role=not client_is_receiver,
                send_settle_mode=fields[3],
                rcv_settle_mode=fields[4],
                source=_SOURCE(address=(source[0] if source else None)),
                target=_TARGET(address=(target[0] if target else None)),
                unsettled=None,
                incomplete_unsettled=False,
                initial_delivery_count=0 if client_is_receiver else None,
                max_message_size=self.endpoint.max_message_size,
                offered_capabilities=None,
                desired_capabilities=None,
                properties=None,
            ),
        )
        if not client_is_receiver:
            link.delivery_count = fields[9] or 0
            self._grant(session, link)

    def _grant(self, session: _Session, link: _Link) -> None:
        """Give a client's sender link plenty of credit (Event Hubs does the same)."""
        link.credit = 1000
        self._send(
            session.channel,
            perf.FlowFrame(
                next_incoming_id=session.next_incoming_id,
                incoming_window=_WINDOW,
                next_outgoing_id=session.next_outgoing_id,
                outgoing_window=_WINDOW,
                handle=link.handle,
                delivery_count=link.delivery_count,
                link_credit=link.credit,
                available=None,
                drain=False,
                echo=False,
                properties=None,
            ),
        )

    def _flow(self, session: _Session, fields: list[Any]) -> None:
        next_incoming, window = fields[0], fields[1]
        session.remote_incoming_window = (next_incoming or 0) + window - session.next_outgoing_id
        handle = fields[4]
        if handle is not None and handle in session.links:
            link = session.links[handle]
            if link.client_is_receiver:
                link.credit = fields[5] + fields[6] - link.delivery_count  # delivery-count + credit - ours

    def _transfer(self, session: _Session, fields: list[Any]) -> None:
        session.next_incoming_id += 1
        link = session.links[fields[0]]
        if fields[1] is not None:
            link.first_transfer = fields
        link.partial += bytes(fields[11])
        if fields[5]:  # more frames follow
            return
        first = link.first_transfer or fields
        payload, link.partial = bytes(link.partial), bytearray()
        link.delivery_count += 1
        link.credit -= 1
        message = decode_payload(memoryview(payload))
        state: Any = Accepted()
        if link.address in ("$cbs", "$management"):
            self._request(session, link, message)
        elif self.endpoint._take_throttle():
            state = Rejected(error=AMQPError(condition=SERVER_BUSY, description="throttled by the test", info=None))
        else:
            key = (message.message_annotations or {}).get(b"x-opt-partition-key")
            if first[3] == BATCH_FORMAT:
                inner = [decode_payload(memoryview(data)) for data in cast(list[bytes], message.data or [])]
            else:
                inner = [message]
            self.endpoint._append(link.partition, inner, key)
        if not first[4]:  # the client did not send it settled: settle it with the outcome
            self._send(
                session.channel,
                perf.DispositionFrame(
                    role=True, first=first[1], last=first[1], settled=True, state=state, batchable=None
                ),
            )
        if link.credit < 500:
            self._grant(session, link)

    def _request(self, session: _Session, link: _Link, request: Message) -> None:
        props = cast(dict[bytes, Any], request.application_properties or {})
        cbs = link.address == "$cbs"
        if cbs:
            self.endpoint.token_types.append(_text(props.get(b"type")))
        status = self.endpoint.cbs_status
        response = _status(status, "Accepted" if status < 300 else "Unauthorized", None) if cbs else None
        response = response or self.endpoint._management(props)
        message_id: Any = request.properties.message_id if request.properties else None
        reply_to: Any = request.properties.reply_to if request.properties else None
        response = response._replace(properties=Properties(correlation_id=message_id))
        address = reply_to.decode() if reply_to else link.address
        session.replies.setdefault(address, []).append(response)

    def _pump(self) -> None:
        """Send what receivers have credit for: management replies, or events from their cursor."""
        for session in list(self.sessions.values()):
            for link in list(session.links.values()):
                if not link.client_is_receiver or link.credit <= 0:
                    continue
                if "/ConsumerGroups/" not in link.address or link.partition is None:
                    pending = session.replies.get(link.address, [])
                    while pending and link.credit > 0:
                        self._deliver(session, link, pending.pop(0))
                    continue
                for event in self.endpoint._read(link.partition, link.cursor, min(link.credit, 300)):
                    self._deliver(session, link, _annotated(event))
                    link.cursor = event.sequence + 1

    def _deliver(self, session: _Session, link: _Link, message: Message) -> None:
        payload = encode_payload(bytearray(), message)
        room = self.remote_max_frame - 256  # performative overhead stays well under 256 bytes
        chunks = [payload[i : i + room] for i in range(0, len(payload), room)] or [b""]
        for index, chunk in enumerate(chunks):
            first = index == 0
            self._send(
                session.channel,
                perf.TransferFrame(
                    handle=link.handle,
                    delivery_id=session.next_outgoing_id if first else None,
                    delivery_tag=struct.pack(">I", link.delivery_count) if first else None,
                    message_format=0 if first else None,
                    settled=True,
                    more=index < len(chunks) - 1,
                    rcv_settle_mode=None,
                    state=None,
                    resume=False,
                    aborted=False,
                    batchable=False,
                    payload=bytes(chunk),
                ),
            )
        session.next_outgoing_id += 1
        session.remote_incoming_window -= 1
        link.delivery_count += 1
        link.credit -= 1


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _annotated(event: StoredEvent) -> Message:
    annotations: dict[str | bytes, Any] = dict(event.message.message_annotations or {})
    annotations[b"x-opt-sequence-number"] = {TYPE: AMQPTypes.long, VALUE: event.sequence}
    annotations[b"x-opt-offset"] = str(event.offset).encode()
    annotations[b"x-opt-enqueued-time"] = {TYPE: AMQPTypes.timestamp, VALUE: event.enqueued_ms}
    if event.key is not None:
        annotations[b"x-opt-partition-key"] = event.key
    return event.message._replace(message_annotations=annotations, header=None)


@contextmanager
def running_endpoint(
    hub: str = "meshkit", partitions: int = 4, *, max_message_size: int = 1_048_576
) -> Iterator[EventHubsAmqpEndpoint]:
    """Start an endpoint on a free port and stop it, whatever happens."""
    endpoint = EventHubsAmqpEndpoint(hub, partitions, max_message_size=max_message_size).start()
    try:
        yield endpoint
    finally:
        endpoint.stop()
