"""Leases over feed ranges (LeaseManager over FileStore) with a fake clock: balance, expiry, takeover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.checkpoints.files import FileStore
from pipelines.checkpoints.leases import LeaseLost, LeaseManager
from pipelines.checkpoints.store import PreconditionFailed

LEASE = 30.0
RANGES = [f"range-{i}" for i in range(8)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def managers(root: Path, clock: FakeClock, *owners: str) -> list[LeaseManager]:
    return [LeaseManager(FileStore(root), "leases/", owner, LEASE, clock=clock) for owner in owners]


def settle(group: list[LeaseManager], rounds: int = 20) -> None:
    for _ in range(rounds):
        for manager in group:
            manager.renew()
            manager.balance()


def assert_one_owner_each(group: list[LeaseManager], ranges: list[str]) -> None:
    owned = [set(manager.owned()) for manager in group]
    assert sorted(set().union(*owned)) == sorted(ranges)
    assert sum(len(o) for o in owned) == len(ranges)  # disjoint
    stored = {lease.range_id: lease.owner for lease in group[0].all()}
    for manager, ranges_owned in zip(group, owned, strict=True):
        assert all(stored[r] == manager.owner for r in ranges_owned)


def test_three_owners_converge_to_a_fair_split(tmp_path: Path, clock: FakeClock) -> None:
    group = managers(tmp_path, clock, "a", "b", "c")
    for manager in group:
        manager.ensure(RANGES)
    assert len(group[0].all()) == 8  # one document per range, even though all three created them

    settle(group)
    assert sorted(len(m.owned()) for m in group) == [2, 3, 3]
    assert_one_owner_each(group, RANGES)

    changes = [m.ownership_changes for m in group]
    settle(group)  # stable: no more moves
    assert [m.ownership_changes for m in group] == changes


def test_a_new_owner_steals_one_lease_per_balance(tmp_path: Path, clock: FakeClock) -> None:
    a, b = managers(tmp_path, clock, "a", "b")
    a.ensure(RANGES)
    assert len(a.balance()) == 8
    assert a.ownership_changes == 8

    for expected in [1, 2, 3, 4, 4]:
        assert len(b.balance()) == expected
    assert b.ownership_changes == 4

    assert len(a.renew()) == 4  # the four stolen leases are dropped and counted as lost
    assert a.ownership_changes == 12
    assert_one_owner_each([a, b], RANGES)


def test_fewer_ranges_than_a_fair_ceiling_still_reach_every_owner(tmp_path: Path, clock: FakeClock) -> None:
    group = managers(tmp_path, clock, "a", "b", "c")
    group[0].ensure(RANGES[:4])
    settle(group)
    assert sorted(len(m.owned()) for m in group) == [1, 1, 2]
    assert_one_owner_each(group, RANGES[:4])


def test_a_silent_owner_loses_its_leases_after_expiry(tmp_path: Path, clock: FakeClock) -> None:
    a, b, c = group = managers(tmp_path, clock, "a", "b", "c")
    a.ensure(RANGES)
    settle(group)
    c_ranges = set(c.owned())
    assert c_ranges
    c.checkpoint(sorted(c_ranges)[0], {"continuation": "c-last"})
    c_last_write = clock()

    # c stops renewing (crashed or paused); a and b renew every lease_seconds / 3 and rebalance
    taken_at = None
    while clock() < c_last_write + 2 * LEASE:
        clock.advance(LEASE / 3)
        for manager in (a, b):
            manager.renew()
            manager.balance()
        if taken_at is None and len(a.owned()) + len(b.owned()) == 8:
            taken_at = clock()
    assert taken_at is not None
    assert taken_at <= c_last_write + LEASE + LEASE / 3  # within the lease expiry plus one renewal interval
    assert sorted(len(m.owned()) for m in (a, b)) == [4, 4]
    assert_one_owner_each([a, b], RANGES)
    assert c.owned() == {}  # by its own clock c knows its leases expired

    # the new owner resumes from c's last checkpoint
    resumed = sorted(c_ranges)[0]
    new_owner = a if resumed in a.owned() else b
    assert new_owner.owned()[resumed].state == {"continuation": "c-last"}

    # c wakes up: its checkpoint fails and does not overwrite the new owner's state
    new_owner.checkpoint(resumed, {"continuation": "new-owner"})
    before = c.ownership_changes
    with pytest.raises(LeaseLost, match=f"lost the lease of range '{resumed}' to '{new_owner.owner}'"):
        c.checkpoint(resumed, {"continuation": "stale"})
    assert c.ownership_changes == before + 1
    stored = {lease.range_id: lease for lease in a.all()}
    assert stored[resumed].state == {"continuation": "new-owner"}
    assert stored[resumed].owner == new_owner.owner
    with pytest.raises(LeaseLost, match="does not hold"):
        c.checkpoint(resumed, {"continuation": "stale"})


def test_checkpoint_after_a_steal_raises_lease_lost(tmp_path: Path, clock: FakeClock) -> None:
    a, b = managers(tmp_path, clock, "a", "b")
    a.ensure(["r1", "r2"])
    a.balance()
    a.checkpoint("r1", {"continuation": "t1", "phase": "changes"})
    b.balance()  # b needs 1, a holds 2 > 1: b steals r1 (the first of a's ranges)
    assert set(b.owned()) == {"r1"}
    assert b.owned()["r1"].state == {"continuation": "t1", "phase": "changes"}

    with pytest.raises(LeaseLost):
        a.checkpoint("r1", {"continuation": "t2", "phase": "changes"})
    assert set(a.owned()) == {"r2"}
    assert {lease.range_id: lease.state for lease in a.all()}["r1"]["continuation"] == "t1"
    assert a.checkpoint("r2", {"continuation": "x"}).owner == "a"


def test_release_hands_leases_over_at_once_with_their_state(tmp_path: Path, clock: FakeClock) -> None:
    a, b = managers(tmp_path, clock, "a", "b")
    a.ensure(RANGES)
    a.balance()
    for range_id in RANGES:
        a.checkpoint(range_id, {"continuation": f"tok-{range_id}"})
    a.release()
    assert a.owned() == {}
    assert all(lease.owner is None and lease.expires_at == 0 for lease in a.all())

    assert len(b.balance()) == 8  # no waiting for expiry
    assert {r: lease.state["continuation"] for r, lease in b.owned().items()} == {r: f"tok-{r}" for r in RANGES}


def test_lease_document_format(tmp_path: Path, clock: FakeClock) -> None:
    store = FileStore(tmp_path)
    (manager,) = managers(tmp_path, clock, "relay-1")
    manager.ensure(['{"min":"","max":"FF"}'])
    manager.balance()
    manager.checkpoint('{"min":"","max":"FF"}', {"continuation": "c1"})
    (document,) = store.list("leases/")
    body = json.loads(document.data)
    assert body == {
        "rangeId": '{"min":"","max":"FF"}',
        "owner": "relay-1",
        "expiresAt": clock() + LEASE,
        "state": {"continuation": "c1"},
        "version": 2,
    }


def test_a_write_whose_response_was_lost_is_recognised_as_ours(tmp_path: Path, clock: FakeClock) -> None:
    store = FileStore(tmp_path)

    class LostResponse(FileStore):
        """The write lands, then the caller sees a failed condition (as after an SDK retry of a lost reply)."""

        fail_next = False

        def put(self, name: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
            etag = super().put(name, data, if_match=if_match, if_none_match=if_none_match)
            if self.fail_next:
                self.fail_next = False
                raise PreconditionFailed("simulated")
            return etag

    flaky = LostResponse(tmp_path)
    manager = LeaseManager(flaky, "leases/", "a", LEASE, clock=clock)
    manager.ensure(["r"])
    manager.balance()
    flaky.fail_next = True
    lease = manager.checkpoint("r", {"continuation": "c2"})
    assert lease.owner == "a"
    assert manager.ownership_changes == 1
    stored = {lease.range_id: lease for lease in LeaseManager(store, "leases/", "x", LEASE, clock=clock).all()}
    assert stored["r"].state == {"continuation": "c2"}
    assert stored["r"].etag == manager.owned()["r"].etag
