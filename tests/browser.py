"""Headless Chromium for the browser tests: found on PATH (scripts/install-browser.sh installs Debian's
package), run once per call in its own process group with a fresh profile, and always ended."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import require_emulator

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
BROWSER_TIMEOUT_SECONDS = 90


def find_browser() -> str:
    """The Chromium binary; skips (or fails under MESHKIT_REQUIRE_EMULATORS=1) when there is none."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    require_emulator("chromium", found is not None, "no chromium on PATH (scripts/install-browser.sh installs it)")
    assert found is not None
    return found


def run_browser(binary: str, profile: Path, *args: str) -> str:
    """Run Chromium once in its own process group with a fresh profile; whatever it started ends with it."""
    command = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=BROWSER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT_SECONDS} s: {' '.join(command)}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # helpers (zygote, utility processes) share the group
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, f"chromium exited with {process.returncode}: {err[-2000:]}"
    return out
