"""Pipeline of risk/customer-exposure: aggregate exposure per customer from users and transactions."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.product import RefinedPipeline

ZERO = Decimal("0.00")


def customer_exposure(inputs: Mapping[str, pa.Table]) -> pa.Table:
    """One row per customer with transactions: settled/authorized debits, pending total, PIX share,
    limit utilisation against the customer's credit limit (left join: unknown customers keep nulls)."""
    tx = inputs["transactions"]
    users = inputs["users"].select(["user_id", "segment", "state", "credit_limit"])
    amount = tx.column("amount")
    zero = pa.scalar(ZERO, amount.type)
    is_debit = pc.equal(tx.column("direction"), "debit")
    booked = pc.and_(is_debit, pc.is_in(tx.column("status"), pa.array(["settled", "authorized"])))
    pending = pc.equal(tx.column("status"), "pending")
    prepared = pa.table(
        {
            "customer_id": tx.column("customer_id"),
            "booked": pc.if_else(booked, amount, zero),
            "pending": pc.if_else(pending, amount, zero),
            "is_pix": pc.cast(pc.equal(tx.column("method"), "pix"), pa.float64()),
            "occurred_at": tx.column("occurred_at"),
        }
    )
    per_customer = prepared.group_by("customer_id").aggregate(
        [
            ("booked", "sum"),
            ("pending", "sum"),
            ("is_pix", "mean"),
            ("customer_id", "count"),
            ("occurred_at", "max"),
        ]
    )
    joined = per_customer.join(users, keys="customer_id", right_keys="user_id", join_type="left outer")
    booked_total = joined.column("booked_sum")
    limit = joined.column("credit_limit")
    positive = pc.greater(limit, pa.scalar(ZERO, limit.type))
    utilisation = pc.if_else(
        positive, pc.divide(pc.cast(booked_total, pa.float64()), pc.cast(limit, pa.float64())), None
    )
    return pa.table(
        {
            "customer_id": joined.column("customer_id"),
            "segment": joined.column("segment"),
            "state": joined.column("state"),
            "credit_limit": limit,
            "settled_debit_total": booked_total,
            "pending_total": joined.column("pending_sum"),
            "transaction_count": joined.column("customer_id_count"),
            "pix_share": joined.column("is_pix_mean"),
            "limit_utilisation": utilisation,
            "last_transaction_at": joined.column("occurred_at_max"),
        }
    )


pipeline = RefinedPipeline(build=customer_exposure)
