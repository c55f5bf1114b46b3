"""The refined product's output is conformed to its contract; bad rows become dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from meshkit.contracts.model import load_contract
from pipelines.refined import check_rows

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = load_contract(ROOT / "domains/risk/customer-exposure/datacontract.yaml")


def built(ids: list[str | None], settled: list[Decimal | None]) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "customer_id": ids,
            "segment": ["retail"] * n,
            "state": ["SP"] * n,
            "credit_limit": pa.array([Decimal("1000.00")] * n, pa.decimal128(18, 2)),
            "settled_debit_total": pa.array(settled, pa.decimal128(38, 2)),
            "pending_total": pa.array([Decimal("0.00")] * n, pa.decimal128(38, 2)),
            "transaction_count": [1] * n,
            "pix_share": [0.5] * n,
            "limit_utilisation": [0.1] * n,
            "last_transaction_at": [datetime(2026, 11, 1, tzinfo=UTC)] * n,
        }
    )


def test_good_rows_pass_and_are_cast_to_the_contract_types() -> None:
    good, rejected = check_rows(CONTRACT, built(["a", "b"], [Decimal("10.00"), Decimal("2.50")]))
    assert rejected == [] and good.num_rows == 2
    assert good.schema.field("settled_debit_total").type == pa.decimal128(18, 2)


def test_missing_required_values_and_duplicate_keys_are_rejected_with_reasons() -> None:
    good, rejected = check_rows(CONTRACT, built(["a", "a", None], [Decimal("1.00"), Decimal("2.00"), None]))
    assert good.column("customer_id").to_pylist() == ["a"]
    assert [r["reason_code"] for r in rejected] == ["duplicate-key", "required:customer_id"]


def test_a_missing_column_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="pix_share"):
        check_rows(CONTRACT, built(["a"], [Decimal("1.00")]).drop_columns(["pix_share"]))
