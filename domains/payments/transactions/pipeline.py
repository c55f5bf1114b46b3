"""Pipeline of payments/transactions: the standard pipeline plus the amount band the contract derives."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.product import ChangeFeedPipeline

SMALL_BELOW = Decimal("100")
MEDIUM_BELOW = Decimal("5000")


def add_amount_band(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`amount_band`: small under R$100, medium under R$5,000, large otherwise (null for deletes)."""
    amount = batch.column("amount")
    small = pc.less(amount, pa.scalar(SMALL_BELOW, amount.type))
    medium = pc.less(amount, pa.scalar(MEDIUM_BELOW, amount.type))
    band = pc.if_else(small, "small", pc.if_else(medium, "medium", "large"))
    return batch.append_column("amount_band", band)


pipeline = ChangeFeedPipeline(transform=add_amount_band)
