"""Example team policy: personal data is read only through a role a second approver signs off.

Team policies live in this folder; `meshkit review` and `meshkit validate` load every `*.py` here
(files starting with `_` are helpers). See docs/policies.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from governance.policies import Finding, policy
from governance.review.sections import ReviewContext
from meshkit.products.model import DataProduct


@policy(
    id="pii-owner-reviewed",
    title="Personal data has a role with second-level approval",
    severity="error",
    rationale="Our data-protection officer approves every grant that exposes personal data (LGPD art. 37).",
    lifecycle="draft",  # payments/transactions has no DPO-approved role yet; promote to enforce once it has
)
def pii_owner_reviewed(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    contract = product.contract
    if not contract.personal_columns:
        return
    roles = contract.odcs.roles or []
    if not any(role.secondLevelApprovers for role in roles):
        yield Finding(
            f"{len(contract.personal_columns)} personal columns but no role names `secondLevelApprovers`",
            file=str(contract.path),
            field="roles",
            line=contract.document.line_of("roles"),
            hint="Add `secondLevelApprovers: data-protection-officer` to the role that reads personal data.",
        )
