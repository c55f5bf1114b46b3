"""`meshkit relay` under faults: killed with SIGKILL at 22 seeded points and restarted, throttled,
answered 5xx, its lease holder killed. The source is the change-feed replay served to the real
azure-cosmos client; the relay runs as a real `meshkit relay` process.

At the end every source change (id, LSN) is on the bus at least once and, after `meshkit run`, the
current-state table equals the source container.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from azurite_service import AzuriteBlob, azurite  # noqa: F401
from conftest import ROOT
from cosmos_feed_fake import EMULATOR_KEY, CosmosFeedFake, FakeContainer
from cosmos_service import cosmos_feed_fake  # noqa: F401
from kafka_service import KafkaBroker, kafka_broker  # noqa: F401

from meshkit.config import Settings, load_settings
from meshkit.products.discovery import find_product
from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables
from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig
from pipelines.transports.local_log import LocalEventLog

pytestmark = pytest.mark.emulator
PRODUCT = "customers/users"
TOPIC = "customers.users"
MASKING_KEY = "relay-fault-test-masking-key-0123456789abcdef"
CRASH_POINTS = ("after-read", "mid-publish", "after-publish", "after-checkpoint")


def source_operations(events: int, seed: int) -> list[dict[str, Any]]:
    """A seeded create/replace/delete sequence of valid `users` documents, from the simulator."""
    product = find_product(ROOT / "domains", PRODUCT)
    config = SimulationConfig(
        events=events, seed=seed, mode="allVersionsAndDeletes", duplicate_rate=0, out_of_order_rate=0, malformed_rate=0
    )
    return [orjson.loads(item) for item in ChangeFeedSimulator(product.contract, config).generate().items]


def apply(container: FakeContainer, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        meta = op["metadata"]
        if meta["operationType"] == "delete":
            if container.docs.get((container.epk(meta["id"]), meta["id"])) is not None:
                container.delete(meta["id"], meta["id"])
        else:
            container.upsert({k: v for k, v in op["current"].items() if not k.startswith("_")})


def source_changes(container: FakeContainer) -> set[tuple[str, int]]:
    """Every change the container's feed holds: (document id, LSN)."""
    return {(c.doc_id, c.lsn) for r in container.ranges.values() if not r.gone for c in r.log}


def bus_changes(settings: Settings) -> set[tuple[str, int]]:
    seen: set[tuple[str, int]] = set()
    with LocalEventLog(settings.eventlog_dir, TOPIC, settings.eventlog_partitions) as log:
        for partition, end in log.end_offsets().items():
            for records in log.read(partition, 0, end):
                for record in records:
                    item = orjson.loads(record.body)
                    if "metadata" not in item:  # a backfill snapshot document
                        seen.add((item["id"], int(item["_lsn"])))
                        continue
                    meta = item["metadata"]
                    doc_id = meta.get("id") or item["current"]["id"]
                    seen.add((doc_id, int(meta["lsn"])))
    return seen


@pytest.fixture
def users_container(cosmos_feed_fake: CosmosFeedFake, request: pytest.FixtureRequest) -> FakeContainer:  # noqa: F811
    # one database per test, so the SDK's routing-map caches of other tests never apply
    return cosmos_feed_fake.create_container(f"app-{request.node.name[:40]}", "users", "/id", ranges=3)


def relay_env(workspace: Path, fake: CosmosFeedFake, container: FakeContainer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    env.update(
        MESHKIT_PROFILE="emulators",
        MESHKIT_WORKSPACE=str(workspace),
        MESHKIT_COSMOS_ENDPOINT=fake.endpoint,
        MESHKIT_COSMOS_DATABASE=container.db,
        MESHKIT_COSMOS_KEY=EMULATOR_KEY,
        MESHKIT_MASKING_KEY=MASKING_KEY,
        MESHKIT_BATCH_SIZE="40",  # small pages: many read/publish/checkpoint steps to crash in
        MESHKIT_RELAY_LEASE_SECONDS="3",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def run_relay(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshkit", "--root", str(ROOT), "--debug", "relay", PRODUCT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_at_now(env: dict[str, str]) -> None:
    """A first relay run on the empty container: its leases now hold "now" tokens."""
    result = run_relay(env, "--until-caught-up", "--poll-seconds", "0.05")
    assert result.returncode == 0, result.stderr


def settings_for(workspace: Path, fake: CosmosFeedFake, container: FakeContainer) -> Settings:
    env = relay_env(workspace, fake, container)
    return load_settings(ROOT, environ={k: v for k, v in env.items() if k.startswith("MESHKIT_")})


def assert_current_state_equals_source(
    settings: Settings, container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.runners.local import run_product

    monkeypatch.setenv("MESHKIT_MASKING_KEY", MASKING_KEY)
    product = find_product(settings.domains_dir, PRODUCT)
    summary = run_product(settings, product)
    assert summary.status == "completed" and summary.dead_letters == 0
    table = DuckDBWarehouse(settings.warehouse_path).read(WarehouseTables.of("customers", "users"), "current")
    rows = {
        k: (lsn, status)
        for k, lsn, status in zip(*(table[c].to_pylist() for c in ("_key", "_lsn", "kyc_status")), strict=True)
    }
    source = {doc["id"]: (doc["_lsn"], doc["kyc_status"]) for doc in container.docs.values()}
    assert rows == source


def test_kill_9_at_seeded_points_loses_nothing(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    users_container: FakeContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(20261126)
    ops = source_operations(events=1200, seed=11)
    chunks = [ops[i * 50 : (i + 1) * 50] for i in range(24)]
    env_base = relay_env(tmp_path / "ws", cosmos_feed_fake, users_container)
    start_at_now(env_base)  # all-versions-and-deletes mode: the feed starts now; every later change must arrive
    apply(users_container, chunks[0])
    killed = 0
    points = [(rng.choice(CRASH_POINTS), rng.randint(1, 4)) for _ in range(22)]
    for i, (point, nth) in enumerate(points, start=1):
        apply(users_container, chunks[i])  # the source keeps changing between crashes
        env = {**env_base, "MESHKIT_FAULT_POINT": f"{point}:{nth}"}
        result = run_relay(env, "--until-caught-up", "--owner", "relay-a", "--poll-seconds", "0.05")
        assert result.returncode in (0, -signal.SIGKILL), result.stderr
        killed += result.returncode == -signal.SIGKILL
    apply(users_container, chunks[23])
    final = run_relay(env_base, "--until-caught-up", "--owner", "relay-a", "--poll-seconds", "0.05")
    assert final.returncode == 0, final.stderr
    assert killed >= 20, f"only {killed} of {len(points)} runs reached their crash point"
    settings = settings_for(tmp_path / "ws", cosmos_feed_fake, users_container)
    missing = source_changes(users_container) - bus_changes(settings)
    assert not missing, f"{len(missing)} source changes never reached the bus, e.g. {sorted(missing)[:3]}"
    assert_current_state_equals_source(settings, users_container, monkeypatch)


def test_throttling_and_5xx_are_retried_with_nothing_lost(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    users_container: FakeContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = relay_env(tmp_path / "ws", cosmos_feed_fake, users_container)
    start_at_now(env)
    apply(users_container, source_operations(events=300, seed=5))
    before_429, before_503 = cosmos_feed_fake.count("changefeed", 429), cosmos_feed_fake.count("changefeed", 503)
    cosmos_feed_fake.inject(429, count=3, retry_after_ms=50)
    cosmos_feed_fake.inject(503, count=4)
    result = run_relay(env, "--until-caught-up", "--poll-seconds", "0.05", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert cosmos_feed_fake.count("changefeed", 429) - before_429 == 3
    assert cosmos_feed_fake.count("changefeed", 503) - before_503 == 4
    settings = settings_for(tmp_path / "ws", cosmos_feed_fake, users_container)
    assert source_changes(users_container) <= bus_changes(settings)
    assert_current_state_equals_source(settings, users_container, monkeypatch)


@pytest.fixture
def relay_process() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_dead_lease_holder_hands_over_within_the_lease_expiry(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    users_container: FakeContainer,
    tmp_path: Path,
    relay_process: list[subprocess.Popen[str]],
) -> None:
    env = relay_env(tmp_path / "ws", cosmos_feed_fake, users_container)
    settings = settings_for(tmp_path / "ws", cosmos_feed_fake, users_container)
    args = [sys.executable, "-m", "meshkit", "--root", str(ROOT), "relay", PRODUCT, "--poll-seconds", "0.05"]
    first = subprocess.Popen(
        [*args, "--owner", "relay-a"], env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    relay_process.append(first)
    from pipelines.sources.cosmos.service import lease_table

    product = find_product(settings.domains_dir, PRODUCT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        leases = lease_table(settings, product)
        if leases and all(lease.owner == "relay-a" and lease.state.get("phase") for lease in leases):
            break
        time.sleep(0.1)
    else:
        pytest.fail("relay-a never took all leases")
    apply(users_container, source_operations(events=200, seed=3))
    time.sleep(0.5)
    first.kill()
    first.wait(timeout=10)
    killed_at = time.monotonic()
    second = subprocess.Popen(
        [*args, "--owner", "relay-b"], env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    relay_process.append(second)
    while time.monotonic() - killed_at < 30:
        leases = lease_table(settings, product)
        if all(lease.owner == "relay-b" for lease in leases):
            break
        time.sleep(0.1)
    handover = time.monotonic() - killed_at
    assert all(lease.owner == "relay-b" for lease in lease_table(settings, product))
    assert handover <= settings.relay_lease_seconds + 3.0, f"handover took {handover:.1f}s"
    apply(users_container, source_operations(events=50, seed=4)[:20])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not source_changes(users_container) <= bus_changes(settings):
        time.sleep(0.2)
    assert source_changes(users_container) <= bus_changes(settings)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert all(lease.owner is None or lease.expires_at <= time.time() for lease in lease_table(settings, product))


def test_backfill_hands_over_to_the_feed_under_kill_9(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    users_container: FakeContainer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Documents that exist before the first start arrive by the snapshot; changes made while it runs
    arrive by the feed; kills in the snapshot phase resume from the query continuation."""
    rng = random.Random(7)
    ops = source_operations(events=900, seed=21)
    apply(users_container, ops[:600])
    env = relay_env(tmp_path / "ws", cosmos_feed_fake, users_container)
    for i, point in enumerate(("after-checkpoint", "mid-publish", "after-publish", "after-read")):
        apply(users_container, ops[600 + 50 * i : 650 + 50 * i])
        crash = {"MESHKIT_FAULT_POINT": f"{point}:{rng.randint(1, 3)}"}
        result = run_relay(
            {**env, **crash}, "--backfill", "--until-caught-up", "--owner", "r", "--poll-seconds", "0.05"
        )
        assert result.returncode == -signal.SIGKILL, result.stderr
    apply(users_container, ops[800:])
    final = run_relay(env, "--backfill", "--until-caught-up", "--owner", "r", "--poll-seconds", "0.05")
    assert final.returncode == 0, final.stderr
    settings = settings_for(tmp_path / "ws", cosmos_feed_fake, users_container)
    on_bus = bus_changes(settings)
    live = {(doc["id"], doc["_lsn"]) for doc in users_container.docs.values()}
    assert live <= on_bus  # the newest version of every document reached the bus
    assert_current_state_equals_source(settings, users_container, monkeypatch)


def test_emulators_profile_end_to_end_kafka_bus_and_azurite_checkpoints_under_kill_9(
    cosmos_feed_fake: CosmosFeedFake,  # noqa: F811
    users_container: FakeContainer,
    kafka_broker: KafkaBroker,  # noqa: F811
    azurite: AzuriteBlob,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The emulators profile as a whole: leases and continuations in Azure Blob (Azurite), the bus on the
    Kafka surface (a Kafka-protocol broker); the relay killed at seeded points; the pipeline reads Kafka."""
    rng = random.Random(42)
    container_name = azurite.container_name()
    bus = {
        "MESHKIT_BUS": "kafka",
        "MESHKIT_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "MESHKIT_KAFKA_PROBE_END_OFFSETS": "true",
        "MESHKIT_CHECKPOINT_STORE": "blob",
        "MESHKIT_CHECKPOINT_CONTAINER": container_name,
        "MESHKIT_STORAGE_CONNECTION_STRING": azurite.connection_string,
    }
    env = relay_env(tmp_path / "ws", cosmos_feed_fake, users_container, **bus)
    start_at_now(env)
    ops = source_operations(events=600, seed=31)
    for i in range(6):
        users_container_ops = ops[i * 100 : (i + 1) * 100]
        apply(users_container, users_container_ops)
        crash = {"MESHKIT_FAULT_POINT": f"{rng.choice(CRASH_POINTS)}:{rng.randint(1, 2)}"}
        result = run_relay({**env, **crash}, "--until-caught-up", "--owner", "relay-k", "--poll-seconds", "0.05")
        assert result.returncode in (0, -signal.SIGKILL), result.stderr
    final = run_relay(env, "--until-caught-up", "--owner", "relay-k", "--poll-seconds", "0.05")
    assert final.returncode == 0, final.stderr
    blobs = list(BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        container_name).list_blob_names())  # fmt: skip
    assert any("leases/" in name for name in blobs), blobs  # the leases live in Azure Blob, not in files
    assert not (tmp_path / "ws" / "checkpoints").exists()
    for key, value in bus.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(ROOT, environ={k: v for k, v in {**env, **bus}.items() if k.startswith("MESHKIT_")})
    assert_current_state_equals_source(settings, users_container, monkeypatch)
