"""A product's access plan: its grants turned into bindings on both clouds (a pure function)."""

from __future__ import annotations

from datetime import date

from governance.iam.azure import azure_bindings
from governance.iam.gcp import gcp_bindings
from governance.iam.grants import DEFAULT_GRACE_DAYS, load_grants
from governance.iam.model import ProductAccess
from governance.iam.resources import product_resources
from meshkit.config import Settings
from meshkit.products.model import DataProduct


def product_access(
    product: DataProduct, settings: Settings, *, today: date, grace_days: int = DEFAULT_GRACE_DAYS
) -> ProductAccess:
    """Grants (access.yaml + contract roles) -> GCP IAM and Azure RBAC bindings, sorted."""
    resources = product_resources(product, settings)
    grants = load_grants(product, today=today, grace_days=grace_days)
    bindings = gcp_bindings(resources, grants.generated)
    azure, notes = azure_bindings(resources, grants.generated)
    bindings += azure
    return ProductAccess(
        resources=resources,
        grants=grants,
        bindings=tuple(sorted(bindings, key=lambda b: b.sort_key)),
        checks=grants.checks + tuple(notes),
    )
