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
import pyarrow.compute as pc

from meshkit.contracts.model import Column, Contract


def hmac_hex(key: bytes, value: Any) -> str:
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_masker(key: bytes) -> Callable[[Any], str]:
    """`hmac_hex` for many values: the keyed state is computed once and copied per value."""
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def mask(value: Any) -> str:
        state = keyed.copy()
        state.update(str(value).encode("utf-8"))
        return state.hexdigest()

    return mask


def partial_email(value: str) -> str:
    """`maria.souza@example.com` -> `m***@example.com`."""
    local, at, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if at else partial_words(value)


_STAR_DIGITS = str.maketrans("0123456789", "*" * 10)


def partial_digits(value: str) -> str:
    """Every digit but the last four becomes `*`: `+5511987654321` -> `+*********4321`."""
    seen = 0
    for i in range(len(value) - 1, -1, -1):
        if value[i].isdigit():
            seen += 1
            if seen == 4:
                return value[:i].translate(_STAR_DIGITS) + value[i:]
    return value  # four digits or fewer: nothing identifying to hide beyond what is shown


def partial_words(value: str) -> str:
    """Initials: `Maria da Silva` -> `M**** d* S****`."""
    return " ".join(word[:1] + "*" * (len(word) - 1) for word in value.split(" "))


def partial_year(value: date | datetime) -> str:
    return f"{value.year:04d}-**-**"


def partial_text(value: str) -> str:
    """Partial masking when nothing is known about the column: guess the kind from the value."""
    if "@" in value:
        return partial_email(value)
    if sum(ch.isdigit() for ch in value) >= len(value) / 2:
        return partial_digits(value)
    return partial_words(value)


def partial_kind(column: Column) -> str:
    """Decided once per column from the contract: year, email, digits or words."""
    if column.logical_type in ("date", "timestamp"):
        return "year"
    name = column.name.lower()
    pattern = str(column.options.get("pattern") or "")
    if column.options.get("format") == "email" or "email" in name:
        return "email"
    if "[0-9]" in pattern or "\\d" in pattern or any(w in name for w in ("phone", "cpf", "cnpj", "tax", "card")):
        return "digits"
    return "words"


PARTIAL_BY_KIND: dict[str, Callable[[Any], str]] = {
    "year": partial_year,
    "email": partial_email,
    "digits": partial_digits,
    "words": partial_words,
}


def partial_for(column: Column) -> Callable[[Any], str]:
    """The partial masking function of one column (per value, for tests and baselines)."""
    return PARTIAL_BY_KIND[partial_kind(column)]


def partial_value(value: Any) -> str:
    if isinstance(value, datetime | date):
        return partial_year(value)
    return partial_text(str(value))


def _mask_array(column: pa.Array | pa.ChunkedArray, fn: Callable[[Any], Any], out: pa.DataType) -> pa.Array:
    return pa.array([None if v is None else fn(v) for v in column.to_pylist()], type=out)


@dataclass(frozen=True)
class MaskingPlan:
    """Which column gets which strategy, and the schema of masked batches."""

    strategies: Mapping[str, str]
    partial_kinds: Mapping[str, str]
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
        kinds = {c.name: partial_kind(c) for c in contract.columns if c.masking == "partial"}
        return cls(strategies, kinds, contract.primary_key, pa.schema(fields))

    def describe(self, column: Column) -> str:
        return {"hash": "HASHED", "partial": "MASKED", "redact": "REDACTED"}.get(
            self.strategies.get(column.name, ""), ""
        )

    def apply(self, batch: pa.RecordBatch, key: bytes) -> pa.RecordBatch:
        """A masked copy of `batch`; `_key` is rebuilt when a key column is masked."""
        if not self.strategies:
            return batch
        hash_value = hmac_masker(key)
        arrays = []
        for f, column in zip(batch.schema, batch.columns, strict=True):
            strategy = self.strategies.get(f.name)
            out_type = self.schema.field(f.name).type
            if strategy is None:
                arrays.append(column)
            elif strategy == "hash":
                arrays.append(_mask_array(column, hash_value, out_type))
            elif strategy == "redact":
                arrays.append(pa.nulls(len(column), type=out_type))
            elif self.partial_kinds[f.name] == "year":
                arrays.append(pc.strftime(column, format="%Y-**-**"))  # vectorised: dates and timestamps
            else:
                arrays.append(_mask_array(column, PARTIAL_BY_KIND[self.partial_kinds[f.name]], out_type))
        masked = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if any(k in self.strategies for k in self.key_columns):
            parts = [masked.column(k).to_pylist() for k in self.key_columns]
            keys = ["|".join(str(p) for p in row) for row in zip(*parts, strict=True)]
            index = masked.schema.get_field_index("_key")
            masked = masked.set_column(index, masked.schema.field(index), pa.array(keys, pa.string()))
        return masked
