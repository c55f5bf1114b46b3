"""The effective access matrix: principal x product x resource (dataset/table/column, prefix, hub) x
privilege, expanded from every product's generated bindings (what the stacks grant, no more)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from governance.iam.grants import DEFAULT_GRACE_DAYS
from governance.iam.model import Binding, ProductAccess
from governance.iam.plan import product_access
from governance.iam.resources import CONSUMER_TABLES
from meshkit.checks import Check, Severity, Status
from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.model import DataProduct

ALL = "*"
UNTAGGED = "* (columns without a policy tag)"


@dataclass(frozen=True)
class AccessRow:
    """One principal's privilege on one resource (and column) of one product."""

    principal: str
    cloud: str
    product: str
    resource_kind: str
    resource: str
    column: str
    privilege: str
    role: str
    contract_role: str
    expires: str
    status: str

    @property
    def key(self) -> tuple[str, ...]:
        return (self.principal, self.product, self.cloud, self.resource, self.column, self.privilege, self.role)


@dataclass(frozen=True)
class AccessMatrix:
    rows: tuple[AccessRow, ...]
    plans: tuple[ProductAccess, ...]
    checks: tuple[Check, ...] = field(default=())

    @property
    def bindings(self) -> tuple[Binding, ...]:
        return tuple(b for plan in self.plans for b in plan.bindings)


def _row(b: Binding, resource: str, column: str, privilege: str) -> AccessRow:
    grant = b.grant
    return AccessRow(
        principal=b.principal,
        cloud=b.cloud,
        product=b.product,
        resource_kind=b.resource_kind,
        resource=resource,
        column=column,
        privilege=privilege,
        role=b.role,
        contract_role=b.contract_role,
        expires=grant.expires.isoformat() if grant and grant.expires else ("never" if grant else "-"),
        status=grant.status if grant else "platform",
    )


def expand(plan: ProductAccess) -> list[AccessRow]:
    """Rows of one product: tables are `*` (minus tagged columns when the product has policy tags),
    views and policy tags one row per column they expose."""
    r = plan.resources
    rows: list[AccessRow] = []
    for b in plan.bindings:
        if b.resource_kind == "table":
            rows.append(
                _row(b, b.resource, UNTAGGED if r.tagged and "dead_letters" not in b.resource else ALL, b.privilege)
            )
        elif b.resource_kind == "view":
            rows += [_row(b, b.resource, column, "read") for column in b.columns]
        elif b.resource_kind == "policy-tag":
            for suffix in CONSUMER_TABLES:
                table = f"{r.project}.{r.dataset}.{r.table_id(suffix)}"
                rows += [_row(b, table, column, "read (fine-grained)") for column in b.columns]
        else:
            rows.append(_row(b, b.resource, "-", b.privilege))
    return rows


def access_matrix(
    settings: Settings, products: list[DataProduct], *, today: date, grace_days: int = DEFAULT_GRACE_DAYS
) -> AccessMatrix:
    """The matrix over `products`; a product whose access cannot be planned becomes an error check."""
    plans: list[ProductAccess] = []
    checks: list[Check] = []
    for product in products:
        try:
            plan = product_access(product, settings, today=today, grace_days=grace_days)
        except MeshkitError as exc:
            checks.append(Check("access.plan", Status.ERROR, f"{product.ref}: {exc.message}", severity=Severity.ERROR))
            continue
        plans.append(plan)
        checks += plan.checks
    rows = sorted({row.key: row for plan in plans for row in expand(plan)}.values(), key=lambda row: row.key)
    return AccessMatrix(tuple(rows), tuple(plans), tuple(checks))
