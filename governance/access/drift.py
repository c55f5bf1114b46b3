"""Drift between declared bindings and live IAM: grants nobody declared, declared grants missing.

Only what meshkit owns is compared: live grants on the products' resources, and live grants anywhere
(the project, a subscription) held by a principal that access.yaml names. Policy-tag grants are not
in exports by name, so they are listed as not verifiable instead of missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from governance.access.live import LiveGrant
from governance.iam.gcp import PLATFORM_PROJECT_ROLES
from governance.iam.model import Binding

KIND_ORDER = {"undeclared": 0, "missing": 1, "unverifiable": 2}


@dataclass(frozen=True)
class DriftItem:
    kind: str  # undeclared | missing | unverifiable
    cloud: str
    principal: str
    role: str
    resource: str
    product: str
    detail: str


@dataclass(frozen=True)
class DriftReport:
    items: tuple[DriftItem, ...]
    compared: tuple[str, ...]  # clouds compared

    def of(self, kind: str) -> tuple[DriftItem, ...]:
        return tuple(i for i in self.items if i.kind == kind)

    @property
    def clean(self) -> bool:
        return not self.of("undeclared") and not self.of("missing")


def _norm(principal: str) -> str:
    kind, _, name = principal.partition(":")
    return f"{kind}:{name.lower()}" if name else principal.lower()


def _key(cloud: str, principal: str, role: str, resource: str, condition: str | None) -> tuple[str, ...]:
    return (cloud, _norm(principal), role, resource, (condition or "").replace(" ", ""))


def detect_drift(declared: Iterable[Binding], live: Iterable[LiveGrant], clouds: Iterable[str]) -> DriftReport:
    compared = tuple(sorted(set(clouds)))
    bindings = [b for b in declared if b.cloud in compared]
    live_grants = [g for g in live if g.cloud in compared]
    declared_keys = {_key(b.cloud, b.principal, b.role, b.resource_name, b.condition): b for b in bindings}
    live_keys = {_key(g.cloud, g.principal, g.role, g.resource_name, g.condition): g for g in live_grants}
    resources = {(b.cloud, b.resource_name): b.product for b in bindings}
    principals: dict[str, str] = {}
    for b in bindings:
        principals.setdefault(_norm(b.principal), b.product)
    items: list[DriftItem] = []
    for key, g in sorted(live_keys.items()):
        if key in declared_keys:
            continue
        product = resources.get((g.cloud, g.resource_name)) or principals.get(_norm(g.principal))
        if product is None:
            continue  # not a meshkit product's resource nor principal
        if g.resource_name == "project" and g.role in PLATFORM_PROJECT_ROLES:
            continue  # granted by gcp-platform to pipeline identities; reads no data
        on_product = (g.cloud, g.resource_name) in resources
        where = "on the product's resource" if on_product else "outside the product's resources (wider scope)"
        cond = f" if {g.condition}" if g.condition else ""
        items.append(
            DriftItem(
                "undeclared",
                g.cloud,
                g.principal,
                g.role,
                g.resource_name,
                product,
                f"live grant {where}{cond}; declared nowhere ({g.source})",
            )
        )
    for key, b in sorted(declared_keys.items()):
        if key in live_keys:
            continue
        if b.resource_kind == "policy-tag":
            items.append(
                DriftItem(
                    "unverifiable",
                    b.cloud,
                    b.principal,
                    b.role,
                    b.resource,
                    b.product,
                    "policy tags are not named in IAM exports; check with "
                    "`gcloud data-catalog taxonomies policy-tags get-iam-policy`",
                )
            )
            continue
        items.append(
            DriftItem(
                "missing",
                b.cloud,
                b.principal,
                b.role,
                b.resource_name,
                b.product,
                f"declared for {b.contract_role} but not granted",
            )
        )
    items.sort(key=lambda i: (KIND_ORDER[i.kind], i.cloud, i.product, i.principal, i.role, i.resource))
    return DriftReport(tuple(items), compared)
