"""An HTTP replay of the Cosmos DB change-feed protocol, served to the real azure-cosmos client.

No Cosmos DB emulator runs here and `@vercel/cosmosdb-server`'s change feed is not real (no
continuation, no `_lsn`), so this fake speaks the wire protocol the SDK uses for the change feed:
the account read, container and partition-key-range reads (with the incremental `A-IM` refresh the
SDK's routing map uses), the change feed in both modes (`Incremental Feed` and `Full-Fidelity Feed`
with the wire format version header), `304 Not Modified` when caught up, `410/1002` after a split
(children listed with `parents`), merges, `429` with `x-ms-retry-after-ms`, injected `503`s, and the
`SELECT * FROM c` query per range the backfill sends. It is strict: anything it does not understand
is answered `400` and counted in `rejected`, so a wrong client path fails loudly.

Partitions are placed by the SDK's own effective partition key (EPK) hash, like the service; each
physical range keeps a monotonically increasing LSN that its children continue after a split.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from azure.cosmos.partition_key import PartitionKey

# A key made up per process: any base64 key works with the SDK's HMAC signing, and the fake checks
# the authorization header's form, not the signature; so no key is written in the repository.
EMULATOR_KEY = base64.b64encode(secrets.token_bytes(64)).decode()
MAX_EPK = "FF"
_FULL = 2**128
# hash v2 clears the top two bits of the EPK, so keys live in [00, 40); the last range still ends at FF
_HASH_SPACE = 0x40 << 120
INCREMENTAL, FULL_FIDELITY = "Incremental Feed", "Full-Fidelity Feed"
WIRE_FORMAT = "2021-09-15"


def _epk_int(epk: str) -> int:
    return _FULL if epk == MAX_EPK else int((epk or "0").ljust(32, "0"), 16)


def _rid(n: int, width: int) -> str:
    return base64.b64encode(n.to_bytes(width, "big")).decode().replace("/", "-")


@dataclass
class Change:
    """One write in a physical range's log (what all-versions-and-deletes replays)."""

    lsn: int
    ts: int
    epk: str
    op: str  # create | replace | delete
    current: dict[str, Any] | None
    previous: dict[str, Any] | None
    doc_id: str
    pk: Any


@dataclass
class PhysicalRange:
    id: str
    min: str
    max: str
    parents: list[str]
    lsn: int
    routing_version: int
    gone: bool = False
    log: list[Change] = field(default_factory=list)

    def holds(self, epk: str) -> bool:
        return self.min <= epk < self.max

    def as_json(self, coll_rid: str) -> dict[str, Any]:
        return {
            "_rid": f"{coll_rid}{self.id}",
            "id": self.id,
            "_etag": f'"{self.routing_version}"',
            "minInclusive": self.min,
            "maxExclusive": self.max,
            "ridPrefix": int(self.id),
            "_self": f"dbs/x/colls/{coll_rid}/pkranges/{self.id}/",
            "throughputFraction": 1.0,
            "status": "online",
            "parents": list(self.parents),
            "_ts": int(time.time()),
        }


class FakeContainer:
    """An in-memory container: documents, physical ranges with LSNs, and the per-range change log."""

    def __init__(self, db: str, name: str, pk_path: str, ranges: int, number: int, clock: Any) -> None:
        self.db, self.name, self.pk_path = db, name, pk_path
        self.rid = _rid(number, 8)
        self._pk = PartitionKey(path=pk_path, kind="Hash", version=2)
        self._clock = clock
        self.lock = threading.RLock()
        self.routing_version = 1
        self.ranges: dict[str, PhysicalRange] = {}
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}  # (epk, id) -> document
        self._next_range = 0
        self._next_doc = 0
        bounds = [0, *[_HASH_SPACE * i // ranges for i in range(1, ranges)], _FULL]
        for lo, hi in itertools.pairwise(bounds):
            self._add_range(self._epk_str(lo), self._epk_str(hi), [], 0)

    @staticmethod
    def _epk_str(value: int) -> str:
        return "" if value == 0 else MAX_EPK if value == _FULL else f"{value:032X}"

    def _add_range(self, lo: str, hi: str, parents: list[str], lsn: int) -> PhysicalRange:
        rng = PhysicalRange(str(self._next_range), lo, hi, parents, lsn, self.routing_version)
        self._next_range += 1
        self.ranges[rng.id] = rng
        return rng

    def live_ranges(self) -> list[PhysicalRange]:
        return sorted((r for r in self.ranges.values() if not r.gone), key=lambda r: r.min)

    def epk(self, value: Any) -> str:
        return str(self._pk._get_effective_partition_key_string([value]))

    def pk_value(self, doc: dict[str, Any]) -> Any:
        value: Any = doc
        for part in self.pk_path.strip("/").split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def range_of(self, epk: str) -> PhysicalRange:
        return next(r for r in self.live_ranges() if r.holds(epk))

    def upsert(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a document as the service would, stamping `_rid`, `_etag`, `_ts`, `_lsn`."""
        with self.lock:
            pk = self.pk_value(doc)
            epk = self.epk(pk)
            rng = self.range_of(epk)
            previous = self.docs.get((epk, doc["id"]))
            rng.lsn += 1
            ts = int(self._clock())
            self._next_doc += 1
            stored = {
                **{k: v for k, v in doc.items() if not k.startswith("_")},
                "_rid": previous["_rid"] if previous else f"{self.rid}{self._next_doc:08d}",
                "_self": f"dbs/{self.db}/colls/{self.name}/docs/{doc['id']}/",
                "_etag": f'"{uuid.uuid4()}"',
                "_attachments": "attachments/",
                "_ts": ts,
                "_lsn": rng.lsn,
            }
            self.docs[(epk, doc["id"])] = stored
            op = "replace" if previous else "create"
            rng.log.append(Change(rng.lsn, ts, epk, op, stored, previous, doc["id"], pk))
            return stored

    def delete(self, doc_id: str, pk: Any) -> None:
        with self.lock:
            epk = self.epk(pk)
            previous = self.docs.pop((epk, doc_id))
            rng = self.range_of(epk)
            rng.lsn += 1
            rng.log.append(Change(rng.lsn, int(self._clock()), epk, "delete", None, previous, doc_id, pk))

    def split(self, range_id: str) -> tuple[str, str]:
        """Split a physical range in two at its EPK midpoint; the parent answers 410/1002 from now on."""
        with self.lock:
            parent = self.ranges[range_id]
            if parent.gone:
                raise ValueError(f"range {range_id} is already gone")
            mid = self._epk_str((_epk_int(parent.min) + min(_epk_int(parent.max), _HASH_SPACE)) // 2)
            self.routing_version += 1
            parent.gone = True
            children = [
                self._add_range(parent.min, mid, [parent.id], parent.lsn),
                self._add_range(mid, parent.max, [parent.id], parent.lsn),
            ]
            for child in children:
                child.log = [c for c in parent.log if child.holds(c.epk)]
            return children[0].id, children[1].id

    def merge(self, left_id: str, right_id: str) -> str:
        """Merge two adjacent physical ranges; the child's LSNs continue after both parents'."""
        with self.lock:
            left, right = self.ranges[left_id], self.ranges[right_id]
            if left.max != right.min or left.gone or right.gone:
                raise ValueError("only two adjacent live ranges can merge")
            self.routing_version += 1
            left.gone = right.gone = True
            child = self._add_range(left.min, right.max, [left.id, right.id], max(left.lsn, right.lsn))
            child.log = sorted(left.log + right.log, key=lambda c: (c.lsn, c.epk))
            return child.id


@dataclass
class Injection:
    status: int
    remaining: int
    retry_after_ms: int | None
    substatus: int | None


class CosmosFeedFake:
    """The HTTP server; containers are created per test so routing-map caches never go stale."""

    def __init__(self, key: str = EMULATOR_KEY, clock: Any = time.time) -> None:
        self.key = key
        self.clock = clock
        self.containers: dict[tuple[str, str], FakeContainer] = {}
        self.counters: Counter[str] = Counter()
        self.rejected: list[str] = []
        self.log: list[tuple[float, str, int]] = []  # (monotonic time, request kind, status)
        self._injections: list[Injection] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> CosmosFeedFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="cosmos-feed-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def create_container(self, db: str, name: str, pk_path: str = "/customerId", ranges: int = 2) -> FakeContainer:
        with self._lock:
            number = len(self.containers) + 1
            container = FakeContainer(db, name, pk_path, ranges, number, self._now)
            self.containers[(db, name)] = container
            return container

    def _now(self) -> float:
        return float(self.clock())  # looked up per write: tests swap `clock` for a settable one

    def reset(self) -> None:
        """Forget counters, rejections and pending injections (containers stay; tests make new ones)."""
        with self._lock:
            self.counters.clear()
            self.rejected.clear()
            self.log.clear()
            self._injections.clear()

    def inject(
        self, status: int, count: int = 1, retry_after_ms: int | None = None, substatus: int | None = None
    ) -> None:
        """Answer the next `count` change-feed or query requests with `status` instead of serving them."""
        with self._lock:
            self._injections.append(Injection(status, count, retry_after_ms, substatus))

    def take_injection(self) -> Injection | None:
        with self._lock:
            while self._injections and self._injections[0].remaining <= 0:
                self._injections.pop(0)
            if not self._injections:
                return None
            injection = self._injections[0]
            injection.remaining -= 1
            return injection

    def count(self, kind: str, status: int) -> int:
        return self.counters[f"{kind}:{status}"]

    def record(self, kind: str, status: int) -> None:
        with self._lock:
            self.counters[f"{kind}:{status}"] += 1
            self.log.append((time.monotonic(), kind, status))


_Answer = tuple[int, dict[str, Any] | None, dict[str, str]]  # status, JSON body, headers


class _Reject(Exception):
    def __init__(self, status: int, message: str, substatus: int | None = None) -> None:
        super().__init__(message)
        self.status, self.substatus = status, substatus


class _Handler(BaseHTTPRequestHandler):
    owner: CosmosFeedFake
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on counters, not on an access log."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/") if p]
        kind = _kind(method, parts)
        try:
            self._check_auth()
            status, payload, headers = self._route(kind, parts, body)
        except _Reject as exc:
            if exc.status == 400:
                self.owner.rejected.append(f"{method} {self.path}: {exc}")
            status, payload = exc.status, {"code": str(exc.status), "message": str(exc)}
            headers = {"x-ms-substatus": str(exc.substatus)} if exc.substatus is not None else {}
        self.owner.record(kind, status)
        self._send(status, payload, headers)

    def _check_auth(self) -> None:
        auth = unquote(self.headers.get("authorization") or "")
        if not auth.startswith("type=master&ver=1.0&sig=") or not self.headers.get("x-ms-date"):
            raise _Reject(401, "missing or malformed master-key authorization")
        if not self.headers.get("x-ms-version"):
            raise _Reject(400, "missing x-ms-version")

    def _send(self, status: int, payload: dict[str, Any] | None, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-ms-activity-id", str(uuid.uuid4()))
        self.send_header("x-ms-request-charge", headers.pop("x-ms-request-charge", "1"))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # -- routing -------------------------------------------------------------------------------

    def _route(self, kind: str, parts: list[str], body: bytes) -> _Answer:
        if kind == "account":
            return 200, self._account(), {}
        if kind == "unknown":
            raise _Reject(400, f"unsupported {self.command} on /{'/'.join(parts)}")
        container = self.owner.containers.get((parts[1], parts[3]))
        if container is None:
            raise _Reject(404, f"collection dbs/{parts[1]}/colls/{parts[3]} does not exist")
        if kind == "collection":
            return 200, self._collection(container), {}
        if kind == "pkranges":
            return self._pkranges(container)
        if kind == "changefeed":
            return self._maybe_injected(lambda: self._change_feed(container))
        if not self._true("x-ms-documentdb-isquery"):
            raise _Reject(400, "POST docs without x-ms-documentdb-isquery: True (writes go through fake.upsert)")
        return self._maybe_injected(lambda: self._query(container, body))

    def _true(self, header: str) -> bool:
        return (self.headers.get(header) or "").lower() == "true"

    def _maybe_injected(self, serve: Callable[[], _Answer]) -> _Answer:
        injection = self.owner.take_injection()
        if injection is None:
            return serve()
        headers: dict[str, str] = {}
        if injection.retry_after_ms is not None:
            headers["x-ms-retry-after-ms"] = str(injection.retry_after_ms)
        if injection.substatus is not None:
            headers["x-ms-substatus"] = str(injection.substatus)
        return injection.status, {"code": str(injection.status), "message": "injected by the test"}, headers

    def _account(self) -> dict[str, Any]:
        location = [{"name": "South Central US", "databaseAccountEndpoint": self.owner.endpoint}]
        return {
            "_self": "",
            "id": "meshkit-fake",
            "_rid": "meshkit-fake.documents.azure.com",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/",
            "writableLocations": location,
            "readableLocations": location,
            "enableMultipleWriteLocations": False,
            "userReplicationPolicy": {"asyncReplication": False, "minReplicaSetSize": 1, "maxReplicasetSize": 4},
            "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "systemReplicationPolicy": {"minReplicaSetSize": 1, "maxReplicasetSize": 4},
            "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
            "queryEngineConfiguration": "{}",
        }

    def _collection(self, c: FakeContainer) -> dict[str, Any]:
        return {
            "id": c.name,
            "indexingPolicy": {"indexingMode": "consistent", "automatic": True, "includedPaths": [{"path": "/*"}]},
            "partitionKey": {"paths": [c.pk_path], "kind": "Hash", "version": 2},
            "conflictResolutionPolicy": {"mode": "LastWriterWins", "conflictResolutionPath": "/_ts"},
            "geospatialConfig": {"type": "Geography"},
            "_rid": c.rid,
            "_ts": 1700000000,
            "_self": f"dbs/{c.rid[:6]}==/colls/{c.rid}/",
            "_etag": '"00000000-0000-0000-0000-000000000000"',
            "_docs": "docs/",
            "_sprocs": "sprocs/",
            "_triggers": "triggers/",
            "_udfs": "udfs/",
            "_conflicts": "conflicts/",
        }

    def _pkranges(self, c: FakeContainer) -> _Answer:
        if self.headers.get("a-im") != INCREMENTAL:
            raise _Reject(400, "pkranges are read as an incremental feed (A-IM: Incremental Feed)")
        with c.lock:
            etag = f'"{c.routing_version}"'
            since = (self.headers.get("if-none-match") or "").strip('"')
            if since and not since.isdigit():
                raise _Reject(400, f"bad If-None-Match {since!r} on pkranges")
            if since and int(since) >= c.routing_version:
                return 304, None, {"etag": etag}
            base = int(since) if since else 0
            # a full read lists the live ranges; an incremental read lists ranges created since `base`
            changed = [r for r in c.live_ranges() if not since or r.routing_version > base]
            payload = {"_rid": c.rid, "PartitionKeyRanges": [r.as_json(c.rid) for r in changed], "_count": len(changed)}
            return 200, payload, {"etag": etag}

    # -- change feed ---------------------------------------------------------------------------

    def _target(self, c: FakeContainer) -> tuple[PhysicalRange, str, str]:
        range_id = self.headers.get("x-ms-documentdb-partitionkeyrangeid")
        if range_id is None or range_id not in c.ranges:
            raise _Reject(400, f"unknown or missing x-ms-documentdb-partitionkeyrangeid {range_id!r}")
        rng = c.ranges[range_id]
        if rng.gone:
            raise _Reject(410, f"partition key range {range_id} is gone (split or merged)", substatus=1002)
        lo, hi = rng.min, rng.max
        if self.headers.get("x-ms-read-key-type") is not None:
            if self.headers.get("x-ms-read-key-type") != "EffectivePartitionKeyRange":
                raise _Reject(400, "x-ms-read-key-type must be EffectivePartitionKeyRange")
            # without start/end the EPK read covers the whole physical range (how the SDK's queries send it)
            lo, hi = self.headers.get("x-ms-start-epk", rng.min), self.headers.get("x-ms-end-epk", rng.max)
            if not (rng.min <= lo < hi <= rng.max or (hi == MAX_EPK and rng.max == MAX_EPK and rng.min <= lo)):
                raise _Reject(400, f"EPK range [{lo}, {hi}) is not inside range {range_id}")
        return rng, lo, hi

    def _max_items(self) -> int:
        value = self.headers.get("x-ms-max-item-count")
        if value is None:
            return 100
        if not value.lstrip("-").isdigit():
            raise _Reject(400, f"bad x-ms-max-item-count {value!r}")
        return 10_000 if int(value) < 0 else max(int(value), 1)

    def _change_feed(self, c: FakeContainer) -> _Answer:
        aim = self.headers.get("a-im")
        if aim not in (INCREMENTAL, FULL_FIDELITY):
            raise _Reject(400, f"GET docs without a change-feed A-IM header (got {aim!r}); plain ReadFeed unsupported")
        full = aim == FULL_FIDELITY
        wire = self.headers.get("x-ms-cosmos-changefeed-wire-format-version")
        if full and wire != WIRE_FORMAT:
            raise _Reject(400, f"all-versions-and-deletes needs wire format {WIRE_FORMAT}, got {wire!r}")
        match = (self.headers.get("if-none-match") or "").strip()
        since_text = self.headers.get("if-modified-since")
        if full and not match:
            raise _Reject(400, "all versions and deletes mode cannot start from the beginning or a point in time")
        with c.lock:
            rng, lo, hi = self._target(c)
            if match == "*":
                after = rng.lsn
            elif match:
                token = match.strip('"')
                if not token.isdigit():
                    raise _Reject(400, f"bad change-feed continuation If-None-Match {match!r}")
                after = int(token)
            else:
                after = 0
            since = parsedate_to_datetime(since_text).timestamp() if since_text else None
            if full:
                picked = [ch for ch in rng.log if ch.lsn > after and lo <= ch.epk < hi]
                items = [_full_fidelity(ch, c) for ch in picked]
                lsns = [ch.lsn for ch in picked]
            else:
                docs = sorted(
                    (d for (epk, _), d in c.docs.items() if lo <= epk < hi and d["_lsn"] > after),
                    key=lambda d: d["_lsn"],
                )
                docs = [d for d in docs if since is None or d["_ts"] >= since]
                items, lsns = docs, [d["_lsn"] for d in docs]
            items, lsns = items[: self._max_items()], lsns[: self._max_items()]
            headers = {
                "x-ms-session-token": f"{rng.id}:-1#{rng.lsn}",
                "lsn": str(rng.lsn),
                "x-ms-global-committed-lsn": str(rng.lsn),
                "x-ms-request-charge": f"{1 + 0.5 * len(items):.2f}",
            }
            if not items:
                # nothing in [lo, hi) after `after`: the range's current LSN is a safe place to resume
                headers["etag"] = f'"{rng.lsn}"'
                return 304, None, headers
            headers["etag"] = f'"{lsns[-1]}"'
            payload = {"_rid": c.rid, "Documents": items, "_count": len(items)}
            return 200, payload, headers

    # -- backfill query --------------------------------------------------------------------------

    def _query(self, c: FakeContainer, body: bytes) -> _Answer:
        if self.headers.get("content-type") != "application/query+json":
            raise _Reject(400, "queries are sent as application/query+json")
        query = json.loads(body or b"{}")
        if " ".join(str(query.get("query", "")).split()).upper() != "SELECT * FROM C" or query.get("parameters"):
            raise _Reject(400, f"the fake answers only SELECT * FROM c, got {query!r}")
        if self._true("x-ms-cosmos-is-query-plan-request"):
            raise _Reject(400, "query plans are not served: send the query to one partition key range")
        with c.lock:
            rng, lo, hi = self._target(c)
            docs = sorted(((epk, doc_id), d) for (epk, doc_id), d in c.docs.items() if lo <= epk < hi)
            start = 0
            token = self.headers.get("x-ms-continuation")
            if token:
                start = int(json.loads(token)["offset"])
            page = [d for _, d in docs[start : start + self._max_items()]]
            nxt = start + len(page)
            headers = {"x-ms-session-token": f"{rng.id}:-1#{rng.lsn}", "x-ms-item-count": str(len(page))}
            headers["x-ms-request-charge"] = f"{2 + 0.2 * len(page):.2f}"
            if nxt < len(docs):
                headers["x-ms-continuation"] = json.dumps({"offset": nxt})
            return 200, {"_rid": c.rid, "Documents": page, "_count": len(page)}, headers


def _kind(method: str, parts: list[str]) -> str:
    """What a request is, from its method and resource path (`unknown` is answered 400)."""
    if not parts:
        return "account" if method == "GET" else "unknown"
    if len(parts) < 4 or parts[0] != "dbs" or parts[2] != "colls":
        return "unknown"
    rest = (method, *parts[4:])
    return {("GET",): "collection", ("GET", "pkranges"): "pkranges", ("GET", "docs"): "changefeed"}.get(
        rest, "query" if rest == ("POST", "docs") else "unknown"
    )


def _full_fidelity(ch: Change, c: FakeContainer) -> dict[str, Any]:
    metadata: dict[str, Any] = {"operationType": ch.op, "lsn": ch.lsn, "crts": ch.ts, "timeToLiveExpired": False}
    item: dict[str, Any] = {}
    if ch.current is not None:
        item["current"] = ch.current
    if ch.previous is not None:
        metadata["previousImageLSN"] = ch.previous["_lsn"]
        if ch.op != "delete":  # the service sends a delete's metadata only, never the deleted image
            item["previous"] = ch.previous
    if ch.op == "delete":
        metadata["id"] = ch.doc_id
        metadata["partitionKey"] = {c.pk_path.strip("/"): ch.pk}
    item["metadata"] = metadata
    return item
