"""A binding: one principal holding one cloud role on one resource of a product, and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.iam.grants import Grant, ProductGrants
from governance.iam.resources import ProductResources
from meshkit.checks import Check

ALL_COLUMNS = ("*",)


@dataclass(frozen=True)
class Binding:
    """One role on one resource for one principal: what generated stacks create and the matrix lists."""

    cloud: str  # gcp | azure
    product: str  # domain/product
    principal: str  # access.yaml form: group:..., serviceAccount:..., managedIdentity:...
    role: str  # the cloud's role: roles/bigquery.dataViewer, Azure Event Hubs Data Sender, ...
    resource_kind: str  # table | view | bucket | policy-tag | cosmos-container | event-hub | blob-container
    resource: str  # readable name: project.dataset.table, gs://bucket/prefix/, account/db/container
    resource_name: str  # the name live exports use (Cloud Asset Inventory / Azure scope tail), for drift
    privilege: str  # read | write | fine-grained-read
    columns: tuple[str, ...] = ALL_COLUMNS
    condition: str | None = None  # IAM condition (CEL) on GCP
    grant: Grant | None = None  # the access.yaml grant it comes from; None for platform-derived bindings
    derived: str | None = None  # why a binding exists without its own grant (e.g. workload identity federation)

    @property
    def contract_role(self) -> str:
        return self.grant.role if self.grant else "(platform)"

    @property
    def note(self) -> str:
        return self.grant.note if self.grant else (self.derived or "")

    @property
    def key(self) -> str:
        """A stable, unique Terraform for_each key."""
        short = (
            self.resource.rstrip("/").rsplit(".", 1)[-1] if self.resource_kind in ("table", "view") else self.resource
        )
        if self.resource_kind == "bucket":
            short = short.removeprefix("gs://").split("/", 1)[0]
        return f"{self.resource_kind}:{short} {self.role.removeprefix('roles/')} {self.principal}"

    @property
    def sort_key(self) -> tuple[str, ...]:
        return (self.cloud, self.resource_kind, self.resource, self.role, self.principal)


@dataclass(frozen=True)
class ProductAccess:
    """Everything generated for one product's access: bindings per cloud and the notes about grants."""

    resources: ProductResources
    grants: ProductGrants
    bindings: tuple[Binding, ...]
    checks: tuple[Check, ...] = field(default=())

    def on(self, cloud: str) -> tuple[Binding, ...]:
        return tuple(b for b in self.bindings if b.cloud == cloud)
