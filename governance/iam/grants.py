"""Grants: one principal holding one contract role of one product, with its purpose and expiry.

Read from the product's `access.yaml` with governance.validation.access's parser (the file format
lives there). A grant is `active`, `grace` (expired, still generated for `grace_days` so the owner
can re-approve it without an outage) or `dropped` (expired for longer: left out of generated stacks,
with a note in the generated file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from governance.validation.access import lifecycle_checks, parse_access, principal_problem
from meshkit.checks import Check, Severity, Status
from meshkit.contracts.model import Contract, custom_properties
from meshkit.errors import ContractError, Location
from meshkit.products.model import ACCESS_FILE, DataProduct
from meshkit.yamlio import load_yaml

DEFAULT_GRACE_DAYS = 30
READ_ACCESS = frozenset({"read"})
WRITE_ACCESS = frozenset({"write", "readwrite", "admin"})
Cloud = Literal["gcp", "azure"]
GrantStatus = Literal["active", "grace", "dropped"]


@dataclass(frozen=True)
class Grant:
    """One principal of one cloud holding one contract role of one product."""

    product: str  # domain/product
    role: str  # the contract role
    access: str  # the role's ODCS access: read | write | ...
    personal: bool  # the role may read personal (unmasked or unmasking) data
    cloud: Cloud
    principal: str  # e.g. group:a@b.example, managedIdentity:mi-x
    purpose: str | None
    expires: date | None
    status: GrantStatus

    @property
    def writes(self) -> bool:
        return self.access in WRITE_ACCESS

    @property
    def kind(self) -> str:
        """The principal's type: user, group, serviceAccount, managedIdentity, ..."""
        return self.principal.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.principal.split(":", 1)[-1]

    @property
    def note(self) -> str:
        """One line for generated files: why the grant exists and until when."""
        until = self.expires.isoformat() if self.expires else "never (no expiry set)"
        tail = {"active": "", "grace": " — EXPIRED, in grace period", "dropped": " — EXPIRED, dropped"}[self.status]
        purpose = (self.purpose or "NO PURPOSE STATED").rstrip(".")
        return f"{self.role}: {purpose}; expires {until}{tail}"


@dataclass(frozen=True)
class ProductGrants:
    """Every grant of one product, and what is wrong with the access file (checks, never raised)."""

    product: DataProduct
    grants: tuple[Grant, ...]
    checks: tuple[Check, ...] = field(default=())

    @property
    def generated(self) -> tuple[Grant, ...]:
        """The grants a generated stack carries: active ones and expired ones still in grace."""
        return tuple(g for g in self.grants if g.status != "dropped")

    @property
    def dropped(self) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.status == "dropped")


def role_sees_personal_data(role_name: str, custom: dict[str, object]) -> bool:
    """A contract role may read personal data when it says so (`customProperties: personalData: true`)
    or, by the naming convention of the example products, when its name has a `pii` word."""
    flag = custom.get("personalData")
    if flag is not None:
        return flag is True or str(flag).strip().lower() in {"true", "yes", "1"}
    return "pii" in role_name.lower().replace("-", "_").split("_")


def _status(expires: date | None, today: date, grace_days: int) -> GrantStatus:
    if expires is None or expires >= today:
        return "active"
    return "grace" if today <= expires + timedelta(days=grace_days) else "dropped"


def _expiry(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None  # validation reports the malformed date with its line


def load_grants(product: DataProduct, *, today: date, grace_days: int = DEFAULT_GRACE_DAYS) -> ProductGrants:
    """The product's grants from its contract roles and access.yaml.

    Raises `ContractError` (file, field, fix) only when nothing usable can be read; lifecycle
    problems (no purpose, expired, dropped) come back as checks.
    """
    if grace_days < 0:
        raise ContractError(f"grace period {grace_days} days is negative", hint="Give 0 or more days, e.g. 30.")
    contract: Contract = product.contract
    path = product.directory / ACCESS_FILE
    if not path.is_file():
        return ProductGrants(product, (), ())
    document = load_yaml(path)
    bindings, problems = parse_access(document)
    if bindings is None:
        first = problems[0]
        raise ContractError(
            first.reason,
            location=Location(str(path), first.line, first.field),
            hint=first.hint,
        )
    roles = {r.role: r for r in contract.odcs.roles or () if r.role}
    grants: list[Grant] = []
    checks: list[Check] = []
    for i, binding in enumerate(bindings.bindings):
        role = roles.get(binding.role)
        if role is None:
            raise ContractError(
                f"role {binding.role!r} is not declared in the contract",
                location=Location(str(path), document.line_of(f"bindings[{i}].role"), f"bindings[{i}].role"),
                hint=f"Valid values are: {', '.join(sorted(roles)) or 'none'}; or add the role to {contract.path}.",
            )
        checks.extend(c for c in lifecycle_checks(document, i, binding, today) if c.rule != "access.expires")
        expires = _expiry(binding.expires)
        status = _status(expires, today, grace_days)
        if status == "dropped":
            checks.append(
                Check(
                    "access.dropped",
                    Status.WARNING,
                    f"binding of role {binding.role!r} expired on {expires} and is past the {grace_days}-day "
                    "grace period: it is left out of generated stacks",
                    file=str(path),
                    line=document.line_of(f"bindings[{i}].expires"),
                    field=f"bindings[{i}].expires",
                    hint="Re-approve the access and move `expires`, or remove the binding.",
                    severity=Severity.WARNING,
                )
            )
        personal = role_sees_personal_data(binding.role, custom_properties(role.customProperties))
        for cloud, principals in (("gcp", binding.gcp), ("azure", binding.azure)):
            for j, principal in enumerate(principals):
                problem = principal_problem(cloud, principal)
                if problem:
                    raise ContractError(
                        problem,
                        location=Location(
                            str(path), document.line_of(f"bindings[{i}].{cloud}[{j}]"), f"bindings[{i}].{cloud}[{j}]"
                        ),
                        hint="Run `meshkit validate` for the valid principal forms.",
                    )
                grants.append(
                    Grant(
                        product=product.ref,
                        role=binding.role,
                        access=(role.access or "read").lower(),
                        personal=personal,
                        cloud=cloud,  # type: ignore[arg-type]  # one of the two literals above
                        principal=principal,
                        purpose=(binding.purpose or "").strip() or None,
                        expires=expires,
                        status=status,
                    )
                )
    grants.sort(key=lambda g: (g.role, g.cloud, g.principal))
    return ProductGrants(product, tuple(grants), tuple(checks))
