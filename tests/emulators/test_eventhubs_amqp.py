"""`EventHubsTransport` through the real azure-eventhub client against the local AMQP 1.0 endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshkit.errors import ConfigError
from tests.conftest import require_emulator

pytestmark = pytest.mark.emulator

HUB = "meshkit"
PARTITIONS = 4


@pytest.fixture(scope="session")
def endpoint() -> Iterator[Any]:
    try:
        from tests.emulators.eventhubs_amqp_endpoint import running_endpoint
    except ImportError as exc:  # azure-eventhub (whose codec the endpoint uses) is not installed
        require_emulator("eventhubs-amqp", False, f"cannot import the endpoint: {exc}")
        raise
    with running_endpoint(HUB, PARTITIONS) as started:
        yield started


@pytest.fixture
def transport(endpoint: Any, tmp_path: Path) -> Iterator[Any]:
    from pipelines.checkpoints.files import FileStore
    from pipelines.checkpoints.offsets import StoreOffsets
    from pipelines.transports.eventhubs import EventHubsTransport

    offsets = StoreOffsets(FileStore(tmp_path / "offsets"), prefix="eventhubs/meshkit/")
    with EventHubsTransport(
        hub=HUB,
        partitions=PARTITIONS,
        offsets=offsets,
        connection_string=endpoint.connection_string,
        max_retries=3,
        backoff_s=0.05,
        stall_seconds=15,
    ) as opened:
        yield opened


def _records(keys: list[str], per_key: int, tag: str, size: int = 0) -> list[tuple[str, bytes, dict[str, str]]]:
    out = []
    for n in range(per_key):
        for key in keys:
            body = f'{{"id":"{key}","n":{n},"tag":"{tag}"}}'.encode() + b" " * size
            props = {"product": "payments.transactions", "feed_range": "fr-0", "lsn": str(n), "op": "replace"}
            out.append((key, body, props))
    return out


def _read_all(transport: Any, before: dict[int, int]) -> dict[int, list[Any]]:
    after = transport.end_offsets()
    return {
        p: [r for batch in transport.read(p, before[p], after[p], max_batch=7) for r in batch]
        for p in range(PARTITIONS)
        if after[p] > before[p]
    }


def test_publish_read_round_trip_keeps_properties_and_per_key_order(transport: Any) -> None:
    tag = uuid.uuid4().hex
    keys = [f"customer-{i}" for i in range(6)]
    records = _records(keys, per_key=5, tag=tag)
    before = transport.end_offsets()

    placed = transport.publish(records)

    read = _read_all(transport, before)
    assert sum(len(v) for v in read.values()) == len(records)
    partition_of: dict[str, int] = {}
    for partition, events in read.items():
        assert [e.offset for e in events] == list(range(before[partition], before[partition] + len(events)))
        for event in events:
            assert partition_of.setdefault(event.key, partition) == partition  # same key -> same partition
            assert event.properties["product"] == "payments.transactions"
            assert event.properties["feed_range"] == "fr-0"
            assert event.timestamp_ms > 0
    for key in keys:
        mine = [e for e in read[partition_of[key]] if e.key == key]
        assert [e.properties["lsn"] for e in mine] == [str(n) for n in range(5)]  # per-key order
        assert all(f'"tag":"{tag}"'.encode() in e.body for e in mine)
    assert [(p, o) for p, o in placed] == [(partition_of[key], -1) for key, _, _ in records]


def test_end_offsets_count_what_was_published(transport: Any) -> None:
    before = transport.end_offsets()
    placed = transport.publish(_records(["k-a", "k-b", "k-c"], per_key=4, tag="ends"))
    after = transport.end_offsets()
    expected = dict(before)
    for partition, _ in placed:
        expected[partition] += 1
    assert after == expected


def test_commit_and_committed_through_the_file_store(transport: Any) -> None:
    assert transport.committed("curated-writer") == dict.fromkeys(range(PARTITIONS), 0)
    transport.commit("curated-writer", {0: 3, 2: 5})
    transport.commit("curated-writer", {0: 1})  # never moves backwards
    assert transport.committed("curated-writer") == {0: 3, 1: 0, 2: 5, 3: 0}
    assert transport.committed("$Default") == dict.fromkeys(range(PARTITIONS), 0)
    with pytest.raises(ValueError, match=r"partitions 0\.\.3"):
        transport.commit("curated-writer", {7: 1})


def test_batches_over_the_max_message_size_are_split(transport: Any, endpoint: Any) -> None:
    # 12 events of ~200 KB under one key: over the 1 MB link limit, so several batches (and multi-frame
    # transfers both ways, since frames are 64 KB).
    records = _records(["big-key"], per_key=12, tag="big", size=200_000)
    before = transport.end_offsets()
    transfers = endpoint.accepted_transfers

    transport.publish(records)

    assert endpoint.accepted_transfers - transfers >= 3
    read = _read_all(transport, before)
    (events,) = read.values()
    assert [e.properties["lsn"] for e in events] == [str(n) for n in range(12)]
    assert [e.body for e in events] == [body for _, body, _ in records]


def test_throttling_is_retried_without_loss_or_duplicates(transport: Any, endpoint: Any) -> None:
    tag = uuid.uuid4().hex
    records = _records([f"t-{i}" for i in range(3)], per_key=3, tag=tag)
    before = transport.end_offsets()
    rejected = endpoint.rejected

    endpoint.throttle_next(2)  # the next two sends are rejected with com.microsoft:server-busy
    transport.publish(records)

    assert endpoint.rejected - rejected == 2
    read = _read_all(transport, before)
    bodies = sorted(e.body for events in read.values() for e in events)
    assert bodies == sorted(body for _, body, _ in records)


def test_throttling_beyond_the_retries_is_a_transient_error(transport: Any, endpoint: Any) -> None:
    from meshkit.errors import TransientError

    stored = [len(endpoint.events(p)) for p in range(PARTITIONS)]
    endpoint.throttle_next(10)
    try:
        with pytest.raises(TransientError, match="server-busy"):
            transport.publish(_records(["never"], per_key=1, tag="x"))
    finally:
        endpoint.throttle_next(0)
    assert [len(endpoint.events(p)) for p in range(PARTITIONS)] == stored


def test_open_eventhubs_refuses_connection_strings_in_the_cloud(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipelines.transports.eventhubs import open_eventhubs
    from pipelines.transports.factory import TransportSpec

    secret = "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=s3cr3t"
    monkeypatch.setenv("MESHKIT_EVENTHUBS_CONNECTION_STRING", secret)
    spec = TransportSpec(
        "eventhubs", HUB, PARTITIONS, (("checkpoint_root", str(tmp_path)), ("namespace", "x"), ("profile", "cloud"))
    )
    with pytest.raises(ConfigError) as caught:
        open_eventhubs(spec)
    assert "s3cr3t" not in str(caught.value)
    monkeypatch.delenv("MESHKIT_EVENTHUBS_CONNECTION_STRING")
    no_namespace = TransportSpec(
        "eventhubs", HUB, PARTITIONS, (("checkpoint_root", str(tmp_path)), ("profile", "cloud"))
    )
    with pytest.raises(ConfigError, match="eventhubs_namespace"):
        open_eventhubs(no_namespace)


def test_open_eventhubs_with_the_emulator_connection_string(
    endpoint: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipelines.transports.factory import TransportSpec, open_transport

    monkeypatch.setenv("MESHKIT_EVENTHUBS_CONNECTION_STRING", endpoint.connection_string)
    spec = TransportSpec("eventhubs", HUB, PARTITIONS, (("checkpoint_root", str(tmp_path)), ("profile", "emulators")))
    transport = open_transport(spec)
    try:
        transport.commit("relay", {1: 2})
        assert transport.committed("relay")[1] == 2
        assert set(transport.end_offsets()) == set(range(PARTITIONS))
    finally:
        transport.close()


def test_rejected_credentials_are_a_config_error_naming_the_setting(endpoint: Any, tmp_path: Path) -> None:
    from pipelines.checkpoints.files import FileStore
    from pipelines.checkpoints.offsets import StoreOffsets
    from pipelines.transports.eventhubs import EventHubsTransport

    endpoint.cbs_status = 401  # the endpoint now refuses every token
    transport = EventHubsTransport(
        hub=HUB,
        partitions=PARTITIONS,
        offsets=StoreOffsets(FileStore(tmp_path), prefix="eventhubs/"),
        connection_string=endpoint.connection_string,
        max_retries=1,
        backoff_s=0.05,
    )
    try:
        with pytest.raises(ConfigError, match="MESHKIT_EVENTHUBS_CONNECTION_STRING") as caught:
            transport.end_offsets()
        assert "not-a-secret" not in str(caught.value)
    finally:
        endpoint.cbs_status = 202
        transport.close()


def test_azure_ad_token_credential_authenticates_with_a_jwt(endpoint: Any, tmp_path: Path) -> None:
    """The cloud path (namespace + TokenCredential, as DefaultAzureCredential provides) over the wire."""
    import time

    from azure.core.credentials import AccessToken

    from pipelines.checkpoints.files import FileStore
    from pipelines.checkpoints.offsets import StoreOffsets
    from pipelines.transports.eventhubs import EventHubsTransport

    scopes: list[tuple[str, ...]] = []

    class FakeIdentity:
        def get_token(self, *requested: str, **_kwargs: Any) -> AccessToken:
            scopes.append(requested)
            return AccessToken("aad-token", int(time.time()) + 3600)

    seen = len(endpoint.token_types)
    transport = EventHubsTransport(
        hub=HUB,
        partitions=PARTITIONS,
        offsets=StoreOffsets(FileStore(tmp_path), prefix="eventhubs/"),
        namespace=f"127.0.0.1:{endpoint.port}",
        credential=FakeIdentity(),
        client_options={"use_tls": False},  # the endpoint speaks plain AMQP; the service needs TLS
    )
    try:
        transport.publish([("aad-key", b"{}", {"product": "p"})])
    finally:
        transport.close()
    assert scopes and all(s == ("https://eventhubs.azure.net//.default",) for s in scopes)
    assert set(endpoint.token_types[seen:]) == {"jwt"}
