"""`meshkit drift`: the real pipeline profiles drifted Cosmos DB documents (a new field, a dropped one,
a field retyped in 10% of them); drift reports exactly those, proposes the contract change as a diff
that applies with `patch -p0` and `git apply -p0`, with the bump governance/diff requires, and the
patched contract validates. A product whose documents match its contract reports no drift."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import ROOT

from governance.diff import diff_contracts
from governance.diff.semver import required_bump
from governance.drift import drift_report
from meshkit.cli import main
from meshkit.config import Settings, load_settings
from meshkit.contracts.model import load_contract
from meshkit.products.discovery import find_product
from pipelines.demo import publish_feed
from pipelines.runners.local import run_product
from pipelines.sources.simulator import ChangeFeedSimulator, SimulatedFeed, SimulationConfig

pytestmark = pytest.mark.e2e
PRODUCT = "payments/transactions"
CONTRACT = Path("domains/payments/transactions/datacontract.yaml")


def feed(events: int, seed: int, malformed_rate: float = 0.01) -> SimulatedFeed:
    product = find_product(ROOT / "domains", PRODUCT)
    start = datetime(2026, 11, 26, tzinfo=UTC)
    config = SimulationConfig(events=events, seed=seed, start=start, malformed_rate=malformed_rate)
    return ChangeFeedSimulator(product.contract, config).generate()


def drifted(source: SimulatedFeed, seed: int) -> SimulatedFeed:
    """Every document gains `installments` and loses `merchant_name`; one in ten carrying a
    `merchant_category_code` sends it as a JSON integer instead of a string."""
    rng = random.Random(seed)
    items = []
    for body in source.items:
        try:
            item = orjson.loads(body)
        except orjson.JSONDecodeError:  # a malformed item stays as it is
            items.append(body)
            continue
        document: Any = item.get("current") if isinstance(item, dict) and "metadata" in item else item
        if isinstance(document, dict):
            document["installments"] = rng.randint(1, 12)
            document.pop("merchant_name", None)
            code = document.get("merchant_category_code")
            if isinstance(code, str) and rng.random() < 0.10:
                document["merchant_category_code"] = int(code)
        items.append(orjson.dumps(item))
    return replace(source, items=items)


def workspace(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MESHKIT_MASKING_KEY", "drift-test-masking-key-0123456789abcdef")
    monkeypatch.setenv("MESHKIT_WORKSPACE", str(tmp_path / name))
    return load_settings(ROOT, overrides={"workspace": str(tmp_path / name)}, environ={})


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--root", str(ROOT), *args])
    return code, capsys.readouterr().out


def test_drift_reports_the_changes_and_proposes_a_contract_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = workspace(tmp_path, "drifted", monkeypatch)
    product = find_product(settings.domains_dir, PRODUCT)
    publish_feed(settings, product, drifted(feed(2000, seed=11, malformed_rate=0.0), seed=12))
    summary = run_product(settings, product)

    report = drift_report(settings, PRODUCT)
    assert report.runs == (summary.run_id,)
    assert 0 < report.documents <= summary.events_in
    drift = {(f.code, f.field): f for f in report.findings if f.drift}
    assert set(drift) == {
        ("field-added", "installments"),
        ("field-vanished", "merchant_name"),
        ("type-changed", "merchant_category_code"),
    }
    added = drift["field-added", "installments"]
    assert added.present == report.documents and set(added.kinds) == {"integer"}
    assert drift["field-vanished", "merchant_name"].present == 0
    retyped = drift["type-changed", "merchant_category_code"]
    values = retyped.present - retyped.kinds.get("null", 0)
    assert 0.06 < retyped.kinds["integer"] / values < 0.14

    proposal = report.proposal
    assert proposal is not None
    old = load_contract(ROOT / CONTRACT)
    assert proposal.path == str(CONTRACT)

    code, text = cli(capsys, "drift", PRODUCT)
    assert code == 1
    assert "installments" in text and "major bump" in text
    code, diff = cli(capsys, "drift", PRODUCT, "--format", "diff")
    assert code == 1 and diff == proposal.diff
    assert "+        required: true" in diff

    # the diff applies to a copy of the project with `patch -p0` and `git apply -p0`
    for tool in (["patch", "-p0", "--quiet"], ["git", "apply", "-p0"]):
        copy = tmp_path / f"copy-{tool[0]}"
        shutil.copytree(ROOT / "domains", copy / "domains")
        subprocess.run([*tool], input=diff, text=True, cwd=copy, check=True)
        new = load_contract(copy / CONTRACT)
        column = new.column("installments")
        assert (column.required, column.logical_type, column.physical_type) == (True, "integer", "INT64")
        assert new.column("merchant_name")  # marked with a comment, not removed (that is a major of its own)
        # the bump is governance/diff's: the proposed version covers exactly what its classifier requires
        checked = diff_contracts(PRODUCT, old, new)
        assert checked.version is not None and checked.version.ok
        assert proposal.bump == required_bump(checked.changes) == "major"
        assert (proposal.old_version, proposal.new_version, new.version) == ("2.0.1", "3.0.0", "3.0.0")
        assert main(["--root", str(copy), "validate", str(copy / CONTRACT.parent)]) == 0

    # never a document's values: the report holds names, kinds and counts only
    source = feed(2000, seed=11, malformed_rate=0.0)
    values = (
        source.personal_values | set(source.final_state) | {str(r["customer_id"]) for r in source.final_state.values()}
    )
    rendered = cli(capsys, "drift", PRODUCT, "--format", "json")[1] + cli(capsys, "drift", PRODUCT)[1]
    assert values and not [v for v in values if v in rendered]


def test_a_product_without_drift_reports_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = workspace(tmp_path, "clean", monkeypatch)
    product = find_product(settings.domains_dir, PRODUCT)
    publish_feed(settings, product, feed(1500, seed=21))  # 1% malformed: bad values, not drift
    run_product(settings, product)

    report = drift_report(settings, PRODUCT)
    assert not report.drifted and report.proposal is None
    code, text = cli(capsys, "drift", PRODUCT)
    assert code == 0, text
    code, diff = cli(capsys, "drift", PRODUCT, "--format", "diff")
    assert code == 0 and diff == ""
