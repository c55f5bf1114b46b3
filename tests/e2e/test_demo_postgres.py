"""The demo's second source: customers/users switched to PostgreSQL (a throwaway local cluster), relayed
by logical replication and run; its current-state table must equal the PostgreSQL table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import require_emulator

from meshkit.config import load_settings
from pipelines.demo_postgres import run_users_from_postgres
from pipelines.sources.postgres.local_server import available

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_users_from_postgres_equal_the_table(tmp_path: Path) -> None:
    reason = available()
    require_emulator("postgresql", reason is None, reason or "")
    settings = load_settings(ROOT, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    result = run_users_from_postgres(settings, events=800, seed=5)
    assert result is not None
    assert result.equal, result.differences
    assert result.rows_in_current == result.rows_in_postgres > 0
    assert result.snapshot_rows > 0 and result.changes_relayed > 0  # both the snapshot and the stream
    assert result.events_in == result.snapshot_rows + result.changes_relayed  # nothing lost on the bus
    con = duckdb.connect(str(result.warehouse_path), read_only=True)
    try:
        ops = dict(con.sql("SELECT _op, count(*) FROM customers.users_changelog GROUP BY 1").fetchall())
    finally:
        con.close()
    assert ops.get("delete", 0) > 0, ops  # deletes (and key updates) reached the warehouse as deletes


def test_without_postgres_the_demo_part_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no initdb, pg_ctl or postgres here
    settings = load_settings(ROOT, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    assert run_users_from_postgres(settings, events=10, seed=1) is None
    assert not (settings.workspace_dir / "postgres-demo").exists()
