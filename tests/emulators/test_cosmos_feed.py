"""The change-feed reader with the real azure-cosmos client against the change-feed protocol fake.

Every test gets its own container (so the SDK's routing-map cache never sees another test's splits)
and its own client built by `open_container`, exactly as the relay builds it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cosmos_feed_fake import CosmosFeedFake, FakeContainer
from cosmos_service import EMULATOR_KEY, cosmos_feed_fake  # noqa: F401 - session fixture

from meshkit.config import Settings
from meshkit.contracts.model import SourceSpec
from meshkit.errors import ConfigError, TransientError
from pipelines.sources.cosmos.feed import ChangeFeedReader, FeedPage, FeedRange, StartFrom, open_container

pytestmark = pytest.mark.emulator
PK = "/customerId"
T0 = 1_772_452_800  # 2026-03-02T12:00:00Z


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(cosmos_feed_fake: CosmosFeedFake) -> Iterator[CosmosFeedFake]:  # noqa: F811 - the imported fixture
    cosmos_feed_fake.reset()
    yield cosmos_feed_fake
    cosmos_feed_fake.clock = time.time
    assert cosmos_feed_fake.rejected == [], "the client sent requests the protocol fake does not understand"


class Source:
    """A fake container and the SDK's proxy for it, opened the way the relay opens it."""

    def __init__(self, fake: CosmosFeedFake, name: str, ranges: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.data: FakeContainer = fake.create_container("shop", name, PK, ranges)
        monkeypatch.setenv("MESHKIT_COSMOS_KEY", EMULATOR_KEY)
        self.proxy = _reopen(fake, name)

    def reader(self, mode: str = "LatestVersion", max_items: int = 1000) -> ChangeFeedReader:
        return ChangeFeedReader(self.proxy, PK, mode, max_items)  # type: ignore[arg-type]


_names = iter(range(1_000_000))


@pytest.fixture
def source(fake: CosmosFeedFake, monkeypatch: pytest.MonkeyPatch) -> Source:
    return Source(fake, f"orders{next(_names)}", 2, monkeypatch)


def write_orders(data: FakeContainer, count: int, seed: int, customers: int = 12) -> list[dict[str, Any]]:
    """`count` new orders (ids unique per seed) and, after the first batch, updates of earlier ones."""
    rnd = random.Random(seed)
    written = [
        data.upsert(
            {"id": f"o{seed}-{i}", "customerId": f"cust-{rnd.randrange(customers)}", "amount": rnd.randint(1, 999)}
        )
        for i in range(count)
    ]
    earlier = sorted(current_state(data).values(), key=lambda d: d["id"])
    for doc in rnd.sample(earlier, k=min(len(earlier), count // 3)):
        written.append(data.upsert({**doc, "amount": rnd.randint(1, 999)}))
    return written


def drain(reader: ChangeFeedReader, rng: FeedRange, token: str | None, start: StartFrom) -> tuple[list[FeedPage], str]:
    """Pages until the service says caught up; returns them (the 304 page last) and the final token."""
    pages: list[FeedPage] = []
    for _ in range(1000):
        page = reader.read_page(rng, token, start)
        pages.append(page)
        token = page.continuation
        if page.caught_up:
            return pages, token
    raise AssertionError("the change feed never caught up")


def drain_all(reader: ChangeFeedReader, tokens: dict[str, str | None], start: StartFrom) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for rng in reader.feed_ranges():
        pages, tokens[rng.id] = drain(reader, rng, tokens.get(rng.id), start)
        items += [orjson.loads(raw) for page in pages for raw in page.items]
    return items


def current_state(data: FakeContainer) -> dict[str, dict[str, Any]]:
    return {doc["id"]: doc for doc in data.docs.values()}


def test_from_the_beginning_every_document_arrives_once_in_lsn_order_with_its_key(source: Source) -> None:
    write_orders(source.data, 40, seed=1)
    reader = source.reader(max_items=7)
    ranges = reader.feed_ranges()
    assert len(ranges) == 2 and len({r.id for r in ranges}) == 2
    seen: list[dict[str, Any]] = []
    for rng in ranges:
        pages, _ = drain(reader, rng, None, StartFrom("beginning"))
        assert all(len(p.items) <= 7 for p in pages) and pages[-1].items == []
        for page in pages:
            docs = [orjson.loads(raw) for raw in page.items]
            assert page.keys == [d["customerId"] for d in docs]
            assert page.request_charge > 0
            seen += docs
        lsns = [orjson.loads(raw)["_lsn"] for p in pages for raw in p.items]
        assert lsns == sorted(lsns)
    assert {d["id"]: d for d in seen} == current_state(source.data)  # exactly as stored, nothing extra
    assert len(seen) == len(current_state(source.data))


def test_resume_from_a_saved_continuation_returns_exactly_the_later_changes(
    source: Source, fake: CosmosFeedFake
) -> None:
    write_orders(source.data, 30, seed=2)
    tokens: dict[str, str | None] = {}
    drain_all(source.reader(max_items=10), tokens, StartFrom("beginning"))
    before = {i: d["_lsn"] for i, d in current_state(source.data).items()}
    source.data.upsert({"id": "x1", "customerId": "cust-x", "amount": -3})
    source.data.upsert({**current_state(source.data)["o2-7"], "amount": -7})
    source.data.upsert({**current_state(source.data)["o2-7"], "amount": -8})  # twice: only the latest arrives
    source.data.upsert({**current_state(source.data)["o2-11"], "amount": -11})
    changed = [d for i, d in current_state(source.data).items() if before.get(i) != d["_lsn"]]
    # a new process: a new client and the persisted tokens
    again = ChangeFeedReader(_reopen(fake, source.data.name), PK, "LatestVersion")
    later = drain_all(again, tokens, StartFrom("beginning"))
    assert sorted(later, key=lambda d: d["_lsn"]) == sorted(changed, key=lambda d: d["_lsn"])
    assert drain_all(again, tokens, StartFrom("beginning")) == []


def test_now_skips_what_exists_and_sees_what_follows(source: Source) -> None:
    write_orders(source.data, 20, seed=4)
    reader = source.reader()
    tokens: dict[str, str | None] = {rng.id: reader.now_token(rng) for rng in reader.feed_ranges()}
    later = [source.data.upsert({"id": f"n{i}", "customerId": f"cust-{i}", "amount": i}) for i in range(6)]
    assert sorted(d["id"] for d in drain_all(reader, tokens, StartFrom("now"))) == sorted(d["id"] for d in later)
    # with no continuation at all, "now" starts after everything written so far
    assert drain_all(reader, {}, StartFrom("now")) == []


def test_point_in_time_starts_at_the_first_change_at_or_after_it(source: Source, fake: CosmosFeedFake) -> None:
    clock = fake.clock = Clock(T0)
    for i in range(10):
        source.data.upsert({"id": f"t{i}", "customerId": f"cust-{i}", "amount": i})
        clock.now += 60
    start = StartFrom("time", datetime.fromtimestamp(T0 + 5 * 60, UTC))
    got = drain_all(source.reader(max_items=3), {}, start)
    assert sorted(d["id"] for d in got) == [f"t{i}" for i in range(5, 10)]


def test_all_versions_and_deletes_carry_each_operation_and_the_deleted_key(source: Source) -> None:
    write_orders(source.data, 8, seed=5)
    reader = source.reader("AllVersionsAndDeletes", max_items=4)
    with pytest.raises(ConfigError, match="cannot start from 'beginning'"):
        reader.read_page(reader.feed_ranges()[0], None, StartFrom("beginning"))
    tokens: dict[str, str | None] = {rng.id: reader.now_token(rng) for rng in reader.feed_ranges()}
    source.data.upsert({"id": "a", "customerId": "cust-a", "amount": 1})
    source.data.upsert({"id": "a", "customerId": "cust-a", "amount": 2})
    source.data.upsert({"id": "b", "customerId": "cust-b", "amount": 3})
    source.data.delete("a", "cust-a")
    keys: list[str] = []
    items: list[dict[str, Any]] = []
    for rng in reader.feed_ranges():
        pages, _ = drain(reader, rng, tokens[rng.id], StartFrom("now"))
        for page in pages[:-1]:  # lag comes from the change item's metadata in this mode
            assert page.lag.last_lsn == orjson.loads(page.items[-1])["metadata"]["lsn"]
            assert page.lag.seconds_behind is not None and page.lag.seconds_behind < 60
        keys += [k for p in pages for k in p.keys]
        items += [orjson.loads(raw) for p in pages for raw in p.items]
    by_key: dict[str, list[tuple[str, int | None]]] = {}
    for key, item in zip(keys, items, strict=True):  # per key, in LSN order, as the feed returns them
        by_key.setdefault(key, []).append((item["metadata"]["operationType"], item.get("current", {}).get("amount")))
    assert by_key == {"cust-a": [("create", 1), ("replace", 2), ("delete", None)], "cust-b": [("create", 3)]}
    delete = next(i for i in items if i["metadata"]["operationType"] == "delete")
    assert "current" not in delete and delete["metadata"]["id"] == "a"
    assert delete["metadata"]["partitionKey"] == {"customerId": "cust-a"}
    replace = next(i for i in items if i["metadata"]["operationType"] == "replace")
    assert replace["previous"]["amount"] == 1 and replace["metadata"]["previousImageLSN"] == replace["previous"]["_lsn"]


def test_caught_up_is_a_304_with_zero_lag(source: Source, fake: CosmosFeedFake) -> None:
    write_orders(source.data, 5, seed=6)
    reader = source.reader()
    rng = max(reader.feed_ranges(), key=lambda r: _count(r, source.data))
    _, token = drain(reader, rng, None, StartFrom("beginning"))
    before = fake.count("changefeed", 304)
    page = reader.read_page(rng, token, StartFrom("beginning"))
    assert fake.count("changefeed", 304) == before + 1
    assert page.caught_up and page.items == [] and page.keys == []
    assert page.lag.lsn_lag == 0 and page.lag.seconds_behind == 0.0
    assert page.lag.latest_lsn == page.lag.last_lsn and page.request_charge > 0


def test_a_split_mid_stream_loses_and_skips_nothing(source: Source, fake: CosmosFeedFake) -> None:
    write_orders(source.data, 60, seed=7, customers=40)
    reader = source.reader(max_items=8)
    ranges = reader.feed_ranges()
    busy = max(ranges, key=lambda r: _count(r, source.data))
    seen: list[dict[str, Any]] = []
    first = reader.read_page(busy, None, StartFrom("beginning"))
    seen += [orjson.loads(raw) for raw in first.items]
    physical = next(r.id for r in source.data.live_ranges() if r.min == busy.raw["Range"]["min"])
    source.data.split(physical)
    write_orders(source.data, 30, seed=8, customers=40)  # both children get new writes
    pages, _ = drain(reader, busy, first.continuation, StartFrom("beginning"))
    seen += [orjson.loads(raw) for p in pages for raw in p.items]
    assert fake.count("changefeed", 410) >= 1  # the SDK really hit the gone range
    expected = {i: d for i, d in current_state(source.data).items() if _inside(busy, d, source.data)}
    latest: dict[str, dict[str, Any]] = {}
    for doc in seen:
        if doc["id"] not in latest or doc["_lsn"] > latest[doc["id"]]["_lsn"]:
            latest[doc["id"]] = doc
    assert latest == expected
    # a relay restarted after the split (a new client, an empty routing-map cache) resumes the old token
    restarted = ChangeFeedReader(_reopen(fake, source.data.name), PK, "LatestVersion", max_items=8)
    pages, _ = drain(restarted, busy, first.continuation, StartFrom("beginning"))
    assert sorted(orjson.loads(raw)["id"] for p in pages for raw in p.items) == sorted(
        {d["id"] for d in seen[len(first.items) :]}
    )
    after = reader.feed_ranges()
    assert len(after) == 3 and busy not in after  # ranges refreshed: the parent became two children
    children = [r for r in after if _within(r, busy)]
    assert len(children) == 2
    from_children = [d for r in children for p in drain(reader, r, None, StartFrom("beginning"))[0] for d in p.items]
    assert sorted(orjson.loads(d)["id"] for d in from_children) == sorted(expected)


def test_a_merge_mid_stream_loses_nothing(source: Source, fake: CosmosFeedFake) -> None:
    write_orders(source.data, 30, seed=9, customers=30)
    reader = source.reader(max_items=5)
    tokens: dict[str, str | None] = {}
    ranges = reader.feed_ranges()
    firsts = {r.id: reader.read_page(r, None, StartFrom("beginning")) for r in ranges}
    seen = [orjson.loads(raw) for p in firsts.values() for raw in p.items]
    left, right = (r.id for r in source.data.live_ranges())
    source.data.merge(left, right)
    write_orders(source.data, 10, seed=10, customers=30)
    for rng in ranges:
        pages, tokens[rng.id] = drain(reader, rng, firsts[rng.id].continuation, StartFrom("beginning"))
        seen += [orjson.loads(raw) for p in pages for raw in p.items]
    assert fake.count("changefeed", 410) >= 1
    assert {d["id"] for d in seen} == set(current_state(source.data))
    latest = {d["id"]: d["_lsn"] for d in sorted(seen, key=lambda d: d["_lsn"])}
    assert latest == {i: d["_lsn"] for i, d in current_state(source.data).items()}


def test_429_retry_after_is_honoured_and_nothing_is_lost(source: Source, fake: CosmosFeedFake) -> None:
    write_orders(source.data, 12, seed=11)
    reader = source.reader()
    rng = max(reader.feed_ranges(), key=lambda r: _count(r, source.data))
    fake.inject(429, count=2, retry_after_ms=250)
    began = time.monotonic()
    page = reader.read_page(rng, None, StartFrom("beginning"))
    assert time.monotonic() - began >= 0.45
    assert fake.count("changefeed", 429) == 2
    throttled = [t for t, kind, status in fake.log if kind == "changefeed" and status == 429]
    served = next(t for t, kind, status in fake.log if kind == "changefeed" and status == 200)
    assert throttled[1] - throttled[0] >= 0.24 and served - throttled[1] >= 0.24
    assert len(page.items) == _count(rng, source.data)


def test_throttling_beyond_the_sdk_retries_is_a_transient_error(source: Source, fake: CosmosFeedFake) -> None:
    write_orders(source.data, 4, seed=12)
    reader = source.reader()
    rng = reader.feed_ranges()[0]
    fake.inject(429, count=1000, retry_after_ms=1)
    with pytest.raises(TransientError, match=f"container '{source.data.name}', feed range {rng.id}.*429"):
        reader.read_page(rng, None, StartFrom("beginning"))
    # retry_total=5 in the request loop, nested in the change-feed fetcher's own loop: 6 x 6 attempts
    assert fake.count("changefeed", 429) == 36


def test_a_503_is_a_transient_error_and_the_retry_from_the_same_token_loses_nothing(
    source: Source, fake: CosmosFeedFake
) -> None:
    write_orders(source.data, 10, seed=13)
    reader = source.reader(max_items=4)
    rng = max(reader.feed_ranges(), key=lambda r: _count(r, source.data))
    first = reader.read_page(rng, None, StartFrom("beginning"))
    fake.inject(503, count=1)
    with pytest.raises(TransientError, match=f"feed range {rng.id}: HTTP 503"):
        reader.read_page(rng, first.continuation, StartFrom("beginning"))
    assert fake.count("changefeed", 503) == 1
    pages, _ = drain(reader, rng, first.continuation, StartFrom("beginning"))
    ids = [orjson.loads(raw)["id"] for p in [first, *pages] for raw in p.items]
    assert len(ids) == len(set(ids)) == _count(rng, source.data)


def test_lag_counts_unread_changes_and_seconds_behind(fake: CosmosFeedFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHKIT_COSMOS_KEY", EMULATOR_KEY)
    fake.clock = Clock(time.time() - 120)
    single = fake.create_container("shop", f"lag{next(_names)}", PK, 1)
    proxy = _reopen(fake, single.name)
    for i in range(25):
        single.upsert({"id": f"l{i}", "customerId": f"cust-{i}", "amount": i})
    reader = ChangeFeedReader(proxy, PK, "LatestVersion", max_items=10)
    (rng,) = reader.feed_ranges()
    page = reader.read_page(rng, None, StartFrom("beginning"))
    assert (page.lag.last_lsn, page.lag.latest_lsn, page.lag.lsn_lag) == (10, 25, 15)
    assert page.lag.seconds_behind is not None and 118 <= page.lag.seconds_behind <= 130
    page = reader.read_page(rng, page.continuation, StartFrom("beginning"))
    assert page.lag.lsn_lag == 5


def test_the_fake_rejects_what_it_does_not_understand(source: Source, fake: CosmosFeedFake) -> None:
    from azure.cosmos.exceptions import CosmosHttpResponseError

    with pytest.raises(CosmosHttpResponseError) as caught:
        list(source.proxy.read_all_items())  # a plain ReadFeed, not the change feed
    assert caught.value.status_code == 400
    assert fake.rejected and "without a change-feed A-IM header" in fake.rejected[0]
    fake.rejected.clear()


def _reopen(fake: CosmosFeedFake, name: str) -> Any:
    """A new client for an existing fake container, as a restarted relay opens it."""
    settings = Settings(profile="emulators", cosmos_endpoint=fake.endpoint, cosmos_database="shop")
    return open_container(settings, SourceSpec("cosmosdb", "shop-app", "shop", name, PK, "latestVersion", None))


def _count(rng: FeedRange, data: FakeContainer) -> int:
    low, high = rng.raw["Range"]["min"], rng.raw["Range"]["max"]
    return sum(1 for epk, _ in data.docs if low <= epk < high)


def _inside(rng: FeedRange, doc: dict[str, Any], data: FakeContainer) -> bool:
    return rng.raw["Range"]["min"] <= data.epk(doc["customerId"]) < rng.raw["Range"]["max"]


def _within(inner: FeedRange, outer: FeedRange) -> bool:
    return (
        outer.raw["Range"]["min"] <= inner.raw["Range"]["min"]
        and inner.raw["Range"]["max"] <= outer.raw["Range"]["max"]
    )
