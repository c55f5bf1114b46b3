"""The cost model: exact figures per line item from known inputs, price-table validation, the
monitoring budget flag, the SFTP scenario, the review section and the `meshkit cost` command."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from governance.cost.model import ProductVolume, estimate_mesh, estimate_product, monitoring_series
from governance.cost.prices import DEFAULT_PRICES, load_prices
from governance.cost.scenario import compare_with_sftp, sftp_baseline
from governance.cost.section import review_section
from governance.cost.volumes import retention_days
from governance.review.sections import ReviewContext
from meshkit.checks import Status
from meshkit.cli import main
from meshkit.config import Settings
from meshkit.errors import ConfigError
from meshkit.products.discovery import discover

PRICES = load_prices()
MONTH_DAYS = 730 / 24
DAY_GB = 86_400 * 1024 / 1e9  # one 1 KB event per second, one day, in GB


def _volume(mode: str = "streaming", per_day: float = 86_400, objectives: int = 4) -> ProductVolume:
    return ProductVolume("d/p", mode, per_day, "test", 1024.0, "test", 365, objectives)


def _items(mode: str = "streaming", per_day: float = 86_400) -> dict[str, float]:
    cost = estimate_product(_volume(mode, per_day), PRICES)
    return {i.item: i.monthly_usd for i in cost.items}


def test_streaming_line_items_are_exact() -> None:
    items = _items()
    month_events = 86_400 * MONTH_DAYS
    assert items["change-feed reads"] == pytest.approx(month_events / 1e6 * 0.25)  # 1 KB -> 1 RU
    assert items["throughput units"] == pytest.approx(730 * 0.03)  # 4 events/s at peak: one TU
    assert items["ingress events"] == pytest.approx(month_events / 1e6 * 0.028)
    assert items["Azure -> GCP egress"] == pytest.approx(month_events * 1024 / 1e9 * 0.181)
    assert items["streaming vCPU"] == pytest.approx(2 * 730 * 0.069)
    assert items["streaming memory"] == pytest.approx(7.5 * 730 * 0.003557)
    assert items["Streaming Engine data"] == pytest.approx(month_events * 1024 / 1e9 * 0.018)


def test_storage_and_warehouse_line_items_are_exact() -> None:
    items = _items()
    assert items["raw Standard"] == pytest.approx(DAY_GB * 30 * 0.035)
    assert items["raw Nearline"] == pytest.approx(DAY_GB * 335 * 0.020)
    assert items["curated Standard"] == pytest.approx(DAY_GB * 0.25 * 365 * 0.035)
    row_gb = DAY_GB * 0.6
    assert items["active storage"] == pytest.approx((row_gb * 90 + row_gb * 30) * 0.02)
    assert items["long-term storage"] == pytest.approx(row_gb * 275 * 0.01)
    assert items["Storage Write API"] == pytest.approx(row_gb * MONTH_DAYS * 0.025)
    merges = 96 * MONTH_DAYS  # the batch per MERGE is under 10 MB: billed as 10 MB
    assert items["MERGE queries"] == pytest.approx(merges * (row_gb * 30 * 1e9 + 10 * 2**20) / 2**40 * 6.25)


def test_monitoring_line_items_count_series_from_the_catalogue() -> None:
    # 10 unlabelled metrics + dead_letters x 5 reasons + rows_written x 4 outputs + runs x 2 + retries x 3
    # + two partition metrics x 4 partitions + slo_good/slo_total x 4 objectives
    assert monitoring_series(4) == 10 + 5 + 4 + 2 + 3 + 4 + 4 + 4 + 4
    items = _items()
    assert items["metric ingestion (40 series)"] == pytest.approx(40 * 730 * 60 * 8 / 2**20 * 0.258)
    assert items["alert conditions"] == pytest.approx(4 * 2 * 0.10)


def test_event_hubs_scales_with_the_peak_rate() -> None:
    # 10M changes/day -> 463 events/s at 4x peak, x 1 KB = 474 KB/s ... 2,315 events/s -> 3 TUs by events
    items = _items(per_day=50_000_000)
    assert items["throughput units"] == pytest.approx(3 * 730 * 0.03)


def test_batch_products_pay_for_jobs_not_always_on_workers() -> None:
    items = _items("batch", 18_000_000)
    hours = (0.1 + 18_000_000 / 5_000 / 3600) * MONTH_DAYS  # 6 min overhead + 1 h of processing a day
    assert items["batch vCPU"] == pytest.approx(hours * 0.056)
    assert items["batch memory"] == pytest.approx(hours * 3.75 * 0.003557)
    assert "streaming vCPU" not in items
    assert "change-feed reads" not in items
    assert "raw Standard" not in items


def test_monitoring_share_is_flagged_above_the_budget() -> None:
    small, large = _volume("batch", 1_000, 3), _volume("streaming", 150_000, 4)
    mesh = estimate_mesh([small, large], PRICES, budget_share=0.10)
    assert [p.volume.mode for p in mesh.over_budget()] == ["batch"]
    costs = {p.volume.mode: p for p in mesh.products}
    assert costs["batch"].monitoring_share > 0.10 > costs["streaming"].monitoring_share
    assert costs["streaming"].monitoring_share == pytest.approx(
        costs["streaming"].monitoring / costs["streaming"].total
    )
    assert estimate_mesh([small], PRICES, budget_share=1.0).over_budget() == ()


def test_sftp_baseline_adds_export_transfer_batch_and_one_endpoint() -> None:
    mesh = estimate_mesh([_volume()], PRICES)
    product = mesh.products[0]
    rows = 86_400 * 30  # a full export holds 30 days of changes' worth of rows
    job_hours = (0.1 + rows / 5_000 / 3600) * MONTH_DAYS
    shared = sum(i.monthly_usd for i in product.items if i.service in {"gcs", "bigquery", "monitoring"})
    expected = (
        rows * MONTH_DAYS / 1e6 * 0.25
        + rows * 1024 / 1e9 * MONTH_DAYS * 0.181
        + job_hours * 0.056
        + job_hours * 3.75 * 0.003557
        + shared
    )
    assert sftp_baseline(product, mesh) == pytest.approx(expected)
    comparison = compare_with_sftp(mesh)
    assert comparison.rows[0].monthly_usd == pytest.approx(expected + 730 * 0.30)  # one shared SFTP endpoint
    assert comparison.rows[1].monthly_usd == pytest.approx(mesh.total)
    assert "24 h" in comparison.rows[0].freshness


@pytest.mark.parametrize(
    ("value", "unit", "days"), [(5, "y", 1825), ("2y", None, 730), (6, "m", 180), (45, "d", 45), ("x", "y", None)]
)
def test_retention_days(value: object, unit: str | None, days: int | None) -> None:
    assert retention_days(value, unit) == days


def _table(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PRICES.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "prices.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  gcs.nearline_gb_month:", "  gcs.nearline_gb_monthly:", "missing price key 'gcs.nearline_gb_month'"),
        ("value: 0.035", "value: -1", "price 'gcs.standard_gb_month' has value -1"),
        ("value: 0.25", "value: cheap", "price 'cosmos.serverless_per_million_ru' has value 'cheap'"),
        ("currency: USD", "currency: BRL", "currency 'BRL' is not supported"),
        ('version: "2026-11"\n', "", "missing key 'version'"),
    ],
)
def test_price_table_errors_name_the_file_and_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = _table(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_prices(path)
    assert expected in info.value.message
    assert str(path) in info.value.message
    assert info.value.location is not None and info.value.location.line is not None


def test_missing_price_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_prices(tmp_path / "nope.yaml")


def test_review_section_warns_per_product_over_budget(settings: Settings) -> None:
    products = tuple(discover(settings.domains_dir))
    section = review_section(ReviewContext(settings, products, date(2026, 11, 26)))
    assert section.key == "cost"
    refs = {row[0] for row in section.tables[0].rows}
    assert refs == {p.ref for p in products}
    assert all(c.status is Status.WARNING for c in section.checks)
    # the refined product runs one small batch a day: its monitoring dominates its cost
    assert "risk/customer-exposure" in section.per_product
    assert section.data["scenario"]["rows"][0]["option"].startswith("daily SFTP")


def test_cli_cost_json_and_markdown(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(settings.workspace_dir))
    root = str(settings.root)
    assert main(["--root", root, "cost", "--format", "json", "--product", "customers/users"]) == 0
    data = json.loads(capsys.readouterr().out)
    [product] = data["products"]
    assert product["product"] == "customers/users"
    assert product["events_per_day"] == 150_000  # the contract's expectedChangesPerDay
    assert product["event_bytes"] == 1024  # nothing measured in an empty workspace
    assert {i["price_key"] for i in product["items"]} >= {"cosmos.serverless_per_million_ru", "gcs.nearline_gb_month"}
    assert data["total_monthly_usd"] == pytest.approx(sum(i["monthly_usd"] for i in product["items"]), abs=0.01)
    assert main(["--root", root, "cost", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| risk/customer-exposure |" in markdown and "daily SFTP" in markdown


def test_cli_cost_bad_price_table_exits_with_the_file_named(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(settings.workspace_dir))
    path = _table(tmp_path, "value: 0.30", "value: -0.30")
    assert main(["--root", str(settings.root), "cost", "--prices", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and str(path) in err and "azure.sftp_endpoint_hour" in err


def test_cli_cost_refined_product_alone_still_sums_its_upstream(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(settings.workspace_dir))
    assert main(["--root", str(settings.root), "cost", "--format", "json", "--product", "risk/customer-exposure"]) == 0
    [product] = json.loads(capsys.readouterr().out)["products"]
    assert product["events_per_day"] == 150_000 + 400_000  # customers/users + payments/transactions


def test_review_section_warns_when_a_product_has_no_volume(settings: Settings) -> None:
    refined = next(p for p in discover(settings.domains_dir) if p.ref == "risk/customer-exposure")
    section = review_section(ReviewContext(settings, (refined,), date(2026, 11, 26)))  # upstream not in view
    rules = {c.rule for c in section.per_product["risk/customer-exposure"]}
    assert rules == {"cost.monitoring-budget", "cost.volume-unknown"}
