"""Checks of a product's `access.yaml`: which real principals hold each contract role, per cloud.

Format (`meshkit/v1`)::

    apiVersion: meshkit/v1
    kind: AccessBindings
    bindings:
      - role: payments_reader            # a role declared in the contract's `roles`
        purpose: Credit-risk analysts     # why these principals need it (reviewed by the owner)
        expires: '2026-12-31'             # YYYY-MM-DD; access is re-approved before this date
        gcp:                              # IAM members
          - group:risk-analysts@fintech.example
          - serviceAccount:risk-pipeline@fintech-lake-prod.iam.gserviceaccount.com
          - user:ana.souza@fintech.example
        azure:                            # Entra ID principals
          - group:6f1c2b1e-4d0a-4c59-9a53-2f4b8e0d7c11      # group object id
          - servicePrincipal:0b9e5c3a-8f7d-4e21-b6a4-5d3c2e1f0a98
          - managedIdentity:mi-payments-relay                # user-assigned identity name

GCP principals: `user:`/`group:` + e-mail, `serviceAccount:` + `*.gserviceaccount.com` e-mail,
`domain:` + domain, `principal://` / `principalSet://` (workload identity federation). Azure
principals: `user:`/`group:`/`servicePrincipal:` + object id (UUID), `managedIdentity:` + name.
Public principals (`allUsers`, `allAuthenticatedUsers`) are never allowed. No key or secret
belongs here: only principal names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshkit.checks import Check, Severity, Status
from meshkit.contracts.model import Contract
from meshkit.yamlio import YamlDocument

PUBLIC_PRINCIPALS = frozenset({"allusers", "allauthenticatedusers"})
_EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GCP_PRINCIPALS: dict[str, re.Pattern[str]] = {
    "user": re.compile(rf"^user:{_EMAIL}$"),
    "group": re.compile(rf"^group:{_EMAIL}$"),
    "serviceAccount": re.compile(r"^serviceAccount:[a-z0-9][a-z0-9-]{4,62}@[a-z0-9][a-z0-9.-]*\.gserviceaccount\.com$"),
    "domain": re.compile(r"^domain:[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$"),
    "principal": re.compile(r"^principal://iam\.googleapis\.com/\S+$"),
    "principalSet": re.compile(r"^principalSet://iam\.googleapis\.com/\S+$"),
}
AZURE_PRINCIPALS: dict[str, re.Pattern[str]] = {
    "user": re.compile(rf"^user:(?:{_UUID}|{_EMAIL})$"),
    "group": re.compile(rf"^group:{_UUID}$"),
    "servicePrincipal": re.compile(rf"^servicePrincipal:{_UUID}$"),
    "managedIdentity": re.compile(r"^managedIdentity:[A-Za-z0-9][A-Za-z0-9_-]{2,127}$"),
}
_FORMS = {
    "gcp": "user:<e-mail>, group:<e-mail>, serviceAccount:<name>@<project>.iam.gserviceaccount.com, "
    "domain:<domain>, principal://… or principalSet://…",
    "azure": "user:<object-id or UPN>, group:<object-id>, servicePrincipal:<object-id>, managedIdentity:<name>",
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class AccessBinding(BaseModel):
    """One role granted to principals on each cloud, for a purpose, until a date."""

    model_config = ConfigDict(extra="forbid")

    role: str
    purpose: str | None = None
    expires: str | None = None
    gcp: list[str] = Field(default_factory=list)
    azure: list[str] = Field(default_factory=list)


class AccessBindings(BaseModel):
    """The whole `access.yaml`."""

    model_config = ConfigDict(extra="forbid")

    apiVersion: Literal["meshkit/v1"]  # noqa: N815 - file format field name
    kind: Literal["AccessBindings"]
    bindings: list[AccessBinding] = Field(default_factory=list)


def _check(document: YamlDocument, rule: str, reason: str, field: str, hint: str, *, warning: bool = False) -> Check:
    return Check(
        rule,
        Status.WARNING if warning else Status.FAILED,
        reason,
        file=str(document.path),
        line=document.line_of(field),
        field=field or None,
        hint=hint,
        severity=Severity.WARNING if warning else Severity.ERROR,
    )


def parse_access(document: YamlDocument) -> tuple[AccessBindings | None, list[Check]]:
    """The typed bindings, or None and one check per pydantic error (with its line)."""
    try:
        return AccessBindings.model_validate(document.data), []
    except ValidationError as exc:
        checks = []
        for err in exc.errors():
            field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
            checks.append(
                _check(
                    document,
                    "access.format",
                    f"{field or 'access.yaml'}: {err['msg'].lower()}",
                    field,
                    "access.yaml needs `apiVersion: meshkit/v1`, `kind: AccessBindings` and `bindings` of "
                    "{role, purpose, expires, gcp, azure} (see governance.validation.access).",
                )
            )
        return None, checks


def principal_problem(cloud: str, principal: str) -> str | None:
    """Why `principal` is not a well-formed principal of `cloud`, or None when it is."""
    patterns = GCP_PRINCIPALS if cloud == "gcp" else AZURE_PRINCIPALS
    kind = principal.split(":", 1)[0]
    pattern = patterns.get(kind)
    if pattern is None:
        return f"unknown {cloud} principal type {kind!r}; valid types are: {', '.join(patterns)}"
    if not pattern.match(principal):
        return f"malformed {cloud} principal {principal!r}"
    return None


def _principal_checks(document: YamlDocument, i: int, binding: AccessBinding) -> Iterator[Check]:
    for cloud, principals in (("gcp", binding.gcp), ("azure", binding.azure)):
        for j, principal in enumerate(principals):
            field = f"bindings[{i}].{cloud}[{j}]"
            bare = principal.split(":", 1)[-1].strip().lower()
            if principal.strip().lower() in PUBLIC_PRINCIPALS or bare in PUBLIC_PRINCIPALS:
                yield _check(
                    document,
                    "access.public-principal",
                    f"role {binding.role!r} is granted to the public principal {principal!r}",
                    field,
                    "Data products are never public: grant the role to a group or service identity instead.",
                )
                continue
            problem = principal_problem(cloud, principal)
            if problem:
                yield _check(document, "access.principal", problem, field, f"Write it as one of: {_FORMS[cloud]}.")


def lifecycle_checks(document: YamlDocument, i: int, binding: AccessBinding, today: date) -> Iterator[Check]:
    """Purpose and expiry checks of one binding (no purpose, no expiry, malformed date, expired)."""
    field = f"bindings[{i}]"
    if not (binding.purpose or "").strip():
        yield _check(
            document,
            "access.purpose",
            f"binding of role {binding.role!r} states no purpose",
            field,
            "Add `purpose:` saying why these principals need the role; reviewers approve purposes.",
            warning=True,
        )
    if binding.expires is None:
        yield _check(
            document,
            "access.expires",
            f"binding of role {binding.role!r} never expires",
            field,
            "Add `expires: YYYY-MM-DD` so the access is re-approved (e.g. within a year).",
            warning=True,
        )
        return
    try:
        if not _ISO_DATE.match(binding.expires):
            raise ValueError(binding.expires)
        expires = date.fromisoformat(binding.expires)
    except ValueError:
        yield _check(
            document,
            "access.expires",
            f"expires {binding.expires!r} is not a date of the form YYYY-MM-DD",
            f"{field}.expires",
            "Write the date as YYYY-MM-DD, e.g. '2026-12-31'.",
        )
        return
    if expires < today:
        yield _check(
            document,
            "access.expired",
            f"binding of role {binding.role!r} expired on {expires.isoformat()}",
            f"{field}.expires",
            "Re-approve the access and move the date, or remove the binding.",
            warning=True,
        )


_lifecycle_checks = lifecycle_checks  # the name governance.review.access_section imports


def access_checks(document: YamlDocument, contract: Contract | None, *, today: date) -> list[Check]:
    """All checks of one loaded access.yaml; role checks need the (valid) contract."""
    bindings, checks = parse_access(document)
    if bindings is None:
        return checks
    roles = [r.role for r in (contract.odcs.roles or ()) if r.role] if contract is not None else None
    for i, binding in enumerate(bindings.bindings):
        if roles is not None and binding.role not in roles:
            checks.append(
                _check(
                    document,
                    "access.role-exists",
                    f"role {binding.role!r} is not declared in the contract",
                    f"bindings[{i}].role",
                    f"Valid values are: {', '.join(roles) or 'none (the contract declares no roles)'}.",
                )
            )
        checks.extend(_principal_checks(document, i, binding))
        checks.extend(lifecycle_checks(document, i, binding, today))
    for role in roles or ():
        if not any(b.role == role and (b.gcp or b.azure) for b in bindings.bindings):
            checks.append(
                _check(
                    document,
                    "contract.role-has-access",
                    f"contract role {role!r} is bound to no principal",
                    "bindings",
                    f"Add a binding `- role: {role}` with its purpose, expiry and gcp/azure principals, "
                    "or remove the role from the contract.",
                )
            )
    return sorted(checks, key=lambda c: (c.line or 0, c.rule))


def missing_access_checks(contract: Contract, access_file: str) -> list[Check]:
    """A product without access.yaml: its contract roles are held by nobody we know of (a warning)."""
    roles = [r.role for r in contract.odcs.roles or () if r.role]
    if not roles:
        return []
    return [
        Check(
            "contract.role-has-access",
            Status.WARNING,
            f"no access.yaml: contract roles {', '.join(roles)} are bound to no principal",
            file=str(contract.path),
            line=contract.document.line_of("roles"),
            field="roles",
            hint=f"Create {access_file} (see governance.validation.access for the format).",
            severity=Severity.WARNING,
        )
    ]
