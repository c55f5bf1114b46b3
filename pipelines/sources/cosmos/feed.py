"""Read a Cosmos DB container's change feed one feed range and one page at a time, for the relay.

azure-cosmos does the protocol: continuations (its base64 feed-range state), 429 retries with the
service's retry-after, and 410 splits/merges (it refreshes the routing map and follows the children
inside the same continuation). This module turns its pages into what the relay publishes and
checkpoints: JSON bytes as received, the bus partition key, the continuation, request units, and lag.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha1
from typing import TYPE_CHECKING, Any, Literal

import orjson

from meshkit.errors import ConfigError, TerminalError, TransientError

if TYPE_CHECKING:
    from azure.cosmos import ContainerProxy

    from meshkit.config import Settings
    from meshkit.contracts.model import SourceSpec

Mode = Literal["LatestVersion", "AllVersionsAndDeletes"]
_SESSION_LSN = re.compile(r"#(\d+)")
_SAFE_EPK = re.compile(r"^[0-9A-F]{0,32}$")


@dataclass(frozen=True)
class StartFrom:
    """Where a range without a saved continuation starts: the beginning, now, or a point in time."""

    kind: Literal["beginning", "now", "time"]
    at: datetime | None = None


def parse_start(text: str) -> StartFrom:
    """`beginning`, `now` or an ISO-8601 timestamp with a time zone."""
    value = text.strip()
    if value.lower() in ("beginning", "now"):
        return StartFrom("beginning" if value.lower() == "beginning" else "now")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ConfigError(
            f"start position {text!r} is not 'beginning', 'now' or an ISO-8601 timestamp with a time zone",
            hint="Valid values are: beginning, now, or e.g. 2026-03-02T12:00:00Z / 2026-03-02T09:00:00-03:00.",
        )
    return StartFrom("time", at.astimezone(UTC))


@dataclass(frozen=True)
class FeedRange:
    """One feed range of the container: `id` is stable and safe as a blob name; `raw` is what the SDK queries."""

    id: str
    raw: dict[str, Any] = field(compare=False, hash=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> FeedRange:
        bounds = raw.get("Range") or {}
        low, high = str(bounds.get("min", "")), str(bounds.get("max", ""))
        if _SAFE_EPK.match(low) and (_SAFE_EPK.match(high) or high == "FF"):
            return cls(f"{low or '00'}-{high}", raw)
        # a partition-key feed range or an unexpected EPK form: a short stable hash instead
        return cls("r" + sha1(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16], raw)


@dataclass(frozen=True)
class RangeLag:
    """How far a range's reader is behind: in LSNs (per physical partition) and in seconds."""

    range_id: str
    last_lsn: int | None
    latest_lsn: int | None
    lsn_lag: int | None
    seconds_behind: float | None


@dataclass
class FeedPage:
    """One change-feed page of a range, ready to publish and checkpoint."""

    items: list[bytes]
    keys: list[str]
    continuation: str
    request_charge: float
    caught_up: bool
    lag: RangeLag


class _ResponseLog:
    """Collects the response headers of every request one page makes (the SDK reuses one dict per
    response and rewrites its `etag` into the composite continuation after the hook ran)."""

    def __init__(self) -> None:
        self.headers: list[Mapping[str, Any]] = []

    def __call__(self, headers: Mapping[str, Any], _body: Any) -> None:
        self.headers.append(headers)

    @property
    def charge(self) -> float:
        return sum(float(h.get("x-ms-request-charge") or 0) for h in self.headers)

    @property
    def last(self) -> Mapping[str, Any]:
        return self.headers[-1] if self.headers else {}


class ChangeFeedReader:
    """Pages of one container's change feed, per feed range, in latest-version or all-versions mode."""

    def __init__(self, container: ContainerProxy, partition_key_path: str, mode: Mode, max_items: int = 1000) -> None:
        if mode not in ("LatestVersion", "AllVersionsAndDeletes"):
            raise ConfigError(
                f"change feed mode {mode!r} is not supported",
                hint="Valid values are: LatestVersion, AllVersionsAndDeletes.",
            )
        self.container, self.partition_key_path, self.mode, self.max_items = (
            container,
            partition_key_path,
            mode,
            max_items,
        )

    def _where(self, rng: FeedRange | None = None) -> str:
        where = f"container {self.container.id!r}"
        return f"{where}, feed range {rng.id}" if rng else where

    def feed_ranges(self) -> list[FeedRange]:
        with _sdk_errors(f"list the feed ranges of {self._where()}"):
            return [FeedRange.from_raw(raw) for raw in self.container.read_feed_ranges(force_refresh=True)]

    def read_page(self, rng: FeedRange, continuation: str | None, start: StartFrom) -> FeedPage:
        """The next page after `continuation` (or from `start` when None); caught up = nothing more now."""
        log = _ResponseLog()
        if continuation is None:
            kwargs: dict[str, Any] = {"feed_range": rng.raw, "start_time": self._start_time(start)}
        else:
            kwargs = {"continuation": _readable_by_sdk(continuation)}
        with _sdk_errors(f"read the change feed of {self._where(rng)}"):
            pages = self.container.query_items_change_feed(
                mode=self.mode, max_item_count=self.max_items, response_hook=log, **kwargs
            ).by_page()
            raw = _next_page(pages)
        items = raw or []
        token = log.last.get("etag")
        if not isinstance(token, str) or not token:
            raise TransientError(f"the change feed of {self._where(rng)} answered without a continuation")
        token = _readable_by_sdk(token)
        return FeedPage(
            items=[orjson.dumps(item) for item in items],
            keys=[partition_key_of(item, self.partition_key_path) for item in items],
            continuation=token,
            request_charge=log.charge,
            caught_up=raw is None,
            lag=_lag(rng.id, items, log.last, caught_up=raw is None),
        )

    def now_token(self, rng: FeedRange) -> str:
        """A continuation meaning "changes after this moment" (taken before a backfill snapshot)."""
        page = self.read_page(rng, None, StartFrom("now"))
        if page.items:  # cannot happen with If-None-Match: *, but losing them silently would be worse
            raise TransientError(f"the change feed of {self._where(rng)} returned items for a 'now' token; retry")
        return page.continuation

    def _start_time(self, start: StartFrom) -> datetime | Literal["Now", "Beginning"]:
        if self.mode == "AllVersionsAndDeletes" and start.kind != "now":
            raise ConfigError(
                f"the all-versions-and-deletes change feed of {self._where()} cannot start from {start.kind!r}",
                hint="Start it from 'now' (use the backfill snapshot for existing documents) or use LatestVersion.",
            )
        if start.kind == "time":
            if start.at is None:
                raise ConfigError("start position 'time' needs a timestamp", hint="Use parse_start('<ISO-8601>').")
            return start.at
        return "Beginning" if start.kind == "beginning" else "Now"


def _next_page(pages: Iterator[Iterator[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """The next page as a list, or None when the service answered 304 (the SDK ends iteration)."""
    try:
        return list(next(pages))
    except StopIteration:
        return None


def _readable_by_sdk(token: str) -> str:
    """A continuation the installed SDK can load again.

    azure-cosmos 4.17 writes a point-in-time start as `PointInTimeMs` (milliseconds) but reads it back
    with `datetime.fromtimestamp(ms)` (as seconds: "year 58136 is out of range"), so a token from a
    timestamp start could not be resumed. Tokens are rewritten to the unit the SDK reads, found by a
    probe, so the fix stays right once the SDK reads milliseconds.
    """
    try:
        state = orjson.loads(base64.b64decode(token, validate=True))
    except (ValueError, orjson.JSONDecodeError):
        return token  # not a v2 feed-range token (e.g. a bare etag): the SDK parses it itself
    start = state.get("startFrom") if isinstance(state, dict) else None
    if not isinstance(start, dict) or start.get("Type") != "PointInTime" or "PointInTimeMs" not in start:
        return token
    value = int(start["PointInTimeMs"])
    seconds = value / 1000 if value > _MS_THRESHOLD else value
    wanted = int(seconds) if _sdk_reads_point_in_time_as_seconds() else int(seconds * 1000)
    if wanted == value:
        return token
    start["PointInTimeMs"] = wanted
    # the SDK writes its tokens with json.dumps; keep that shape so tokens stay comparable
    return base64.b64encode(json.dumps(state).encode("utf-8")).decode("ascii")


_MS_THRESHOLD = 10**11  # as seconds that is the year 5138: a larger value can only be milliseconds


@functools.cache
def _sdk_reads_point_in_time_as_seconds() -> bool:
    from azure.cosmos._change_feed.change_feed_start_from import ChangeFeedStartFromPointInTime

    probe = ChangeFeedStartFromPointInTime.from_json({"Type": "PointInTime", "PointInTimeMs": 86_400})
    return bool(probe.to_dict()["PointInTimeMs"] == 86_400_000)


def _lag(range_id: str, items: list[dict[str, Any]], headers: Mapping[str, Any], *, caught_up: bool) -> RangeLag:
    latest = _latest_lsn(headers)
    if caught_up or not items:
        return RangeLag(range_id, latest, latest, 0 if latest is not None else None, 0.0)
    last = items[-1]
    meta = last.get("metadata") if isinstance(last.get("metadata"), dict) else None
    lsn = (meta or {}).get("lsn", last.get("_lsn"))
    ts = (meta or {}).get("crts", last.get("_ts"))
    last_lsn = int(lsn) if isinstance(lsn, int | str) and str(lsn).isdigit() else None
    lag = max(latest - last_lsn, 0) if latest is not None and last_lsn is not None else None
    behind = max(time.time() - float(ts), 0.0) if isinstance(ts, int | float) else None
    return RangeLag(range_id, last_lsn, latest, lag, behind)


def _latest_lsn(headers: Mapping[str, Any]) -> int | None:
    """The physical partition's current LSN: from `x-ms-session-token` (`<pkrange>:<version>#<lsn>…`), else `lsn`."""
    token = str(headers.get("x-ms-session-token") or "")
    found = [int(m) for m in _SESSION_LSN.findall(token.rsplit(",", maxsplit=1)[-1])[:1]]
    if found:
        return found[0]
    value = str(headers.get("lsn") or "")
    return int(value) if value.isdigit() else None


def partition_key_of(item: dict[str, Any], path: str) -> str:
    """The item's partition-key value as text (the bus partition key), in either change-feed mode.

    All-versions items carry it in `current`, else in `previous`, else (deletes) in
    `metadata.partitionKey`. A missing value (Cosmos' "undefined" key) is the empty string.
    """
    meta = item.get("metadata")
    if isinstance(meta, dict) and "operationType" in meta:
        for image in (item.get("current"), item.get("previous")):
            if isinstance(image, dict):
                return partition_key_of(image, path)
        keys = meta.get("partitionKey")
        if isinstance(keys, dict):
            name = path.strip("/")
            found = keys.get(name, keys.get(name.split("/")[-1]))
            if found is None and len(keys) == 1:
                found = next(iter(keys.values()))
            return _key_text(found)
        return _key_text(keys)
    value: Any = item
    for part in path.strip("/").split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return _key_text(value)


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class _sdk_errors:  # noqa: N801 - used as a `with` block, reads like a statement
    """Turn what the SDK gives up on into meshkit errors naming the container and range."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if exc is None:
            return
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
        from azure.cosmos.exceptions import CosmosHttpResponseError

        if isinstance(exc, CosmosHttpResponseError):
            status = exc.status_code or 0
            detail = f"HTTP {status}" + (f"/{exc.sub_status}" if getattr(exc, "sub_status", None) else "")
            if status in (408, 410, 429, 449) or status >= 500:
                raise TransientError(
                    f"could not {self.doing}: {detail} after the SDK's retries",
                    hint="The service is throttling or briefly unavailable; the relay retries from its checkpoint.",
                ) from exc
            raise TerminalError(
                f"could not {self.doing}: {detail}: {_first_line(exc.message)}",
                hint="Check the endpoint, database, container and the identity's data-plane role.",
            ) from exc
        if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
            raise TransientError(
                f"could not {self.doing}: connection failed ({type(exc).__name__})",
                hint="Check `cosmos_endpoint` (MESHKIT_COSMOS_ENDPOINT) and the network path to the account; "
                "the relay keeps its checkpoints, so restarting it later loses nothing.",
            ) from exc
        if isinstance(exc, ValueError):  # the SDK's verdict on a continuation it cannot use
            raise TerminalError(
                f"could not {self.doing}: the saved continuation is not usable here ({_first_line(str(exc))})",
                hint="It belongs to another container (recreated?) or is corrupt; reset this range's checkpoint "
                "and restart from a start position or a backfill.",
            ) from exc


def _first_line(text: str | None) -> str:
    """The service's message on one line, short enough for a log line or the CLI's error."""
    return " ".join((text or "").split())[:300] or "no message"


def open_container(settings: Settings, source: SourceSpec) -> ContainerProxy:
    """The product's source container: an emulator key when `MESHKIT_COSMOS_KEY` is set, else Azure AD."""
    from meshkit.secrets import COSMOS_KEY_ENV, emulator_secret

    if not settings.cosmos_endpoint:
        raise ConfigError(
            "the Cosmos DB endpoint is not configured (setting `cosmos_endpoint`)",
            hint="Set MESHKIT_COSMOS_ENDPOINT or `cosmos_endpoint` in meshkit.yaml, "
            "e.g. https://<account>.documents.azure.com:443/.",
        )
    database = settings.cosmos_database or source.database
    if not database or not source.container:
        raise ConfigError(
            "the Cosmos DB database or container of the product's source is not set",
            hint="Set the contract's source server `database` and `container` (or `cosmos_database`).",
        )
    key = emulator_secret(settings, COSMOS_KEY_ENV, "Cosmos DB")
    credential: Any
    if key is not None:
        credential = key
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    local = (
        key is not None and re.match(r"^https?://(localhost|127\.0\.0\.1)[:/]", settings.cosmos_endpoint) is not None
    )
    with _sdk_errors(f"connect to the Cosmos DB account at {settings.cosmos_endpoint}"):
        client = _client(settings.cosmos_endpoint, credential, local)
    return client.get_database_client(database).get_container_client(source.container)


def _client(endpoint: str, credential: Any, local: bool) -> Any:
    from azure.cosmos import CosmosClient

    return CosmosClient(
        endpoint,
        credential=credential,
        # 429s: the SDK honours the service's retry-after. Its change-feed fetcher nests one retry loop in
        # another, so 5 retries / 15 s of waiting per loop means up to 36 attempts (~90 s) before the
        # TransientError that makes the relay back off from its checkpoint instead.
        retry_total=5,
        retry_backoff_max=15,
        retry_connect=3,
        retry_read=3,
        connection_timeout=10,
        # emulators listen on one local address with a self-signed certificate and advertise no regions
        enable_endpoint_discovery=not local,
        connection_verify=not local,
    )
