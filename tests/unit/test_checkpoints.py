"""FileStore (the local profile's checkpoint store) and StoreOffsets over it."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time
from pathlib import Path

import pytest

from meshkit.config import Settings
from meshkit.errors import ConfigError, NameError_
from meshkit.secrets import STORAGE_CONNECTION_STRING_ENV
from pipelines.checkpoints import files
from pipelines.checkpoints.factory import NamespacedStore, open_store
from pipelines.checkpoints.files import FileStore, document_key
from pipelines.checkpoints.offsets import StoreOffsets
from pipelines.checkpoints.store import Document, PreconditionFailed


def test_conditional_writes(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cp")
    assert store.get("leases/a") is None

    first = store.put("leases/a", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put("leases/a", b"other", if_none_match=True)
    document = store.get("leases/a")
    assert document is not None
    assert (document.data, document.etag) == (b"one", first)

    second = store.put("leases/a", b"two", if_match=first)
    assert second != first
    with pytest.raises(PreconditionFailed, match="changed"):
        store.put("leases/a", b"stale", if_match=first)
    with pytest.raises(PreconditionFailed):
        store.put("leases/missing", b"x", if_match=second)
    assert store.get("leases/missing") is None

    # writing earlier content back still yields a new ETag (no ABA on if_match)
    third = store.put("leases/a", b"one")
    assert third not in {first, second}
    document = store.get("leases/a")
    assert document is not None
    assert document.data == b"one"


def test_list_by_prefix_in_name_order(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for name in ["leases/b", "leases/a", "leases-x/c", "offsets/g", "top"]:
        store.put(name, name.encode())
    assert [d.name for d in store.list("leases/")] == ["leases/a", "leases/b"]
    assert [d.name for d in store.list("leases")] == ["leases-x/c", "leases/a", "leases/b"]
    assert [d.name for d in store.list("")] == ["leases-x/c", "leases/a", "leases/b", "offsets/g", "top"]
    assert [d.data for d in store.list("offsets/")] == [b"offsets/g"]
    assert list(store.list("nothing/")) == []
    # no temporary or lock files are left behind or listed
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.parametrize("name", ["", "../x", "a/../../etc/passwd", "/abs", "a//b", ".hidden", "a/.", "a b", "a\\b"])
def test_bad_names_are_rejected_with_the_rule(tmp_path: Path, name: str) -> None:
    store = FileStore(tmp_path / "cp")
    with pytest.raises(NameError_) as error:
        store.put(name, b"x")
    assert "invalid document name" in error.value.message
    assert "Document names are" in error.value.message
    with pytest.raises(NameError_):
        store.get(name)
    assert not (tmp_path / "x").exists()


def test_a_name_cannot_be_both_a_document_and_a_folder(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put("a/b", b"1")
    with pytest.raises(NameError_, match="clashes with 'a'"):
        store.put("a", b"2")
    with pytest.raises(NameError_, match="clashes with 'a/b'"):
        store.put("a/b/c", b"3")
    assert store.get("a") is None
    assert store.get("a/b/c") is None


def test_document_key_makes_any_string_a_safe_segment(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for value in ["..", "$Default", "a/b", '{"min":"","max":"FF"}', "ção"]:
        store.put("k/" + document_key(value), value.encode())
    assert sorted(d.data.decode() for d in store.list("k/")) == sorted(
        ["..", "$Default", "a/b", '{"min":"","max":"FF"}', "ção"]
    )
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["k"]


def _race(root: str, rounds: int, who: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    """Each round: read the document, wait until both processes have read it, then write conditionally."""
    real_write = files._write_atomic

    def slow_write(path: Path, content: bytes) -> None:
        time.sleep(0.005)  # widens the check-then-write window so a missing lock would show as two winners
        real_write(path, content)

    files._write_atomic = slow_write  # this child process only
    store = FileStore(Path(root))
    for index in range(rounds):
        barrier.wait()
        document = store.get("race")
        assert document is not None
        barrier.wait()
        try:
            store.put("race", f"{document.data.decode()}|{index}:{who}".encode(), if_match=document.etag)
        except PreconditionFailed:
            continue
        with (Path(root) / f"wins-{who}.txt").open("a") as wins:
            wins.write(f"{index}\n")


def test_concurrent_writers_in_two_processes_exactly_one_wins_each_round(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put("race", b"start")
    rounds = 20
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_race, args=(str(tmp_path), rounds, who, barrier)) for who in "AB"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    won = {
        who: (tmp_path / f"wins-{who}.txt").read_text().split() if (tmp_path / f"wins-{who}.txt").exists() else []
        for who in "AB"
    }
    assert sorted(won["A"] + won["B"], key=int) == [str(i) for i in range(rounds)]  # one winner per round
    document = store.get("race")
    assert document is not None
    entries = document.data.decode().split("|")[1:]
    assert [entry.split(":")[0] for entry in entries] == [str(i) for i in range(rounds)]
    assert [entry.split(":")[1] for entry in entries] == ["A" if str(i) in won["A"] else "B" for i in range(rounds)]
    assert document.etag.startswith(f"{rounds + 1}-")


def test_offsets_merge_and_never_go_backwards(tmp_path: Path) -> None:
    offsets = StoreOffsets(FileStore(tmp_path), "offsets/")
    assert offsets.committed("$Default") == {}
    offsets.commit("$Default", {0: 10, 1: 5})
    offsets.commit("$Default", {1: 3, 2: 7})
    assert offsets.committed("$Default") == {0: 10, 1: 5, 2: 7}
    offsets.commit("other", {0: 1})
    assert offsets.committed("other") == {0: 1}
    assert offsets.committed("$Default")[0] == 10
    with pytest.raises(ValueError, match="non-negative"):
        offsets.commit("other", {0: -1})


def test_offsets_commit_retries_a_lost_race(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    offsets = StoreOffsets(store, "offsets/")
    offsets.commit("g", {0: 1})
    real_get = store.get
    interfered: list[bool] = []

    def get_then_interfere(name: str) -> Document | None:  # another consumer commits between our read and our write
        document = real_get(name)
        if not interfered:
            interfered.append(True)
            StoreOffsets(FileStore(tmp_path), "offsets/").commit("g", {1: 9})
        return document

    store.get = get_then_interfere  # type: ignore[method-assign]
    offsets.commit("g", {0: 4})
    assert StoreOffsets(FileStore(tmp_path), "offsets/").committed("g") == {0: 4, 1: 9}


def test_open_store_file_profile_keeps_a_folder_per_namespace(settings: Settings) -> None:
    store = open_store(settings, "payments-transactions")
    assert isinstance(store, FileStore)
    store.put("leases/r0", b"x")
    assert (settings.checkpoint_dir / "payments-transactions" / "leases" / "r0").is_file()
    with pytest.raises(NameError_):
        open_store(settings, "../elsewhere")


def test_open_store_blob_names_the_missing_setting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_CONNECTION_STRING_ENV, raising=False)
    blob = settings.model_copy(update={"checkpoint_store": "blob", "profile": "cloud"})
    with pytest.raises(ConfigError, match="blob_account_url is not set"):
        open_store(blob, "payments-transactions")
    bad_container = blob.model_copy(update={"checkpoint_container": "Bad_Name"})
    with pytest.raises(ConfigError, match="invalid checkpoint_container 'Bad_Name'"):
        open_store(bad_container, "payments-transactions")


def test_open_store_blob_refuses_and_never_echoes_connection_strings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "AccountKey=c2VjcmV0LWtleQ==;NotAConnectionString"
    monkeypatch.setenv(STORAGE_CONNECTION_STRING_ENV, secret)
    cloud = settings.model_copy(update={"checkpoint_store": "blob", "profile": "cloud"})
    with pytest.raises(ConfigError, match="profile is 'cloud'") as error:
        open_store(cloud, "p")
    assert secret not in error.value.message
    emulators = settings.model_copy(update={"checkpoint_store": "blob", "profile": "emulators"})
    with pytest.raises(ConfigError, match="not a valid storage connection string") as error:
        open_store(emulators, "p")
    assert "c2VjcmV0" not in error.value.message


def test_namespaced_store_prefixes_and_strips_names(tmp_path: Path) -> None:
    inner = FileStore(tmp_path)
    a, b = NamespacedStore(inner, "a"), NamespacedStore(inner, "b")
    etag = a.put("leases/r0", b"1", if_none_match=True)
    b.put("leases/r0", b"2")
    document = a.get("leases/r0")
    assert document is not None
    assert (document.name, document.data, document.etag) == ("leases/r0", b"1", etag)
    assert [(d.name, d.data) for d in b.list("leases/")] == [("leases/r0", b"2")]
    assert sorted(d.name for d in inner.list("")) == ["a/leases/r0", "b/leases/r0"]
