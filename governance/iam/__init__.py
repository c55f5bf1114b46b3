"""Access as code: contract roles + access.yaml -> grants (purpose, expiry, grace) -> GCP IAM and
Azure RBAC bindings scoped to the product's own resources."""

from __future__ import annotations

from governance.iam.grants import DEFAULT_GRACE_DAYS, Grant, ProductGrants, load_grants
from governance.iam.model import Binding, ProductAccess
from governance.iam.plan import product_access
from governance.iam.resources import ProductResources, product_resources

__all__ = [
    "DEFAULT_GRACE_DAYS",
    "Binding",
    "Grant",
    "ProductAccess",
    "ProductGrants",
    "ProductResources",
    "load_grants",
    "product_access",
    "product_resources",
]
