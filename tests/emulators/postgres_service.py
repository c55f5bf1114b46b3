"""The throwaway PostgreSQL cluster for change-data-capture tests, as a session fixture over
`pipelines.sources.postgres.local_server.LocalPostgres` (the demo starts the same cluster): 127.0.0.1,
a free port, `wal_level=logical`, stopped even when a test fails.

Import the fixture into a test module: `from postgres_service import postgres_server  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

import pytest
from conftest import require_emulator

from pipelines.sources.postgres.local_server import (
    BINARIES,
    DATABASE,
    USER,
    LocalPostgres,
    available,
    binaries_missing,
)

PostgresServer = LocalPostgres  # the name the tests know it by

__all__ = ["BINARIES", "DATABASE", "USER", "PostgresServer", "binaries_missing", "postgres_server", "running_postgres"]


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster (skipping, or failing under MESHKIT_REQUIRE_EMULATORS=1, if it cannot) and always stop it."""
    reason = available()
    if reason is not None:
        require_emulator("postgresql", False, f"{reason} (install the PostgreSQL 15 server)")
    server = LocalPostgres()
    try:
        try:
            server.start()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            require_emulator("postgresql", False, f"the cluster did not start: {exc}")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One cluster for the session; tests keep apart by table, publication and slot names."""
    with running_postgres() as server:
        yield server
