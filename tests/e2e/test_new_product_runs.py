"""`meshkit new` gives a product that validates and runs through the standard pipeline at once."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.products.discovery import find_product
from pipelines.demo import simulate_and_publish

pytestmark = pytest.mark.e2e


def test_scaffold_validate_simulate_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "repo"
    (root / "domains").mkdir(parents=True)
    assert main(["--root", str(root), "new", "shop/orders"]) == 0
    assert main(["--root", str(root), "validate"]) == 0
    settings = load_settings(root, environ={})
    product = find_product(settings.domains_dir, "shop/orders")
    feed, published, _ = simulate_and_publish(settings, product, events=300, seed=3, related_keys=None)
    capsys.readouterr()
    assert main(["--root", str(root), "run", "shop/orders", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events_in"] == published
    assert summary["rows_written"]["current"] == len(feed.final_state)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    emails = {r[0] for r in con.sql("SELECT email FROM shop.orders_current").fetchall()}
    con.close()
    assert emails and not emails & feed.personal_values  # the scaffold's personal column is hashed


def test_a_refined_product_before_its_inputs_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / "ws"))
    root = Path(__file__).resolve().parents[2]
    assert main(["--root", str(root), "run", "risk/customer-exposure"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error:") and "dataproduct.yaml" in err
    assert "Run `meshkit run customers/users` first" in err


def test_a_failed_run_is_recorded_with_its_reason(tmp_path: Path) -> None:
    from meshkit.errors import TerminalError
    from monitoring.metrics.store import MetricsStore
    from pipelines.runners.local import run_product

    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    settings.warehouse_path.mkdir(parents=True)  # a folder where the warehouse file should be: writes fail
    replay = tmp_path / "one.jsonl"
    replay.write_text('{"id": "x", "_lsn": 1}\n')
    with pytest.raises(TerminalError):
        run_product(settings, find_product(settings.domains_dir, "customers/users"), from_file=replay)
    latest = MetricsStore(settings.metrics_path).latest("customers/users")
    assert latest is not None and latest.status == "failed" and latest.error
