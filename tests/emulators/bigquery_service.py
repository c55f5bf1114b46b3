"""local-bigquery (BigQuery emulator, PyPI: FastAPI + DuckDB) for emulator tests, on free 127.0.0.1 ports.

Import the fixtures into a test module: `from bigquery_service import bigquery  # noqa: F401` (with
`from gcs_service import gcs  # noqa: F401`: load jobs read gs:// from the GCS emulator, as BigQuery
reads GCS in the cloud). The emulator lives in `.emulators/bigquery-venv` (Python 3.13, with DuckDB's
extensions from PyPI), built by `scripts/install-gcp-emulators.sh` (run here when it is missing).
While the fixture runs, `BIGQUERY_EMULATOR_HOST` points google-cloud-bigquery at it.
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
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import ROOT, require_emulator
from gcs_service import GcsEmulator, die_with_parent

if TYPE_CHECKING:
    from google.cloud import bigquery, bigquery_storage_v1

VENV = ROOT / ".emulators" / "bigquery-venv"
BINARY = VENV / "bin" / "local-bigquery"
INSTALLER = ROOT / "scripts" / "install-gcp-emulators.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BigQueryEmulator:
    """One `local-bigquery` process (REST + Storage Read/Write gRPC) in its own process group."""

    def __init__(self, binary: Path, storage_emulator_host: str | None) -> None:
        self.binary = binary
        self.port = _free_port()
        self.grpc_port = _free_port()
        self.storage_emulator_host = storage_emulator_host
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="local-bigquery-"))
        self.log = self.workdir / "local-bigquery.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def project(self) -> str:
        """A fresh project id: the emulator accepts any, so tests sharing it stay apart."""
        return f"meshkit-{uuid.uuid4().hex[:12]}"

    def client(self, project: str) -> bigquery.Client:
        """A real google-cloud-bigquery client on the emulator, with anonymous credentials (no discovery)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
        )

    def storage_read_client(self) -> bigquery_storage_v1.BigQueryReadClient:
        """The Storage Read API on the emulator's plain gRPC port (what `to_arrow` uses for big reads)."""
        import grpc
        from google.cloud import bigquery_storage_v1
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

        channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        return bigquery_storage_v1.BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.storage_emulator_host:
            env["STORAGE_EMULATOR_HOST"] = self.storage_emulator_host
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--grpc-port", str(self.grpc_port), "--data-dir", str(self.workdir / "data"),
                 "--project", "meshkit-test"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, env=env, start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call, see gcs_service
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        probe = f"{self.endpoint}/bigquery/v2/projects/meshkit-test/datasets"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"local-bigquery exited with {self.process.returncode}: {self._tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(probe, timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(f"local-bigquery did not answer on {self.endpoint} within {timeout} s: {self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def _install() -> str | None:
    """Run the project's installer when the emulator is missing; the reason it is still missing, or None."""
    if BINARY.exists():
        return None
    result = subprocess.run(
        ["bash", str(INSTALLER)], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    if BINARY.exists():
        return None
    said = result.stderr.strip().splitlines()
    return f"{BINARY} is missing after {INSTALLER.name} (exit {result.returncode}): {said[-1] if said else ''}"


@contextlib.contextmanager
def running_bigquery(gcs: GcsEmulator | None = None) -> Iterator[BigQueryEmulator]:
    """Start the emulator (skipping, or failing under MESHKIT_REQUIRE_EMULATORS=1, if it cannot), point
    BIGQUERY_EMULATOR_HOST at it, and always undo that and stop it."""
    missing = _install()
    if missing is not None:
        require_emulator("local-bigquery", False, missing)
    service = BigQueryEmulator(BINARY, gcs.endpoint if gcs else None)
    try:
        service.start()
    except (OSError, RuntimeError) as exc:
        service.stop()
        require_emulator("local-bigquery", False, f"it did not start: {exc}")
    saved = os.environ.get("BIGQUERY_EMULATOR_HOST")
    os.environ["BIGQUERY_EMULATOR_HOST"] = service.endpoint
    try:
        yield service
    finally:
        if saved is None:
            os.environ.pop("BIGQUERY_EMULATOR_HOST", None)
        else:
            os.environ["BIGQUERY_EMULATOR_HOST"] = saved
        service.stop()


@pytest.fixture(scope="session")
def bigquery(gcs: GcsEmulator) -> Iterator[BigQueryEmulator]:
    """The BigQuery emulator shared by the session, reading gs:// from the GCS emulator; use
    `project()` per test to keep tests apart."""
    with running_bigquery(gcs) as service:
        yield service
