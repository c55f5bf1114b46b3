"""Checkpoints on Azure Blob (Azurite): BlobStore's conditional writes, leases between two processes with
a SIGKILLed holder taken over within the lease expiry, and consumer-group offsets."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azurite_service import AzuriteBlob, azurite  # noqa: F401
from conftest import ROOT

from meshkit.config import Settings, load_settings
from meshkit.errors import NameError_
from meshkit.secrets import STORAGE_CONNECTION_STRING_ENV
from pipelines.checkpoints.blob import BlobStore
from pipelines.checkpoints.factory import open_store
from pipelines.checkpoints.leases import LeaseLost, LeaseManager
from pipelines.checkpoints.offsets import StoreOffsets
from pipelines.checkpoints.store import PreconditionFailed

pytestmark = pytest.mark.emulator

LEASE_SECONDS = 2.0
RANGES = ["r0", "r1", "r2", "r3"]


def container_client(service: AzuriteBlob, name: str) -> ContainerClient:
    return BlobServiceClient.from_connection_string(service.connection_string).get_container_client(name)


@pytest.fixture
def store(azurite: AzuriteBlob) -> Iterator[BlobStore]:  # noqa: F811
    blob_store = BlobStore(container_client(azurite, azurite.container_name()))
    try:
        yield blob_store
    finally:
        blob_store.close()


def emulator_settings(
    azurite: AzuriteBlob,  # noqa: F811
    container: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Settings:
    monkeypatch.setenv(STORAGE_CONNECTION_STRING_ENV, azurite.connection_string)
    overrides = {
        "profile": "emulators",
        "checkpoint_store": "blob",
        "checkpoint_container": container,
        "workspace": str(tmp_path / "ws"),
    }
    return load_settings(ROOT, overrides=overrides, environ={})


def test_blob_store_conditional_writes(store: BlobStore) -> None:
    assert store.get("leases/a") is None
    first = store.put("leases/a", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailed, match="already exists"):
        store.put("leases/a", b"other", if_none_match=True)
    document = store.get("leases/a")
    assert document is not None
    assert (document.data, document.etag) == (b"one", first)

    second = store.put("leases/a", b"two", if_match=first)
    assert second != first
    with pytest.raises(PreconditionFailed):
        store.put("leases/a", b"stale", if_match=first)
    with pytest.raises(PreconditionFailed):
        store.put("leases/missing", b"x", if_match=second)
    assert store.get("leases/missing") is None
    document = store.get("leases/a")
    assert document is not None
    assert (document.data, document.etag) == (b"two", second)

    third = store.put("leases/a", b"three")  # unconditional
    assert third not in {first, second}

    for name in ["leases/c", "leases/b", "leases-x/d", "offsets/g"]:
        store.put(name, name.encode())
    assert [d.name for d in store.list("leases/")] == ["leases/a", "leases/b", "leases/c"]
    assert [d.data for d in store.list("leases-")] == [b"leases-x/d"]
    with pytest.raises(NameError_):
        store.put("../escape", b"x")


def test_blob_store_creates_its_container_once(azurite: AzuriteBlob) -> None:  # noqa: F811
    name = azurite.container_name()
    BlobStore(container_client(azurite, name)).put("x", b"1")
    again = BlobStore(container_client(azurite, name))  # an existing container is fine
    document = again.get("x")
    assert document is not None
    assert document.data == b"1"


def test_open_store_namespaces_blob_names(
    azurite: AzuriteBlob,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    container = azurite.container_name()
    settings = emulator_settings(azurite, container, monkeypatch, tmp_path)
    payments = open_store(settings, "payments-transactions")
    users = open_store(settings, "customers-users")
    payments.put("leases/r0", b"p")
    users.put("leases/r0", b"u")
    assert [(d.name, d.data) for d in payments.list("leases/")] == [("leases/r0", b"p")]
    raw = [blob.name for blob in container_client(azurite, container).list_blobs()]
    assert raw == ["customers-users/leases/r0", "payments-transactions/leases/r0"]
    payments.close()
    users.close()


def test_offsets_over_blob(store: BlobStore) -> None:
    offsets = StoreOffsets(store, "offsets/")
    assert offsets.committed("$Default") == {}
    offsets.commit("$Default", {0: 10, 1: 4})
    offsets.commit("$Default", {0: 7, 2: 1})  # 0 never moves backwards
    assert offsets.committed("$Default") == {0: 10, 1: 4, 2: 1}
    assert StoreOffsets(store, "offsets/").committed("$Default") == {0: 10, 1: 4, 2: 1}


def _holder(connection_string: str, container: str, ready: multiprocessing.connection.Connection) -> None:
    """A relay-like lease holder: takes every range, then renews and checkpoints until killed."""
    client = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)
    manager = LeaseManager(BlobStore(client), "leases/", "holder", LEASE_SECONDS)
    manager.ensure(RANGES)
    manager.balance()
    ready.send(sorted(manager.owned()))
    step = 0
    while True:
        step += 1
        for range_id in list(manager.renew()):
            with contextlib.suppress(LeaseLost):  # stolen since the renewal: the relay drops the range
                manager.checkpoint(range_id, {"continuation": f"holder-{step}"})
        time.sleep(LEASE_SECONDS / 5)  # a relay renews well inside its lease


def test_a_killed_holder_is_taken_over_within_the_lease_expiry(azurite: AzuriteBlob) -> None:  # noqa: F811
    container = azurite.container_name()
    BlobStore(container_client(azurite, container))
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    holder = context.Process(target=_holder, args=(azurite.connection_string, container, sender), daemon=True)
    holder.start()
    try:
        assert receiver.poll(30), "the holder process did not take its leases"
        assert receiver.recv() == RANGES

        taker = LeaseManager(BlobStore(container_client(azurite, container)), "leases/", "taker", LEASE_SECONDS)
        # while the holder is alive the taker steals at most one lease per balance, up to its fair share
        # (2 of 4); a steal that races the holder's renewal simply fails and is tried on the next balance
        deadline = time.monotonic() + 10
        while len(taker.owned()) < 2 and time.monotonic() < deadline:
            before = len(taker.owned())
            assert len(taker.balance()) - before <= 1
            time.sleep(0.05)
        assert len(taker.owned()) == 2
        assert len(taker.balance()) == 2  # fair share reached: no more steals
        assert holder.is_alive()

        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.join(10)
        last_states = {lease.range_id: lease.state for lease in taker.all() if lease.owner == "holder"}
        assert len(last_states) == 2
        assert len(taker.balance()) == 2  # not before the holder's leases expire

        while len(taker.balance()) < len(RANGES) and time.monotonic() - killed_at < 3 * LEASE_SECONDS:
            taker.renew()
            time.sleep(0.05)
        taken_after = time.monotonic() - killed_at
        owned = taker.owned()
        assert sorted(owned) == RANGES
        assert taken_after <= LEASE_SECONDS + 0.5
        for range_id, state in last_states.items():  # the taker resumes from the holder's last checkpoint
            assert owned[range_id].state == state
            assert state["continuation"].startswith("holder-")
        assert taker.ownership_changes == 4
        assert all(lease.owner == "taker" for lease in taker.all())
    finally:
        if holder.is_alive():
            holder.kill()
        holder.join(10)
