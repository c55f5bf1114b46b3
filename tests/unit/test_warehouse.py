"""The DuckDB warehouse: changelog once per (key, LSN), current state by MERGE that never regresses."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.sinks.warehouse import DuckDBWarehouse, WarehouseTables

T = WarehouseTables.of("customers", "users")


def changes(rows: list[tuple[str, int, str, str | None]]) -> pa.Table:
    return pa.table(
        {
            "name": [r[3] for r in rows],
            "_key": [r[0] for r in rows],
            "_lsn": pa.array([r[1] for r in rows], pa.int64()),
            "_op": [r[2] for r in rows],
            "_partition": pa.array([0] * len(rows), pa.int32()),
            "_offset": pa.array(list(range(len(rows))), pa.int64()),
        }
    )


def current(wh: DuckDBWarehouse) -> dict[str, tuple[str | None, int]]:
    t = wh.read(T, "current").to_pydict()
    return {k: (n, lsn) for k, n, lsn in zip(t["_key"], t["name"], t["_lsn"], strict=True)}


def test_merge_applies_updates_and_deletes(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    r = wh.apply_changes(T, changes([("a", 1, "create", "A1"), ("a", 2, "update", "A2"), ("b", 1, "create", "B1")]))
    assert (r.changelog_rows, r.replayed) == (3, 0)
    assert current(wh) == {"a": ("A2", 2), "b": ("B1", 1)}
    wh.apply_changes(T, changes([("b", 5, "delete", None)]))
    assert current(wh) == {"a": ("A2", 2)}


def test_replays_and_late_events_never_regress(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    first = changes(
        [("a", 1, "create", "A1"), ("a", 3, "update", "A3"), ("b", 1, "create", "B1"), ("b", 2, "delete", None)]
    )
    wh.apply_changes(T, first)
    again = wh.apply_changes(T, first)
    assert (again.changelog_rows, again.replayed) == (0, 4)
    late = wh.apply_changes(T, changes([("a", 2, "update", "A2-late"), ("b", 1, "create", "B1")]))
    assert late.changelog_rows == 1
    assert current(wh) == {"a": ("A3", 3)}  # deleted b stays deleted, a keeps its newest version
    log = wh.read(T, "changelog")
    pairs = list(zip(log.column("_key").to_pylist(), log.column("_lsn").to_pylist(), strict=True))
    assert len(pairs) == len(set(pairs)) == 5


def deleted_images(wh: DuckDBWarehouse) -> dict[tuple[str, int], str | None]:
    log = wh.read(T, "changelog").to_pydict()
    return {
        (k, lsn): name
        for k, lsn, op, name in zip(log["_key"], log["_lsn"], log["_op"], log["name"], strict=True)
        if op == "delete"
    }


def test_a_delete_carries_the_image_it_deleted(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.apply_changes(T, changes([("a", 1, "create", "A1"), ("a", 2, "update", "A2"), ("b", 1, "create", "B1")]))
    # a later batch: the previous image comes from the key's newest earlier changelog row
    wh.apply_changes(T, changes([("a", 7, "delete", None)]))
    # the same batch: create then delete of a new key
    wh.apply_changes(T, changes([("c", 1, "create", "C1"), ("c", 2, "delete", None)]))
    assert deleted_images(wh) == {("a", 7): "A2", ("c", 2): "C1"}
    assert set(current(wh)) == {"b"}
    again = wh.apply_changes(T, changes([("a", 7, "delete", None)]))  # a replayed delete changes nothing
    assert again.replayed == 1
    assert deleted_images(wh)[("a", 7)] == "A2"


def test_a_delete_falls_back_to_the_current_row_when_history_is_gone(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.apply_changes(T, changes([("b", 3, "create", "B3")]))
    with wh.connect() as con:  # changelog history expired (partition expiration in BigQuery)
        con.execute(f"DELETE FROM {T.name('changelog')}")
    wh.apply_changes(T, changes([("b", 9, "delete", None), ("z", 4, "delete", None)]))
    assert deleted_images(wh) == {("b", 9): "B3", ("z", 4): None}  # z was never seen: nothing to attach
