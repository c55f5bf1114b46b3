"""The PostgreSQL relay: a table's changes through a logical replication slot (pgoutput) onto the bus.

Order per batch, as in the Cosmos relay: read -> publish (returns once the bus acknowledged) ->
checkpoint. The checkpoint is the slot itself: `send_feedback(flush_lsn=...)` moves its confirmed flush
LSN to the end of the last transaction whose changes were all published, never further, so a crash at
any point re-streams at most what was not confirmed; the pipeline de-duplicates by key + LSN.

First start: the slot is created with EXPORT_SNAPSHOT, the table read in that snapshot (`op: "r"`,
every row with the slot's start LSN, which is below the LSN of every change the slot streams), then
the stream follows from the slot's consistent point: no gap, no overlap. A small state document in the
checkpoint store (`postgres-snapshot.json`) remembers the snapshot phase and the last key published,
so a crash mid-snapshot resumes it (see snapshot.py for why that stays gap-free).

TOAST: an UPDATE that leaves a large (TOASTed) value unchanged does not carry it ('u'). Under REPLICA
IDENTITY FULL the old row in the same message has it; under DEFAULT the relay reads the current value
from the table by key. No row state is kept in the relay.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from meshkit.config import Settings
from meshkit.errors import TransientError
from meshkit.products.model import DataProduct
from pipelines import faults
from pipelines.sources.postgres import replication as repl
from pipelines.sources.postgres.changes import ChangeRecords
from pipelines.sources.postgres.envelope import EnvelopeWriter, EventSource, Record
from pipelines.sources.postgres.pgoutput import (
    Begin,
    Commit,
    Delete,
    Insert,
    PgOutputDecoder,
    Truncate,
    Update,
    pg_time_ms,
)
from pipelines.sources.postgres.snapshot import read_snapshot
from pipelines.sources.postgres.source import PostgresSource
from pipelines.transports.base import EventTransport

log = logging.getLogger(__name__)
T = TypeVar("T")
STATE_DOCUMENT = "postgres-snapshot.json"
Connect = Callable[[bool], Any]  # replication? -> a new psycopg2 connection


@dataclass(frozen=True)
class PgRelayOptions:
    until_caught_up: bool = False  # stop once everything written before the start is published
    max_seconds: float | None = None
    poll_seconds: float = 1.0  # longest wait for the next message while idle
    batch_size: int | None = None  # changes per publish and snapshot rows per page (None: settings.batch_size)
    batch_seconds: float = 0.2  # publish a partial batch after this long
    status_seconds: float = 10.0  # slot lag check and feedback while idle (well under wal_sender_timeout)
    max_attempts: int = 8
    backoff_seconds: float = 0.2
    backoff_cap_seconds: float = 10.0


@dataclass
class PgRelayReport:
    phase: str = "stream"
    snapshot_rows: int = 0
    changes: int = 0  # change events read from the slot (after key-change splitting)
    transactions: int = 0
    published: int = 0
    bytes_published: int = 0
    retries: int = 0
    seconds: float = 0.0
    flushed_lsn: int | None = None
    slot_lag_bytes: int | None = None  # the largest lag seen this run
    lag_warnings: int = 0
    caught_up: bool = False


def snapshot_state_store(settings: Settings, product: DataProduct) -> Any:
    from pipelines.checkpoints.factory import open_store

    return open_store(settings, f"relay-{product.domain}.{product.name}")


def clear_snapshot_state(settings: Settings, product: DataProduct) -> None:
    store = snapshot_state_store(settings, product)
    try:
        store.put(STATE_DOCUMENT, b"{}")
    finally:
        store.close()


class PostgresRelay:
    """Snapshot, then stream; publishes in batches and confirms the slot only after the bus acked."""

    def __init__(
        self,
        *,
        settings: Settings,
        source: PostgresSource,
        connect: Connect,
        transport: EventTransport,
        store: Any,
        options: PgRelayOptions,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings, self.source, self.connect, self.transport = settings, source, connect, transport
        self.store, self.options, self.sleep = store, options, sleep
        self.batch_size = options.batch_size or settings.batch_size
        self.report = PgRelayReport()
        self._stopping = False
        self._random = random.Random()  # noqa: S311 - retry jitter
        self._conn: Any = None
        self._deadline: float | None = None
        self.table: repl.TableInfo | None = None

    def _out_of_time(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def stop(self) -> None:
        """Publish what is read, confirm it, and return (SIGTERM, Ctrl-C)."""
        self._stopping = True

    def run(self) -> PgRelayReport:
        started = time.monotonic()
        deadline = started + self.options.max_seconds if self.options.max_seconds else None
        self._deadline = deadline
        try:
            self._conn = self._retrying("connect to PostgreSQL", lambda: self.connect(False))
            self.table = repl.check_server(self._conn, self.source)
            repl.ensure_publication(self._conn, self.source)
            self._check_lag()
            self._snapshot_if_needed()
            if self.report.phase == "snapshot":  # stopped or out of time mid-snapshot
                return self.report
            # the insert position: with asynchronous commit the write position can trail committed changes
            target = repl.parse_lsn(self._scalar("SELECT pg_current_wal_insert_lsn()::text"))
            attempt = 0
            while not self._stopping:
                try:
                    self._stream(target, deadline)
                    break
                except TransientError as exc:
                    attempt += 1
                    if attempt >= self.options.max_attempts:
                        raise
                    self._backoff(f"stream from slot {self.source.slot}", attempt, exc)
        finally:
            self.report.seconds = time.monotonic() - started
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._check_lag()
                self._conn.close()
        return self.report

    # snapshot -------------------------------------------------------------------------------

    def _snapshot_if_needed(self) -> None:
        state = self._load_state()
        info = repl.slot_info(self._conn, self.source.slot)
        if info is not None:
            repl.check_slot(info, self.source)
            ours = state.get("slot") == self.source.slot
            if ours and state.get("phase") == "stream":
                return  # streaming: the slot is the checkpoint
            self.report.phase = "snapshot"
            if ours and state.get("phase") == "snapshot":
                log.info("resuming the snapshot of %s after key %s", self.source.table, state.get("cursor"))
                self._snapshot(None, int(state["snapshotLsn"]), state.get("cursor"), int(state.get("rows", 0)))
                return
            # a slot without our state (a crash right after creating it, or a wiped checkpoint store):
            # read the table again; its rows rank below every change the slot still streams
            log.warning(
                "replication slot %s has no snapshot state; reading %s again", self.source.slot, self.source.table
            )
            start = info.restart_lsn or info.confirmed_flush_lsn or 0
            self._save_state({"phase": "snapshot", "slot": self.source.slot, "snapshotLsn": start, "cursor": None})
            self._snapshot(None, start, None, 0)
            return
        if state.get("phase") == "stream":
            log.warning("replication slot %s is gone; taking a new snapshot of %s", self.source.slot, self.source.table)
        self.report.phase = "snapshot"
        exporter = self._retrying("open a replication connection", lambda: self.connect(True))
        try:
            _consistent, name = repl.create_slot_exporting_snapshot(exporter, self.source.slot)
            created = repl.slot_info(self._conn, self.source.slot)
            start = created.restart_lsn if created and created.restart_lsn is not None else _consistent
            self._save_state({"phase": "snapshot", "slot": self.source.slot, "snapshotLsn": start, "cursor": None})
            self._snapshot(name, start, None, 0, keep_open=exporter)
        finally:
            exporter.close()

    def _snapshot(self, name: str | None, lsn: int, cursor: list[str] | None, rows: int, keep_open: Any = None) -> None:
        """Publish the table page by page; the exporting replication connection (if any) stays open
        until the snapshot was imported by the first read."""
        assert self.table is not None
        writer = EnvelopeWriter(self.source, self.table.key)
        reader_conn = self._retrying("connect to PostgreSQL", lambda: self.connect(False))
        at = EventSource(lsn=lsn, tx_id=None, commit_ms=int(time.time() * 1000), snapshot=True)
        try:
            pages = read_snapshot(
                reader_conn, self.source, self.table, snapshot_name=name, after_key=cursor,
                page_rows=self.batch_size,
            )  # fmt: skip
            for page, last_key in pages:
                if keep_open is not None:
                    keep_open.close()  # imported: the exporting connection may go
                    keep_open = None
                faults.reached("after-read")
                self._publish([writer.record("r", None, row, at) for row in page])
                rows += len(page)
                self.report.snapshot_rows += len(page)
                self._save_state(
                    {
                        "phase": "snapshot",
                        "slot": self.source.slot,
                        "snapshotLsn": lsn,
                        "cursor": last_key,
                        "rows": rows,
                    }
                )
                faults.reached("after-checkpoint")
                if self._stopping or self._out_of_time():
                    return  # resumes from the cursor on the next start
        finally:
            reader_conn.close()
        self._save_state({"phase": "stream", "slot": self.source.slot, "snapshotLsn": lsn, "rows": rows})
        log.info("snapshot of %s done (%d rows); streaming from slot %s", self.source.table, rows, self.source.slot)
        self.report.phase = "stream"

    # stream ---------------------------------------------------------------------------------

    def _stream(self, target: int, deadline: float | None) -> None:
        import psycopg2

        assert self.table is not None
        if self._stopping:
            return
        self.report.phase = "stream"
        conn = self._retrying("open a replication connection", lambda: self.connect(True))
        try:
            cur = conn.cursor()
            cur.start_replication(
                slot_name=self.source.slot,
                decode=False,
                options={"proto_version": repl.PROTO_VERSION, "publication_names": self.source.publication},
            )
            self._follow(cur, conn, target, deadline)
        except psycopg2.OperationalError as exc:
            raise TransientError(f"the replication stream of slot {self.source.slot} broke: {exc}".strip()) from exc
        finally:
            conn.close()

    def _follow(self, cur: Any, conn: Any, target: int, deadline: float | None) -> None:
        assert self.table is not None
        decoder = PgOutputDecoder()
        changes = ChangeRecords(self.source, self.table, self._conn)
        batch: list[Record] = []
        tx: Begin | None = None
        committed_end: int | None = None  # end of the last transaction whose changes are all in `batch` or published
        flushed = self.report.flushed_lsn
        batch_started = time.monotonic()
        next_status = time.monotonic() + self.options.status_seconds
        while True:
            msg = cur.read_message()
            if msg is not None:
                decoded = decoder.decode(msg.payload)
                if isinstance(decoded, Begin):
                    tx = decoded
                elif isinstance(decoded, Commit):
                    committed_end = decoded.end_lsn
                    self.report.transactions += 1
                elif isinstance(decoded, Insert | Update | Delete | Truncate) and tx is not None:
                    at = EventSource(msg.data_start, tx.xid, pg_time_ms(tx.commit_time_us), snapshot=False)
                    records = changes.records(decoded, at)
                    self.report.changes += len(records)
                    if not batch:
                        batch_started = time.monotonic()
                    batch.extend(records)
                full = len(batch) >= self.batch_size
                if not full and not self._stopping and time.monotonic() - batch_started < self.options.batch_seconds:
                    continue
            now = time.monotonic()
            stopping = self._stopping or (deadline is not None and now >= deadline)
            if batch and (
                stopping
                or msg is None
                or len(batch) >= self.batch_size
                or now - batch_started >= self.options.batch_seconds
            ):
                faults.reached("after-read")
                self._publish(batch)
                batch = []
            if committed_end is not None and not batch and (flushed is None or committed_end > flushed):
                cur.send_feedback(flush_lsn=committed_end, force=True)
                flushed = self.report.flushed_lsn = committed_end
                faults.reached("after-checkpoint")
            if now >= next_status:
                cur.send_feedback(reply=True)  # a keepalive of ours; the server's answer updates wal_end
                self._check_lag()
                next_status = now + self.options.status_seconds
            if stopping:
                return
            if msg is None:
                if self.options.until_caught_up and not batch and cur.wal_end >= target:
                    self.report.caught_up = True  # everything read is published and confirmed (above)
                    return
                cur.send_feedback(reply=True)  # the answer tells how far the server has sent (wal_end)
                select.select(
                    [conn], [], [], min(self.options.poll_seconds, 0.1 if self.options.until_caught_up else 1)
                )

    # publish, lag, state, retries ------------------------------------------------------------

    def _publish(self, records: list[Record]) -> None:
        if not records:
            return
        faults.publish_acknowledged(self.transport, records, self._retrying)
        self.report.published += len(records)
        self.report.bytes_published += sum(len(body) for _, body, _ in records)

    def _check_lag(self) -> None:
        lag = repl.slot_lag(self._conn, self.source.slot)
        if lag is None:
            return
        self.report.slot_lag_bytes = max(self.report.slot_lag_bytes or 0, lag.lag_bytes)
        if repl.warn_if_lagging(self.settings, self.source, lag):
            self.report.lag_warnings += 1

    def _scalar(self, sql: str) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]

    def _load_state(self) -> dict[str, Any]:
        doc = self.store.get(STATE_DOCUMENT)
        data = orjson.loads(doc.data) if doc is not None and doc.data else {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.store.put(STATE_DOCUMENT, orjson.dumps(state))

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                return call()
            except TransientError as exc:
                if attempt == self.options.max_attempts:
                    raise TransientError(
                        f"could not {what} after {attempt} attempts: {exc.reason}",
                        hint="The slot keeps every unconfirmed change; restart the relay when the service answers.",
                    ) from exc
                self._backoff(what, attempt, exc)
        raise AssertionError("unreachable")

    def _backoff(self, what: str, attempt: int, exc: Exception) -> None:
        opts = self.options
        delay = min(opts.backoff_cap_seconds, opts.backoff_seconds * 2 ** (attempt - 1)) * (
            0.5 + self._random.random() / 2
        )
        self.report.retries += 1
        log.warning("could not %s (attempt %d): %s; retrying in %.2fs", what, attempt, exc, delay)
        self.sleep(delay)
