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
