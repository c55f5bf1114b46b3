"""A throwaway local PostgreSQL cluster with `wal_level=logical`, for the demo and the tests: `initdb`
into a temporary folder, `postgres` on 127.0.0.1 and a free port, the unix socket in that folder, trust
auth for a role with REPLICATION. PostgreSQL refuses to run as root, so under root (CI containers) the
server runs as `nobody` through `setpriv`. `stop()` (`pg_ctl stop -m immediate`, then the process group
killed) always ends it; use it as a context manager so a failure cannot leave a server behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

USER = "meshkit_cdc"
DATABASE = "app"
BINARIES = ("initdb", "pg_ctl", "postgres")


def binaries_missing() -> list[str]:
    """The programs a local cluster needs that are not on PATH (`setpriv` too when running as root)."""
    needed = (*BINARIES, "setpriv") if os.geteuid() == 0 else BINARIES
    return [name for name in needed if shutil.which(name) is None]


def available() -> str | None:
    """None when a local cluster can be started here, else why not (for a message or a skip)."""
    missing = binaries_missing()
    if missing:
        return f"{', '.join(missing)} not on PATH"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    return None


def _as_server_user() -> list[str]:
    """The command prefix that drops root (PostgreSQL will not run as root); empty otherwise."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """One cluster in its own process group; `dsn()` connects as the replication-capable role `USER`.
    Without a `root` it works in a temporary folder that `stop()` removes."""

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self._owns_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="meshkit-pg-"))
        self.port = port if port is not None else _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, database: str = DATABASE, user: str = USER) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user={user} sslmode=disable"

    def connect(self, database: str = DATABASE, user: str = USER, autocommit: bool = True) -> Any:
        import psycopg2

        conn = psycopg2.connect(self.dsn(database, user))
        conn.autocommit = autocommit
        return conn

    def execute(self, sql: str, params: Any = None, database: str = DATABASE) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect(database)) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def start(self, timeout: float = 20.0) -> None:
        """initdb, configure, start and wait for connections; then create the database `DATABASE`.
        Raises `RuntimeError` (with the server log's tail) or `subprocess.CalledProcessError`."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")
        subprocess.run(
            [*_as_server_user(), "initdb", "-D", str(self.data_dir), "-U", USER, "--auth=trust", "--no-sync",
             "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True,
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            "fsync": "off",  # a throwaway cluster: durability of this machine's disk is not what it shows
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_sender_timeout": "10s",
            "shared_buffers": "32MB",
            "max_connections": "60",
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        with (self.data_dir / "pg_hba.conf").open("w", encoding="utf-8") as hba:
            hba.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")
            hba.write("local replication all trust\nhost replication all 127.0.0.1/32 trust\n")
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [*_as_server_user(), "postgres", "-D", str(self.data_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log_tail()}")
            try:
                self.execute("SELECT 1", database="postgres")
                break
            except Exception:  # not accepting connections yet
                time.sleep(0.05)
        else:
            raise RuntimeError(f"postgres did not accept connections within {timeout} s: {self.log_tail()}")
        self.execute(f"CREATE DATABASE {DATABASE}", database="postgres")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and remove a temporary folder."""
        if self.process is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [*_as_server_user(), "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w",
                     "-t", "10"],
                    capture_output=True, timeout=15, check=False,
                )  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
