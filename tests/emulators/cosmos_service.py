"""Session fixtures for Cosmos DB: the change-feed fake and the real `@vercel/cosmosdb-server`.

Import the fixtures into a test module (`from cosmos_service import cosmos_feed_fake, cosmosdb_server`).
Both listen on free 127.0.0.1 ports and are stopped at the end of the session, even after failures.
cosmosdb-server is started from a tiny Node script over plain HTTP with keep-alive (ready in well
under a second); the SDK reaches it with endpoint discovery off, since it advertises no regions.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, require_emulator  # tests/conftest.py
from cosmos_feed_fake import EMULATOR_KEY, CosmosFeedFake

COSMOSDB_SERVER = ROOT / ".emulators" / "node" / "node_modules" / "@vercel" / "cosmosdb-server"
# listens on an ephemeral port and prints it, so no port is ever guessed
_NODE_SCRIPT = """
const { createHttpServer } = require(process.argv[1]);
const server = createHttpServer({ keepAlive: true });
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log("PORT " + server.address().port));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
"""


@pytest.fixture(scope="session")
def cosmos_feed_fake() -> Iterator[CosmosFeedFake]:
    fake = CosmosFeedFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def _start_cosmosdb_server(package: Path) -> tuple[subprocess.Popen[str], str]:
    node = shutil.which("node")
    if node is None or not (package / "lib" / "index.js").exists():
        require_emulator(
            "cosmosdb-server", False, "node or @vercel/cosmosdb-server is missing (run scripts/install-emulators.sh)"
        )
    # stdin is a pipe: when this process dies, node sees EOF and exits, so no server outlives the tests
    proc = subprocess.Popen(
        [str(node), "-e", _NODE_SCRIPT, str(package / "lib" / "index.js")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 10
    assert proc.stdout is not None
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("PORT ") or not line:
            break
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait(timeout=5)
        require_emulator("cosmosdb-server", False, f"it did not start: {line.strip() or 'no output'}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/"


@pytest.fixture(scope="session")
def cosmosdb_server() -> Iterator[str]:
    """The endpoint of a running cosmosdb-server (any key is accepted; use `EMULATOR_KEY`)."""
    proc, endpoint = _start_cosmosdb_server(COSMOSDB_SERVER)
    try:
        yield endpoint
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


__all__ = ["EMULATOR_KEY", "cosmos_feed_fake", "cosmosdb_server"]
