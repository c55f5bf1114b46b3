"""gcp-storage-emulator (GCS, PyPI) for emulator tests: in memory, on a free 127.0.0.1 port.

Import the fixture into a test module: `from gcs_service import gcs  # noqa: F401`.
The package comes from `scripts/install-gcp-emulators.sh` (run here when it is missing). While the
fixture runs, `STORAGE_EMULATOR_HOST` points google-cloud-storage (and so Beam's gs:// filesystem)
at it, and Beam is told there are no credentials to discover (see `skip_beam_credential_discovery`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import ROOT, require_emulator

if TYPE_CHECKING:
    from google.cloud import storage

PROJECT = "meshkit-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux only: a `preexec_fn` that has the kernel SIGKILL the emulator when the test process dies,
    even by SIGKILL, where no fixture teardown runs. libc is loaded here, before any fork: the function
    run between fork and exec then only makes one system call (no import, no lock)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl

    def set_pdeathsig() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return set_pdeathsig


die_with_parent = _parent_death_signal()


@contextlib.contextmanager
def skip_beam_credential_discovery() -> Iterator[None]:
    """Hand Beam anonymous Google credentials so it never looks for real ones.

    Beam's gs:// and BigQuery IOs ask `apache_beam.internal.gcp.auth` for credentials, which calls
    `google.auth.default()` with 4 retries and exponential back-off: ~25 s here before it gives up and
    "connects anonymously" (measured; `NO_GCE_CHECK=True` still left 20 s of retries). Worse, with no
    credentials Beam's BigQuery API client (apitools) starts an interactive OAuth flow and waits on a
    local port forever. A fake service-account JSON in GOOGLE_APPLICATION_CREDENTIALS ends the search,
    but then each request tries to refresh a token from oauth2.googleapis.com and fails; `--no_auth`
    reaches only the Dataflow API client. So fill Beam's credential cache with its own adapter around
    `AnonymousCredentials` (what the emulators accept), and restore the cache afterwards.
    """
    from apache_beam.internal.gcp import auth
    from google.auth.credentials import AnonymousCredentials

    cache = auth._Credentials
    with cache._credentials_lock:
        saved = (cache._credentials_init, cache._credentials)
        cache._credentials_init = True
        cache._credentials = auth._ApitoolsCredentialsAdapter(AnonymousCredentials())
    try:
        yield
    finally:
        with cache._credentials_lock:
            cache._credentials_init, cache._credentials = saved


class GcsEmulator:
    """One `gcp-storage-emulator` process (in memory) on a free 127.0.0.1 port, in its own process group."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="gcs-emulator-", suffix=".log")[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> storage.Client:
        """A real google-cloud-storage client on the emulator, with anonymous credentials (no discovery)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
        )

    def bucket_prefix(self, zones: tuple[str, ...] = ("raw", "curated", "refined")) -> str:
        """A fresh `lake_bucket_prefix` with its zone buckets created (provisioning is Terraform's job
        in the cloud; the pipeline never creates buckets)."""
        prefix = f"t{uuid.uuid4().hex[:12]}"
        client = self.client()
        for zone in zones:
            client.create_bucket(f"{prefix}-{zone}")
        return prefix

    def start(self, timeout: float = 20.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                 "--port", str(self.port), "--in-memory", "--quiet"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call, see _parent_death_signal
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited with {self.process.returncode}: {self._tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"gcp-storage-emulator did not answer on {self.endpoint} within {timeout} s: {self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None
        self.log.unlink(missing_ok=True)


def _install() -> str | None:
    """Run the project's installer when the package is missing; the reason it is still missing, or None."""
    if importlib.util.find_spec("gcp_storage_emulator") is not None:
        return None
    script = ROOT / "scripts" / "install-gcp-emulators.sh"
    result = subprocess.run(["bash", str(script)], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    importlib.invalidate_caches()
    if importlib.util.find_spec("gcp_storage_emulator") is not None:
        return None
    return f"gcp-storage-emulator is missing after {script.name} (exit {result.returncode}): {result.stderr[-500:]}"


@contextlib.contextmanager
def running_gcs() -> Iterator[GcsEmulator]:
    """Start the emulator (skipping, or failing under MESHKIT_REQUIRE_EMULATORS=1, if it cannot), point
    STORAGE_EMULATOR_HOST at it and Beam at anonymous credentials, and always undo both and stop it."""
    missing = _install()
    if missing is not None:
        require_emulator("gcp-storage-emulator", False, missing)
    service = GcsEmulator()
    try:
        service.start()
    except (OSError, RuntimeError) as exc:
        service.stop()
        require_emulator("gcp-storage-emulator", False, f"it did not start: {exc}")
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = service.endpoint
    try:
        with skip_beam_credential_discovery():
            yield service
    finally:
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved
        service.stop()


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    """The GCS emulator shared by the session; use `bucket_prefix()` per test to keep tests apart."""
    with running_gcs() as service:
        yield service
