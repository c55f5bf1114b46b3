"""Mask personal data per the contract before anything leaves the raw zone.

Strategies (property customProperty `masking`): `hash` — HMAC-SHA256 with a managed key, hex, so the
value still joins across products without being readable; `partial` — keep a non-identifying part
(initials, last four digits, e-mail domain, birth year); `redact` — null; `none`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from meshkit.contracts.model import Column, Contract


def hmac_hex(key: bytes, value: Any) -> str:
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def partial_text(value: str) -> str:
    """Initials for names, last four digits for numbers, first letter and domain for e-mails."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = sum(ch.isdigit() for ch in value)
    if digits >= len(value) / 2:
        seen, out = 0, []
        for ch in reversed(value):
            if ch.isdigit():
                seen += 1
                out.append(ch if seen <= 4 else "*")
            else:
                out.append(ch)
        return "".join(reversed(out))
    return " ".join(word[:1] + "*" * (len(word) - 1) for word in value.split(" "))


def partial_value(value: Any) -> str:
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-**-**"
    return partial_text(str(value))


@dataclass(frozen=True)
class MaskingPlan:
    """Which column gets which strategy, and the schema of masked batches."""

    strategies: Mapping[str, str]
    key_columns: tuple[str, ...]
    schema: pa.Schema

    @classmethod
    def from_contract(cls, contract: Contract, source: pa.Schema) -> MaskingPlan:
        strategies = {c.name: c.masking for c in contract.columns if c.masking != "none"}
        fields = []
        for f in source:
            strategy = strategies.get(f.name)
            fields.append(f.with_type(pa.string()) if strategy in ("hash", "partial") else f)
            if strategy == "redact":
                fields[-1] = fields[-1].with_nullable(True)
        return cls(strategies, contract.primary_key, pa.schema(fields))

    def describe(self, column: Column) -> str:
        return {"hash": "HASHED", "partial": "MASKED", "redact": "REDACTED"}.get(
            self.strategies.get(column.name, ""), ""
        )

    def apply(self, batch: pa.RecordBatch, key: bytes) -> pa.RecordBatch:
        """A masked copy of `batch`; `_key` is rebuilt when a key column is masked."""
        if not self.strategies:
            return batch
        arrays = []
        for f, column in zip(batch.schema, batch.columns, strict=True):
            strategy = self.strategies.get(f.name)
            if strategy is None:
                arrays.append(column)
                continue
            fn: Callable[[Any], Any]
            if strategy == "hash":
                fn = lambda v: hmac_hex(key, v)  # noqa: E731
            elif strategy == "partial":
                fn = partial_value
            else:
                fn = lambda v: None  # noqa: E731
            out_type = self.schema.field(f.name).type
            arrays.append(pa.array([None if v is None else fn(v) for v in column.to_pylist()], type=out_type))
        masked = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if any(k in self.strategies for k in self.key_columns):
            parts = [masked.column(k).to_pylist() for k in self.key_columns]
            keys = ["|".join(str(p) for p in row) for row in zip(*parts, strict=True)]
            index = masked.schema.get_field_index("_key")
            masked = masked.set_column(index, masked.schema.field(index), pa.array(keys, pa.string()))
        return masked
