"""Shared fixtures: the repository root and settings pointed at a throwaway workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Local-profile settings over the real domains/ with state in a temporary workspace."""
    monkeypatch.delenv("MESHKIT_MASKING_KEY", raising=False)
    return load_settings(ROOT, overrides={"workspace": str(tmp_path / "ws")}, environ={})


def require_emulator(name: str, available: bool, why: str) -> None:
    """Skip an emulator test whose service cannot run here, or fail it when CI demands emulators
    (`MESHKIT_REQUIRE_EMULATORS=1`), so a missing emulator never passes silently."""
    import os

    if available:
        return
    message = f"emulator {name} is not available: {why}"
    if os.environ.get("MESHKIT_REQUIRE_EMULATORS") == "1":
        pytest.fail(message + " (MESHKIT_REQUIRE_EMULATORS=1)")
    pytest.skip(message)
