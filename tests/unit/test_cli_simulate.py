"""`meshkit simulate`: a seeded change-feed file or a relay into the local event log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshkit.cli import main
from pipelines.transports.local_log import LocalEventLog

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_to_a_file_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--root", str(ROOT), "simulate", "customers/users", "--events", "300", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert main([*args, "--out", str(tmp_path / "b.jsonl")]) == 0
    lines = (tmp_path / "a.jsonl").read_bytes().splitlines()
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert len(lines) == stats["items"] > 300
    assert stats["operations"]["delete"] > 0  # users: all versions and deletes


def test_simulate_publishes_to_the_products_topic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    assert main(["--root", str(ROOT), "simulate", "payments/transactions", "--events", "200", "--publish"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    with LocalEventLog(tmp_path / "ws" / "eventlog", "payments.transactions", 8) as log:
        assert sum(log.end_offsets().values()) == items


def test_bad_mix_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--root", str(ROOT), "simulate", "customers/users", "--out", "x.jsonl", "--mix", "1,2"])
    assert info.value.code == 2
    assert "create,update,delete" in capsys.readouterr().err


def test_a_refined_product_cannot_be_simulated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(ROOT), "simulate", "risk/customer-exposure", "--out", str(tmp_path / "x.jsonl")])
    assert code == 1
    assert "no source server" in capsys.readouterr().err
