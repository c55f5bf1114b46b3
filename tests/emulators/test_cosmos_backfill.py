"""Backfill snapshots: against the real `@vercel/cosmosdb-server` (documents written through azure-cosmos),
and the snapshot-then-change-feed handover against the change-feed fake (cosmosdb-server has no real
change feed: no continuation, no `_lsn`)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from cosmos_feed_fake import CosmosFeedFake
from cosmos_service import EMULATOR_KEY, cosmos_feed_fake, cosmosdb_server  # noqa: F401 - session fixtures

from meshkit.config import Settings
from meshkit.contracts.model import SourceSpec
from meshkit.errors import TransientError
from pipelines.sources.cosmos.backfill import SnapshotPage, snapshot
from pipelines.sources.cosmos.feed import ChangeFeedReader, StartFrom, open_container

pytestmark = pytest.mark.emulator
PK = "/customerId"


def orders(seed: int, count: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    return [
        {"id": f"o{seed}-{i}", "customerId": f"cust-{rnd.randrange(9)}", "amount": rnd.randint(1, 999), "n": i}
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def server_orders(cosmosdb_server: str) -> Iterator[tuple[Any, list[dict[str, Any]]]]:  # noqa: F811
    """A container in cosmosdb-server filled through azure-cosmos, opened the way the relay opens it."""
    from azure.cosmos import CosmosClient, PartitionKey

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHKIT_COSMOS_KEY", EMULATOR_KEY)
        client = CosmosClient(cosmosdb_server, credential=EMULATOR_KEY, enable_endpoint_discovery=False)
        client.create_database_if_not_exists("shop").create_container_if_not_exists("orders", PartitionKey(PK))
        writer = client.get_database_client("shop").get_container_client("orders")
        docs = [dict(writer.upsert_item(doc)) for doc in orders(seed=21, count=47)]
        settings = Settings(profile="emulators", cosmos_endpoint=cosmosdb_server, cosmos_database="shop")
        yield (
            open_container(settings, SourceSpec("cosmosdb", "shop-app", "shop", "orders", PK, "latestVersion", None)),
            docs,
        )


def test_snapshot_of_cosmosdb_server_pages_every_document_once(server_orders: tuple[Any, list[dict[str, Any]]]) -> None:
    container, docs = server_orders
    ranges = ChangeFeedReader(container, PK, "LatestVersion").feed_ranges()
    pages = [page for rng in ranges for page in snapshot(container, rng, PK, None, page_size=10)]
    assert [len(p.items) for p in pages] == [10, 10, 10, 10, 7]
    assert [p.continuation is None for p in pages] == [False] * 4 + [True]
    got = [orjson.loads(raw) for p in pages for raw in p.items]
    assert {d["id"]: d for d in got} == {d["id"]: d for d in docs}  # as stored, system properties included
    assert [k for p in pages for k in p.keys] == [d["customerId"] for d in got]
    assert all(p.request_charge > 0 for p in pages)


def test_snapshot_resumes_from_a_saved_continuation(server_orders: tuple[Any, list[dict[str, Any]]]) -> None:
    container, docs = server_orders
    (rng,) = ChangeFeedReader(container, PK, "LatestVersion").feed_ranges()
    first = list(snapshot(container, rng, PK, None, page_size=20))
    saved = first[0].continuation
    assert saved is not None
    rest = list(snapshot(container, rng, PK, saved, page_size=20))  # a restarted relay
    ids = [orjson.loads(raw)["id"] for p in [first[0], *rest] for raw in p.items]
    assert sorted(ids) == sorted(d["id"] for d in docs) and len(ids) == len(set(ids))


def test_snapshot_then_change_feed_from_the_earlier_token_leaves_no_gap(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cosmos_feed_fake.reset()
    data = cosmos_feed_fake.create_container("shop", "handover", PK, ranges=2)
    for doc in orders(seed=31, count=60):
        data.upsert(doc)
    monkeypatch.setenv("MESHKIT_COSMOS_KEY", EMULATOR_KEY)
    settings = Settings(profile="emulators", cosmos_endpoint=cosmos_feed_fake.endpoint, cosmos_database="shop")
    container = open_container(
        settings, SourceSpec("cosmosdb", "shop-app", "shop", "handover", PK, "latestVersion", None)
    )
    reader = ChangeFeedReader(container, PK, "LatestVersion", max_items=9)
    rnd = random.Random(32)
    published: list[dict[str, Any]] = []
    tokens: dict[str, str] = {}
    for number, rng in enumerate(reader.feed_ranges()):
        token = reader.now_token(rng)  # first the token, then the snapshot: the relay's order
        for page in snapshot(container, rng, PK, None, page_size=8):
            published += _docs(page)
            # the application keeps writing while the snapshot runs: updates and new documents
            current = sorted(data.docs.values(), key=lambda d: d["id"])
            data.upsert({**rnd.choice(current), "amount": rnd.randint(1000, 2000)})
            data.upsert({"id": f"new-{number}-{len(published)}", "customerId": f"cust-{rnd.randrange(9)}"})
        pages, tokens[rng.id] = _drain(reader, rng, token)
        published += [orjson.loads(raw) for p in pages for raw in p.items]
    for rng in reader.feed_ranges():  # the relay keeps following every range's feed
        pages, tokens[rng.id] = _drain(reader, rng, tokens[rng.id])
        published += [orjson.loads(raw) for p in pages for raw in p.items]
    latest: dict[str, dict[str, Any]] = {}
    for doc in published:  # what the pipeline does: keep the highest LSN per key
        if doc["id"] not in latest or doc["_lsn"] >= latest[doc["id"]]["_lsn"]:
            latest[doc["id"]] = doc
    assert latest == {d["id"]: d for d in data.docs.values()}
    assert len(published) > len(latest)  # duplicates happen, and are fine
    assert cosmos_feed_fake.rejected == []


def _docs(page: SnapshotPage) -> list[dict[str, Any]]:
    docs = [orjson.loads(raw) for raw in page.items]
    assert page.keys == [d["customerId"] for d in docs] and all("_lsn" in d for d in docs)
    return docs


def _drain(reader: ChangeFeedReader, rng: Any, token: str) -> tuple[list[Any], str]:
    pages = []
    while True:
        page = reader.read_page(rng, token, StartFrom("now"))
        pages.append(page)
        token = page.continuation
        if page.caught_up:
            return pages, token


def test_a_failed_snapshot_page_is_a_transient_error_and_the_retry_resumes_where_it_was(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cosmos_feed_fake.reset()
    data = cosmos_feed_fake.create_container("shop", "flaky", PK, ranges=1)
    for doc in orders(seed=41, count=25):
        data.upsert(doc)
    monkeypatch.setenv("MESHKIT_COSMOS_KEY", EMULATOR_KEY)
    settings = Settings(profile="emulators", cosmos_endpoint=cosmos_feed_fake.endpoint, cosmos_database="shop")
    container = open_container(settings, SourceSpec("cosmosdb", "shop-app", "shop", "flaky", PK, "latestVersion", None))
    (rng,) = ChangeFeedReader(container, PK, "LatestVersion").feed_ranges()
    pages = snapshot(container, rng, PK, None, page_size=10)
    got = _docs(next(pages))
    cosmos_feed_fake.inject(503, count=1)
    with pytest.raises(TransientError, match="feed range 00-FF: HTTP 503"):
        next(pages)
    got += [doc for page in pages for doc in _docs(page)]  # the relay's retry: the same iterator again
    assert sorted(d["id"] for d in got) == sorted(d["id"] for d in data.docs.values())
    assert cosmos_feed_fake.count("query", 503) == 1 and cosmos_feed_fake.rejected == []
