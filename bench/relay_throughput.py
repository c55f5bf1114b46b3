"""Relay throughput: documents/s from the Cosmos DB change feed onto a Kafka-protocol broker.

`meshkit relay`'s loop (read a page -> publish, acknowledged -> checkpoint the lease) runs over the
change-feed protocol replay served to the real azure-cosmos client, publishing to a local Tansu broker
through the Kafka transport. Baselines measured in the same run, on the same documents:

- the broker's raw produce rate: confluent-kafka producing the same bodies and keys, flushed;
- reading the feed alone: the same pages read with the reader, nothing published.

Usage: `.venv/bin/python bench/relay_throughput.py [--documents 50000]`
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "emulators")]

from confluent_kafka import Producer  # noqa: E402
from cosmos_feed_fake import EMULATOR_KEY, CosmosFeedFake  # noqa: E402
from kafka_service import running_broker  # noqa: E402

from meshkit.config import load_settings  # noqa: E402
from meshkit.products.discovery import find_product  # noqa: E402
from pipelines.checkpoints.files import FileStore  # noqa: E402
from pipelines.checkpoints.leases import LeaseManager  # noqa: E402
from pipelines.sources.cosmos.feed import ChangeFeedReader, StartFrom, open_container  # noqa: E402
from pipelines.sources.cosmos.relay import Relay, RelayOptions  # noqa: E402
from pipelines.transports.factory import open_transport  # noqa: E402

PRODUCT = "payments/transactions"
PAGE = 1000


def documents(count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    customers = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(max(1, count // 20))]
    return [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "customerId": rng.choice(customers),
            "amount": f"{rng.uniform(1, 5000):.2f}",
            "currency": "BRL",
            "method": rng.choice(["card", "pix"]),
            "status": rng.choice(["authorized", "settled", "refunded"]),
            "createdAt": "2026-11-26T12:00:00Z",
            "merchant": {"name": f"loja {rng.randrange(500)}", "mcc": str(rng.randrange(1000, 9999))},
        }
        for _ in range(count)
    ]


def serve_feed(conn: Connection, count: int, ranges: int) -> None:
    fake = CosmosFeedFake().start()
    container = fake.create_container("app", "transactions", "/customerId", ranges=ranges)
    for doc in documents(count, seed=42):
        container.upsert(doc)
    conn.send(fake.endpoint)
    conn.recv()
    fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=50_000)
    parser.add_argument("--ranges", type=int, default=4, help="physical partitions (feed ranges) of the container")
    args = parser.parse_args()

    # the feed server runs in its own process, as Cosmos DB would: its CPU is not the relay's
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_feed, args=(child, args.documents, args.ranges), daemon=True)
    server.start()
    endpoint = parent.recv()
    product = find_product(ROOT / "domains", PRODUCT)
    source = product.contract.source
    assert source is not None
    with tempfile.TemporaryDirectory() as tmp, running_broker() as broker:
        env = {"MESHKIT_PROFILE": "emulators", "MESHKIT_COSMOS_ENDPOINT": endpoint}
        env |= {"MESHKIT_COSMOS_DATABASE": "app", "MESHKIT_WORKSPACE": tmp}
        settings = load_settings(ROOT, environ=env)
        os.environ["MESHKIT_COSMOS_KEY"] = EMULATOR_KEY
        container = open_container(settings, source)

        # baseline 1: read the feed only
        reader = ChangeFeedReader(container, "/customerId", "LatestVersion", max_items=PAGE)
        started = time.perf_counter()
        bodies: list[bytes] = []
        keys: list[str] = []
        for rng in reader.feed_ranges():
            token = None
            while True:
                page = reader.read_page(rng, token, StartFrom("beginning"))
                bodies.extend(page.items)
                keys.extend(page.keys)
                token = page.continuation
                if page.caught_up or not page.items:
                    break
        read_seconds = time.perf_counter() - started

        # baseline 2: the broker's raw produce rate, same bodies and keys
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "enable.idempotence": True})
        started = time.perf_counter()
        for key, body in zip(keys, bodies, strict=True):
            while True:
                try:
                    producer.produce("raw-baseline", body, key.encode())
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(60)
        produce_seconds = time.perf_counter() - started

        # ours: the relay loop end to end (read -> publish acknowledged -> checkpoint)
        spec = broker.spec("payments.transactions", 8)
        transport = open_transport(spec)
        leases = LeaseManager(FileStore(Path(tmp) / "leases"), "leases/", "bench", lease_seconds=60)
        relay = Relay(
            product=PRODUCT,
            source="cosmosdb:bench",
            reader=ChangeFeedReader(container, "/customerId", "LatestVersion", max_items=PAGE),
            snapshot=lambda _rng, _token: iter(()),
            leases=leases,
            transport=transport,
            options=RelayOptions(start=StartFrom("beginning"), until_caught_up=True, poll_seconds=0.01),
            lease_seconds=60,
        )
        report = relay.run()
        transport.close()
    parent.send("stop")
    server.join(timeout=10)

    n = len(bodies)
    assert report.published == n == args.documents, (report.published, n)
    rows = [
        ("meshkit relay (read + publish + checkpoint)", n / report.seconds),
        ("baseline: raw produce to the broker", n / produce_seconds),
        ("baseline: read the change feed only", n / read_seconds),
    ]
    print(f"relay throughput, {n:,} documents of {sum(map(len, bodies)) / n:.0f} bytes, {args.ranges} feed ranges")
    print(f"{'':46} {'docs/s':>10} {'ratio to ours':>14}")
    ours = rows[0][1]
    for name, rate in rows:
        print(f"{name:46} {rate:>10,.0f} {rate / ours:>14.2f}")
    print(f"request units spent reading: {report.request_units:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
