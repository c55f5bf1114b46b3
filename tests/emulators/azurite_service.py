"""Azurite (Azure Blob emulator, npm) for emulator tests: in memory, on a free 127.0.0.1 port.

Import the fixture into a test module: `from azurite_service import azurite  # noqa: F401`.
The binary comes from `scripts/install-emulators.sh` (run here when it is missing).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, require_emulator

BINARY = ROOT / ".emulators" / "node" / "node_modules" / ".bin" / "azurite-blob"
# A throwaway account made up per test session and given to Azurite through AZURITE_ACCOUNTS, so no
# key (not even the emulator's published development key) is written in the repository.
ACCOUNT = "meshkittest"
ACCOUNT_KEY = base64.b64encode(secrets.token_bytes(64)).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AzuriteBlob:
    """One `azurite-blob` process (in memory) on a free 127.0.0.1 port, in its own process group."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        self.log = self.workdir / "azurite.log"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def container_name(self) -> str:
        """A fresh container name, so tests sharing the session's Azurite stay apart."""
        return f"test-{uuid.uuid4().hex[:20]}"

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), "--inMemoryPersistence", "--blobHost", "127.0.0.1",
                 "--blobPort", str(self.port), "--skipApiVersionCheck", "--silent", "--loose",
                 "--disableTelemetry"],  # no internet here: telemetry would only log failed uploads
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True,
                env={**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{ACCOUNT_KEY}"},
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"azurite did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def _install() -> str | None:
    """Run the project's installer when the binary is missing; the reason it is still missing, or None."""
    if BINARY.exists():
        return None
    if shutil.which("node") is None:
        return "node is not installed"
    script = ROOT / "scripts" / "install-emulators.sh"
    result = subprocess.run(["bash", str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if BINARY.exists():
        return None
    return f"{BINARY} is missing after {script.name} (exit {result.returncode}): {result.stderr.strip()[-500:]}"


@contextlib.contextmanager
def running_azurite() -> Iterator[AzuriteBlob]:
    """Start Azurite (skipping, or failing under MESHKIT_REQUIRE_EMULATORS=1, if it cannot) and always stop it."""
    missing = _install()
    if missing is not None:
        require_emulator("azurite", False, missing)
    service = AzuriteBlob(BINARY)
    try:
        service.start()
    except (OSError, RuntimeError) as exc:
        service.stop()
        require_emulator("azurite", False, f"azurite-blob did not start: {exc}")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteBlob]:
    """Azurite's blob service shared by the session; use `container_name()` per test."""
    with running_azurite() as service:
        yield service
