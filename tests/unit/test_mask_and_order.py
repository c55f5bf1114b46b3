"""Masking per the contract and ordering/de-duplication by key and LSN."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from meshkit.contracts.model import load_contract
from pipelines.transforms.decode import source_schema
from pipelines.transforms.mask import MaskingPlan, hmac_hex, partial_text, partial_value
from pipelines.transforms.order import order_and_deduplicate, shard_of, split_by_shard

ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 32


def test_partial_masking_keeps_only_non_identifying_parts() -> None:
    assert partial_text("Maria da Silva") == "M**** d* S****"
    assert partial_text("+5511987654321") == "+*********4321"
    assert partial_text("maria.souza@example.com") == "m***@example.com"
    assert partial_value(date(1990, 5, 12)) == "1990-**-**"


def test_plan_masks_every_personal_column_of_the_users_contract() -> None:
    contract = load_contract(ROOT / "domains/customers/users/datacontract.yaml")
    schema = source_schema(contract)
    plan = MaskingPlan.from_contract(contract, schema)
    assert set(plan.strategies) == {c.name for c in contract.personal_columns}
    row = {f.name: None for f in schema}
    row.update(
        user_id="u1", full_name="Maria da Silva", cpf="52998224725", email="maria@example.com",
        phone="+5511987654321", birth_date=date(1990, 5, 12), _key="u1", _lsn=1, _op="create",
        _partition=0, _offset=0,
    )  # fmt: skip
    masked = plan.apply(pa.RecordBatch.from_pylist([row], schema=schema), KEY).to_pylist()[0]
    assert masked["cpf"] == hmac_hex(KEY, "52998224725") != "52998224725"
    assert masked["email"] == hmac_hex(KEY, "maria@example.com")
    assert masked["full_name"] == "M**** d* S****"
    assert masked["birth_date"] == "1990-**-**"
    assert masked["user_id"] == "u1" and masked["_key"] == "u1"
    assert hmac_hex(b"other" * 8, "52998224725") != masked["cpf"]  # keyed: no rainbow table


def batch(keys: list[str], lsns: list[int]) -> pa.RecordBatch:
    n = len(keys)
    return pa.RecordBatch.from_pydict(
        {
            "_key": keys,
            "_lsn": pa.array(lsns, pa.int64()),
            "_partition": pa.array([0] * n, pa.int32()),
            "_offset": pa.array(list(range(n)), pa.int64()),
            "v": list(range(n)),
        }
    )


def test_order_and_deduplicate_across_batches() -> None:
    events, dups = order_and_deduplicate([batch(["b", "a", "a"], [5, 9, 2]), batch(["a", "b"], [9, 1])])
    assert list(zip(events.column("_key").to_pylist(), events.column("_lsn").to_pylist(), strict=True)) == [
        ("a", 2), ("a", 9), ("b", 1), ("b", 5),
    ]  # fmt: skip
    assert dups.to_pydict()["_key"] == ["a"] and dups.to_pydict()["_lsn"] == [9]


def test_shards_are_stable_and_keep_keys_together() -> None:
    assert shard_of("customer-42", 8) == shard_of("customer-42", 8)
    parts = dict(split_by_shard(batch(["x", "y", "x", "z"], [1, 1, 2, 1]), 4))
    for shard, sub in parts.items():
        assert {shard_of(k, 4) for k in sub.column("_key").to_pylist()} == {shard}
    assert sum(sub.num_rows for sub in parts.values()) == 4


def test_partial_kind_is_decided_once_per_column_from_the_contract() -> None:
    from pipelines.transforms.mask import partial_kind

    contract = load_contract(ROOT / "domains/customers/users/datacontract.yaml")
    kinds = {c.name: partial_kind(c) for c in contract.columns if c.masking == "partial"}
    assert kinds == {"full_name": "words", "phone": "digits", "birth_date": "year"}


def test_hmac_masker_equals_hmac() -> None:
    from pipelines.transforms.mask import hmac_masker

    assert hmac_masker(KEY)("52998224725") == hmac_hex(KEY, "52998224725")


@pytest.mark.parametrize(
    ("value", "masked"),
    [("+5511987654321", "+*********4321"), ("1234", "1234"), ("12-345", "*2-345"), ("", "")],
)
def test_partial_digits_keeps_the_last_four(value: str, masked: str) -> None:
    from pipelines.transforms.mask import partial_digits

    assert partial_digits(value) == masked
