"""Leases over feed ranges: several relay processes share one container's feed ranges, each range has
one owner at a time, and a crashed owner's ranges are taken over once its leases expire.

One document per range, named `<prefix><range id>` (the range id percent-encoded where it has
characters a document name cannot hold), in JSON:

    {"rangeId": "0-3f", "owner": "relay-a" | null, "expiresAt": 1764170000.0,
     "state": {"continuation": "...", ...}, "version": 7}

`state` is the range's checkpoint (continuation token and whatever the relay needs to resume); it is
carried over every change of owner, so a new owner resumes from the previous owner's last checkpoint.
`version` grows with every write. Every write is conditional on the ETag this manager last saw, so a
stale owner can never overwrite what a new owner wrote: its `checkpoint` raises `LeaseLost` instead.

Balancing follows Cosmos DB's change feed processor (EqualPartitionsBalancingStrategy): an owner is
active while it holds an unexpired lease; the fair share is ceil(ranges / active owners, counting
this one); free or expired leases are taken up to the fair share, and only when none is free, at most
one lease per `balance` is stolen from the most loaded owner. Delivery stays at-least-once: between a
steal (or takeover) and the old owner's next failed write both may read the same items, which the
pipeline de-duplicates by LSN.

Clocks: `expiresAt` is written with the writer's clock and compared with the reader's, so hosts must
agree to within a small skew, and `lease_seconds` must be well above that skew plus the renewal
interval (renew every `lease_seconds / 3` or more often; 30 s leases tolerate seconds of skew).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from meshkit.errors import TransientError
from pipelines.checkpoints.files import document_key
from pipelines.checkpoints.store import Document, DocumentStore, PreconditionFailed


@dataclass(frozen=True)
class Lease:
    range_id: str
    owner: str | None
    expires_at: float
    state: dict[str, Any] = field(hash=False)
    etag: str
    version: int = 0


class LeaseLost(TransientError):
    """This owner no longer holds the lease: stop working on the range, its new owner resumes it."""


class LeaseManager:
    """Acquires, balances, renews and checkpoints leases for one `owner`. Safe to share between threads."""

    def __init__(
        self,
        store: DocumentStore,
        prefix: str,
        owner: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        if not owner:
            raise ValueError("owner must be a non-empty, unique name per relay process (e.g. host:pid)")
        self.store = store
        self.prefix = prefix
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.ownership_changes = 0  # leases acquired + stolen + lost by this manager (releases are not counted)
        self._held: dict[str, Lease] = {}
        self._lock = threading.RLock()

    def ensure(self, range_ids: Iterable[str]) -> None:
        """Create a free lease document for every range that has none (losing a creation race is fine)."""
        with self._lock:
            existing = {lease.range_id for lease in self.all()}
            for range_id in range_ids:
                if range_id in existing:
                    continue
                body = _encode(range_id, None, 0.0, {}, 0)
                with contextlib.suppress(PreconditionFailed):  # another process created it first
                    self.store.put(self._name(range_id), body, if_none_match=True)
                existing.add(range_id)

    def balance(self) -> dict[str, Lease]:
        """Take free or expired leases up to the fair share, else steal at most one; return the leases owned."""
        with self._lock:
            leases = self.all()
            now = self.clock()
            self._refresh(leases)
            counts: Counter[str] = Counter(
                lease.owner for lease in leases if lease.owner and lease.owner != self.owner and lease.expires_at > now
            )
            active = len(counts) + 1
            target = math.ceil(len(leases) / active) if leases else 0
            needed = target - len(self._held)
            if needed <= 0:
                return self.owned()
            free = [
                lease
                for lease in leases
                if lease.range_id not in self._held and (lease.owner is None or lease.expires_at <= now)
            ]
            free.sort(key=lambda lease: self._spread(lease.range_id))
            taken = 0
            for lease in free:
                if taken >= needed:
                    break
                if self._take(lease, now) is not None:
                    taken += 1
            if taken or free:
                return self.owned()
            # Nothing free: steal one from the most loaded owner, as Cosmos DB's change feed processor
            # does, when it holds more than the target (or target - 1 while this owner needs more than one).
            if counts:
                victim, most = max(counts.items(), key=lambda item: (item[1], item[0]))
                if most > target - (1 if needed > 1 else 0):
                    candidate = min(
                        (lease for lease in leases if lease.owner == victim and lease.expires_at > now),
                        key=lambda lease: lease.range_id,
                    )
                    self._take(candidate, now)
            return self.owned()

    def renew(self) -> dict[str, Lease]:
        """Extend every owned lease; a lease that changed hands is dropped (and counted). Returns those owned."""
        with self._lock:
            for range_id in list(self._held):
                with contextlib.suppress(LeaseLost):  # dropped from the held leases and counted
                    self._write_own(range_id, None)
            return self.owned()

    def checkpoint(self, range_id: str, state: dict[str, Any]) -> Lease:
        """Store the range's new `state` and renew its expiry; raise `LeaseLost` if another owner has it."""
        with self._lock:
            if range_id not in self._held:
                raise LeaseLost(
                    f"owner {self.owner!r} does not hold the lease of range {range_id!r}",
                    hint="Stop working on this range; only its current owner may checkpoint it.",
                )
            return self._write_own(range_id, dict(state))

    def release(self) -> None:
        """Give up every owned lease (owner none, expired) so other owners take them at once; state is kept."""
        with self._lock:
            for range_id, lease in list(self._held.items()):
                body = _encode(range_id, None, 0.0, lease.state, lease.version + 1)
                try:
                    self.store.put(self._name(range_id), body, if_match=lease.etag)
                except PreconditionFailed:
                    self.ownership_changes += 1  # someone had already taken it
            self._held.clear()

    def owned(self) -> dict[str, Lease]:
        """Leases this owner holds and whose expiry, by this owner's clock, is still ahead."""
        with self._lock:
            now = self.clock()
            return {range_id: lease for range_id, lease in self._held.items() if lease.expires_at > now}

    def all(self) -> list[Lease]:
        """Every lease under the prefix, as stored, in document-name order."""
        return [_decode(document) for document in self.store.list(self.prefix)]

    def _name(self, range_id: str) -> str:
        return self.prefix + document_key(range_id)

    def _spread(self, range_id: str) -> bytes:
        """An order of free leases that differs between owners, so racing owners rarely want the same one."""
        return hashlib.sha256(f"{self.owner}\0{range_id}".encode()).digest()

    def _refresh(self, leases: list[Lease]) -> None:
        """Bring held leases up to date with a listing: adopt our own newer writes, drop leases taken over."""
        by_range = {lease.range_id: lease for lease in leases}
        for range_id in list(self._held):
            current = by_range.get(range_id)
            if current is not None and current.owner == self.owner:
                self._held[range_id] = current
            else:
                del self._held[range_id]
                self.ownership_changes += 1
        for lease in leases:
            if lease.owner == self.owner and lease.range_id not in self._held and lease.expires_at > self.clock():
                self._held[lease.range_id] = lease  # ours from before a restart with the same owner name

    def _take(self, lease: Lease, now: float) -> Lease | None:
        """Conditionally write this owner into `lease`; None when another owner got there first."""
        body = _encode(lease.range_id, self.owner, now + self.lease_seconds, lease.state, lease.version + 1)
        try:
            etag = self.store.put(self._name(lease.range_id), body, if_match=lease.etag)
        except PreconditionFailed:
            return None
        taken = _decode(Document(self._name(lease.range_id), body, etag))
        self._held[lease.range_id] = taken
        self.ownership_changes += 1
        return taken

    def _write_own(self, range_id: str, state: dict[str, Any] | None) -> Lease:
        """Write `state` (None: keep the stored one) with a renewed expiry; re-read once when the ETag moved."""
        name = self._name(range_id)
        for _ in range(2):
            held = self._held[range_id]
            new_state = held.state if state is None else state
            body = _encode(range_id, self.owner, self.clock() + self.lease_seconds, new_state, held.version + 1)
            try:
                etag = self.store.put(name, body, if_match=held.etag)
            except PreconditionFailed:
                document = self.store.get(name)
                current = _decode(document) if document is not None else None
                # Only this owner writes its own name into a lease, so a document still naming it is ours
                # (e.g. a write whose response was lost and whose retry then failed the condition).
                if current is not None and current.owner == self.owner:
                    self._held[range_id] = current
                    continue
                del self._held[range_id]
                self.ownership_changes += 1
                holder = current.owner if current is not None else None
                raise LeaseLost(
                    f"owner {self.owner!r} lost the lease of range {range_id!r} to {holder!r}",
                    hint="Stop working on this range; its new owner resumes from the last checkpoint.",
                ) from None
            lease = _decode(Document(name, body, etag))
            self._held[range_id] = lease
            return lease
        raise LeaseLost(
            f"owner {self.owner!r} could not write the lease of range {range_id!r}: it kept changing",
            hint="Another process is using the same owner name; give each relay process a unique owner.",
        )


def _encode(range_id: str, owner: str | None, expires_at: float, state: dict[str, Any], version: int) -> bytes:
    body = {"rangeId": range_id, "owner": owner, "expiresAt": expires_at, "state": state, "version": version}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _decode(document: Document) -> Lease:
    body = json.loads(document.data)
    return Lease(
        range_id=body["rangeId"],
        owner=body["owner"],
        expires_at=float(body["expiresAt"]),
        state=body["state"],
        etag=document.etag,
        version=int(body["version"]),
    )
