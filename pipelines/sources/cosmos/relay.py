"""The relay: one Cosmos DB container's change feed onto the event bus, checkpointed and loss-free.

Every feed range of the container has a lease (`pipelines.checkpoints.leases`): one owner at a time,
and the range's progress, which survives a crash or a change of owner:

    {"phase": "backfill" | "feed", "feed": <change-feed continuation or null>,
     "snapshot": <backfill query continuation or null>, "lastLsn", "latestLsn", "secondsBehind", "at"}

Per page the order is fixed: read -> publish (returns once the bus acknowledged every record) ->
checkpoint. A crash between any two steps re-reads at most that page, so every change reaches the
bus at least once; the pipeline de-duplicates by key + LSN, so the effect is exactly once.

Starting points: `beginning` and a point in time are deterministic, so they are re-derived after a
crash; `now` is not, so the first thing the relay does for a fresh range is checkpoint a "now" token.
With `--backfill` the relay first checkpoints a "now" token, then publishes a query snapshot of the
range, then follows the change feed from that token: a change made during the snapshot is in the feed
(and maybe the snapshot too), so there is no gap.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from meshkit.errors import TransientError
from pipelines import faults
from pipelines.checkpoints.leases import Lease, LeaseLost, LeaseManager
from pipelines.sources.cosmos.backfill import SnapshotPage
from pipelines.sources.cosmos.feed import ChangeFeedReader, FeedPage, FeedRange, RangeLag, StartFrom
from pipelines.sources.local_relay import item_properties
from pipelines.transports.base import EventTransport

log = logging.getLogger(__name__)
T = TypeVar("T")

SnapshotFn = Callable[[FeedRange, str | None], Iterator[SnapshotPage]]


@dataclass(frozen=True)
class RelayOptions:
    start: StartFrom | None = None  # None: the mode's default (beginning; now in all-versions-and-deletes mode)
    backfill: bool = False
    until_caught_up: bool = False  # stop once every range is caught up (bounded runs, cron, tests)
    max_seconds: float | None = None
    poll_seconds: float = 1.0  # pause when every owned range is caught up
    max_attempts: int = 8  # per read or publish, on throttling and transient errors
    backoff_seconds: float = 0.2  # first retry delay; doubles per attempt, with jitter, capped
    backoff_cap_seconds: float = 10.0
    seed: int | None = None  # jitter seed (tests)


@dataclass
class RangeStatus:
    """Where one owned feed range stands; the CLI prints these and the leases keep them."""

    range_id: str
    phase: str = "feed"
    items: int = 0
    caught_up: bool = False
    lag: RangeLag | None = None


@dataclass
class RelayReport:
    items_read: int = 0
    published: int = 0
    bytes_published: int = 0
    request_units: float = 0.0
    retries: int = 0
    ownership_changes: int = 0
    seconds: float = 0.0
    ranges: dict[str, RangeStatus] = field(default_factory=dict)
    leases_lost: int = 0

    @property
    def caught_up(self) -> bool:
        return bool(self.ranges) and all(s.caught_up for s in self.ranges.values())


class Relay:
    """Reads the ranges this process owns, publishes each page to the bus, then checkpoints it."""

    def __init__(
        self,
        *,
        product: str,
        source: str,
        reader: ChangeFeedReader,
        snapshot: SnapshotFn,
        leases: LeaseManager,
        transport: EventTransport,
        options: RelayOptions,
        lease_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.product, self.source = product, source
        self.reader, self.snapshot, self.leases, self.transport = reader, snapshot, leases, transport
        self.options, self.lease_seconds, self.sleep = options, lease_seconds, sleep
        self.report = RelayReport()
        self._ranges: dict[str, FeedRange] = {}
        self._snapshots: dict[str, Iterator[SnapshotPage]] = {}
        self._random = random.Random(options.seed)  # noqa: S311 - jitter, not security
        self._stopping = False
        # one page per range read ahead while the previous one is published (reads overlap sends)
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-read-ahead")
        self._prefetch: dict[str, tuple[str, Future[FeedPage]]] = {}

    def stop(self) -> None:
        """Finish the current page, checkpoint it, release the leases and return (SIGTERM, Ctrl-C)."""
        self._stopping = True

    def run(self) -> RelayReport:
        started = time.monotonic()
        deadline = started + self.options.max_seconds if self.options.max_seconds else None
        self._ranges = self._work_ranges()
        renew_every = max(self.lease_seconds / 3, 0.05)
        owned = self._balance()
        next_renew = time.monotonic() + renew_every
        try:
            while not self._stopping:
                if time.monotonic() >= next_renew:
                    self.leases.renew()
                    owned = self._balance()
                    next_renew = time.monotonic() + renew_every
                progressed = False
                for range_id in sorted(owned):
                    lease = self.leases.owned().get(range_id)  # still ours (not lost or expired meanwhile)
                    if self._stopping:
                        break
                    if lease is None or range_id not in self._ranges:
                        continue
                    try:
                        progressed |= self._step(self._ranges[range_id], lease)
                    except LeaseLost:
                        log.warning("lease of feed range %s was taken over; leaving it to its new owner", range_id)
                        self.report.leases_lost += 1
                        self._snapshots.pop(range_id, None)
                        self._prefetch.pop(range_id, None)
                        self.report.ranges.pop(range_id, None)
                    owned = self.leases.owned()
                if self.options.until_caught_up and self._all_caught_up(owned):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not progressed:
                    self.sleep(self.options.poll_seconds)
        finally:
            self.report.seconds = time.monotonic() - started
            self.report.ownership_changes = self.leases.ownership_changes
            self._reads.shutdown(wait=True, cancel_futures=True)
            self.leases.release()
        return self.report

    def _work_ranges(self) -> dict[str, FeedRange]:
        """The feed ranges this container's relays work on: the container's ranges when the first relay
        starts, and from then on the ranges its leases were made for. A range that splits later stays
        one unit of work: its continuation covers both children (the SDK follows the split)."""
        current = {r.id: r for r in self._retrying("list feed ranges", self.reader.feed_ranges)}
        existing = self.leases.all()
        if not existing:
            self.leases.ensure(current)
            return current
        ranges: dict[str, FeedRange] = {}
        for lease in existing:
            raw = lease.state.get("range")
            rng = FeedRange(lease.range_id, raw) if isinstance(raw, dict) else current.get(lease.range_id)
            rng = rng or _range_from_id(lease.range_id)
            if rng is None:
                log.warning("lease %s names no feed range this relay can read; skipping it", lease.range_id)
                continue
            ranges[lease.range_id] = rng
        return ranges

    # one page of one range ------------------------------------------------------------------

    def _step(self, rng: FeedRange, lease: Lease) -> bool:
        """Advance `rng` by one page; True when something was published."""
        state = dict(lease.state)
        status = self.report.ranges.setdefault(rng.id, RangeStatus(rng.id))
        if "phase" not in state:
            state = self._initial_state(rng)
            self.leases.checkpoint(rng.id, state)
        status.phase = state["phase"]
        if state["phase"] == "backfill":
            return self._backfill_step(rng, state, status)
        page = self._retrying(f"read the change feed of range {rng.id}", lambda: self._read(rng, state.get("feed")))
        if page.items and not page.caught_up:  # read the next page while this one is published
            self._prefetch[rng.id] = (page.continuation, self._reads.submit(self._read_now, rng, page.continuation))
        faults.reached("after-read")
        self.report.items_read += len(page.items)
        self.report.request_units += page.request_charge
        self._publish(rng, page.items, page.keys)
        status.items += len(page.items)
        status.caught_up, status.lag = page.caught_up, page.lag
        state.update(feed=page.continuation, **_lag_state(page.lag))
        if page.items or page.continuation != lease.state.get("feed"):
            self.leases.checkpoint(rng.id, state)
            faults.reached("after-checkpoint")
        return bool(page.items)

    def _read_now(self, rng: FeedRange, continuation: str | None) -> FeedPage:
        return self.reader.read_page(rng, continuation, self.options.start or StartFrom("beginning"))

    def _read(self, rng: FeedRange, continuation: str | None) -> FeedPage:
        """The page after `continuation`: the one read ahead when it started there, else a fresh read."""
        ahead = self._prefetch.pop(rng.id, None)
        if ahead is not None and ahead[0] == continuation:
            return ahead[1].result()  # a failed read-ahead raises here and the retry reads afresh
        return self._read_now(rng, continuation)

    def _initial_state(self, rng: FeedRange) -> dict[str, Any]:
        if self.options.backfill:
            token = self._retrying(f"take a change-feed token of range {rng.id}", lambda: self.reader.now_token(rng))
            return {"phase": "backfill", "feed": token, "snapshot": None, "range": rng.raw}
        if self.options.start is not None and self.options.start.kind == "now":
            token = self._retrying(f"take a change-feed token of range {rng.id}", lambda: self.reader.now_token(rng))
            return {"phase": "feed", "feed": token, "range": rng.raw}
        return {"phase": "feed", "feed": None, "range": rng.raw}

    def _backfill_step(self, rng: FeedRange, state: dict[str, Any], status: RangeStatus) -> bool:
        pages = self._snapshots.get(rng.id)
        if pages is None:
            pages = self._snapshots[rng.id] = self.snapshot(rng, state.get("snapshot"))
        page = self._retrying(f"query the snapshot of range {rng.id}", lambda: next(pages, None))
        if page is None or page.continuation is None:
            if page is not None:
                self._publish_page(rng, page)
                status.items += len(page.items)
            self._snapshots.pop(rng.id, None)
            state.update(phase="feed", snapshot=None)
            log.info("backfill of feed range %s done; following the change feed", rng.id)
        else:
            self._publish_page(rng, page)
            status.items += len(page.items)
            state["snapshot"] = page.continuation
        self.leases.checkpoint(rng.id, state)
        faults.reached("after-checkpoint")
        return True

    def _publish_page(self, rng: FeedRange, page: SnapshotPage) -> None:
        self.report.items_read += len(page.items)
        self.report.request_units += page.request_charge
        faults.reached("after-read")
        self._publish(rng, page.items, page.keys)

    def _publish(self, rng: FeedRange, items: Sequence[bytes], keys: Sequence[str]) -> None:
        if not items:
            return
        records = []
        for key, body in zip(keys, items, strict=True):
            props = item_properties(self.product, self.source, body)
            props["feedRange"] = rng.id
            records.append((key, body, props))
        faults.publish_acknowledged(self.transport, records, self._retrying)
        self.report.published += len(records)
        self.report.bytes_published += sum(map(len, items))

    # leases, retries -----------------------------------------------------------------------

    def _balance(self) -> dict[str, Lease]:
        owned = self.leases.balance()
        for range_id in list(self.report.ranges):
            if range_id not in owned:
                self.report.ranges.pop(range_id)
                self._snapshots.pop(range_id, None)
        return owned

    def _all_caught_up(self, owned: dict[str, Lease]) -> bool:
        """Caught up on every range this process owns, and no range is left without a live owner."""
        if any(not self.report.ranges.get(r, RangeStatus(r, caught_up=False)).caught_up for r in owned):
            return False
        now = time.time()
        orphans = [lease for lease in self.leases.all() if lease.range_id not in owned and lease.expires_at <= now]
        return not orphans

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        opts = self.options
        for attempt in range(1, opts.max_attempts + 1):
            try:
                return call()
            except TransientError as exc:
                if attempt == opts.max_attempts:
                    raise TransientError(
                        f"could not {what} after {attempt} attempts: {exc}",
                        hint="The relay keeps its checkpoint; restart it when the service answers again.",
                    ) from exc
                delay = min(opts.backoff_cap_seconds, opts.backoff_seconds * 2 ** (attempt - 1))
                delay *= 0.5 + self._random.random() / 2
                self.report.retries += 1
                log.warning("could not %s (attempt %d): %s; retrying in %.2fs", what, attempt, exc, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")


def _range_from_id(range_id: str) -> FeedRange | None:
    """`<min EPK or 00>-<max EPK>` back to the SDK's feed-range form (for a lease made before a split)."""
    low, sep, high = range_id.partition("-")
    if not sep or not all(c in "0123456789ABCDEF" for c in low + high):
        return None
    bounds = {"min": "" if low == "00" else low, "max": high, "isMinInclusive": True, "isMaxInclusive": False}
    return FeedRange(range_id, {"Range": bounds})


def _lag_state(lag: RangeLag | None) -> dict[str, Any]:
    if lag is None:
        return {}
    return {
        "lastLsn": lag.last_lsn,
        "latestLsn": lag.latest_lsn,
        "lsnLag": lag.lsn_lag,
        "secondsBehind": lag.seconds_behind,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
