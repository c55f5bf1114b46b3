"""The product descriptor chooses the schedule: a streaming job or a bounded micro-batch every N minutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshkit.cli import main
from meshkit.errors import ContractError
from meshkit.products.discovery import find_product
from meshkit.products.model import Schedule, parse_descriptor, parse_schedule
from meshkit.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "streaming", "minutes", "cron", "shown"),
    [
        ("streaming", True, None, None, "streaming"),
        (" Streaming ", True, None, None, "streaming"),
        ("every 5m", False, 5, "*/5 * * * *", "every 5m"),
        ("every 15 min", False, 15, "*/15 * * * *", "every 15m"),
        ("every 30minutes", False, 30, "*/30 * * * *", "every 30m"),
        ("every 60m", False, 60, "0 * * * *", "every 1h"),
        ("every 1h", False, 60, "0 * * * *", "every 1h"),
        ("every 6 hours", False, 360, "0 */6 * * *", "every 6h"),
        ("every 24h", False, 1440, "0 0 * * *", "every 24h"),
    ],
)
def test_valid_schedules(text, streaming, minutes, cron, shown):
    schedule = parse_schedule(text)
    assert schedule == Schedule(streaming=streaming, every_minutes=minutes)
    assert schedule.cron == cron and str(schedule) == shown
    assert schedule.mode == ("streaming" if streaming else "bounded")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("every 2m", "more often than every 5m"),
        ("every 7m", "does not divide"),
        ("every 90m", "does not divide"),
        ("every 5h", "does not divide"),
        ("hourly", "neither"),
        ("every 0m", "neither"),
        ("every m", "neither"),
        (15, "neither"),
        (None, "neither"),
    ],
)
def test_invalid_schedules_say_why(value, why):
    with pytest.raises(ValueError, match=why):
        parse_schedule(value)


def test_example_products_schedules():
    domains = ROOT / "domains"
    assert str(find_product(domains, "customers/users").schedule) == "every 5m"
    assert find_product(domains, "payments/transactions").schedule.streaming
    assert find_product(domains, "risk/customer-exposure").schedule.cron == "0 * * * *"


def _product_copy(tmp_path: Path, value: str | None) -> Path:
    target = tmp_path / "domains/customers/users"
    shutil.copytree(ROOT / "domains/customers/users", target)
    path = target / "dataproduct.yaml"
    text = path.read_text(encoding="utf-8").split("customProperties:")[0]
    if value is not None:
        text += "customProperties:\n  - property: owner-note\n    value: x\n"
        text += f"  - property: schedule\n    value: {value}\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_is_every_15_minutes(tmp_path):
    path = _product_copy(tmp_path, None)
    assert str(parse_descriptor(load_yaml(path)).schedule) == "every 15m"


def test_invalid_schedule_names_file_line_and_field(tmp_path):
    path = _product_copy(tmp_path, "every 7m")
    with pytest.raises(ContractError) as err:
        parse_descriptor(load_yaml(path))
    where = err.value.location
    assert where is not None and where.file == str(path) and where.field == "customProperties[1].value"
    assert where.line == path.read_text().splitlines().index("    value: every 7m") + 1
    assert "every <N>m" in (err.value.hint or "")


def test_validate_reports_a_bad_schedule(tmp_path, capsys):
    _product_copy(tmp_path, "weekly")
    code = main(["--root", str(tmp_path), "validate"])
    out = capsys.readouterr().out
    assert code == 1
    assert "dataproduct.yaml" in out and "customProperties[1].value" in out and "'weekly'" in out
