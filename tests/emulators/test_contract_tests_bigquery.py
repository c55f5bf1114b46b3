"""`meshkit test --server bigquery`: the contract's checks compiled to GoogleSQL and run through
google-cloud-bigquery against the BigQuery emulator, on a product the pipeline wrote there; the same
verdicts as the DuckDB run over the same product, and a seeded bad row caught with its key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from bigquery_service import BigQueryEmulator
from conftest import ROOT
from gcs_service import GcsEmulator

from governance.testing.runner import RunOptions, run_contract_tests
from meshkit.config import Settings, load_settings
from meshkit.products.discovery import find_product
from pipelines.demo import simulate_and_publish
from pipelines.runners.local import run_product

pytestmark = pytest.mark.emulator
pytest_plugins = ("gcs_service", "bigquery_service")  # the session fixtures `gcs` and `bigquery`
PRODUCT = "payments/transactions"


def publish_and_run(settings: Settings, now: datetime) -> None:
    """Both source products: transactions' customer_id references users' user_id."""
    users = find_product(settings.domains_dir, "customers/users")
    feed = simulate_and_publish(settings, users, 300, 17, None, now=now).feed
    run_product(settings, users)
    product = find_product(settings.domains_dir, PRODUCT)
    keys = tuple(sorted({k for k in feed.keys if k}))
    simulate_and_publish(settings, product, 400, 17, keys, now=now)
    run_product(settings, product)


def verdicts(settings: Settings, server: str, client: object = None) -> dict[str, str]:
    run = run_contract_tests(settings, PRODUCT, RunOptions(server=server, source="warehouse"), client=client)
    return {o.check.id: o.status for o in run.outcomes}


def test_contract_checks_on_bigquery_match_duckdb_and_catch_a_bad_row(
    bigquery: BigQueryEmulator, gcs: GcsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "contract-test-bq-masking-key-0123456789abcdef")
    now = datetime.now(UTC)
    project = bigquery.project()
    cloud = load_settings(
        ROOT,
        overrides={"workspace": str(tmp_path / "cloud"), "warehouse": "bigquery", "gcp_project": project},
        environ={},
    )
    local = load_settings(ROOT, overrides={"workspace": str(tmp_path / "local")}, environ={})
    publish_and_run(cloud, now)
    publish_and_run(local, now)
    client = bigquery.client(project)

    on_bigquery, on_duckdb = verdicts(cloud, "bigquery", client), verdicts(local, "local")
    assert on_bigquery == on_duckdb
    unexpected = {k: v for k, v in on_bigquery.items() if v not in ("passed", "warning", "skipped")}
    assert not unexpected

    table = f"`{project}.payments.transactions_current`"
    client.query_and_wait(f"UPDATE {table} SET status = 'bogus' WHERE _key = (SELECT min(_key) FROM {table})")
    bad_key = next(iter(client.query_and_wait(f"SELECT _key FROM {table} WHERE status = 'bogus'")))[0]
    run = run_contract_tests(cloud, PRODUCT, RunOptions(server="bigquery", source="warehouse"), client=client)
    failed = {o.check.id: o for o in run.outcomes if o.status == "failed"}
    # the schema's enum and the contract's quality rule `status_is_known` both catch it
    assert sorted(failed) == ["status_is_known", "transactions.status.enum"], failed
    assert failed["transactions.status.enum"].measured == 1
    assert bad_key in failed["transactions.status.enum"].sample_keys
