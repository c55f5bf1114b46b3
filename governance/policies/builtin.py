"""The built-in policies: the governance rules every product meets, on top of schema validation.

Validation (governance.validation) says whether a product is well formed; these policies say whether
it is governed: owned, classified, promised (SLA, retention, quality), least-privileged, observed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

from governance.policies.facts import mesh_facts, pipeline_job, review_moment
from governance.policies.model import Finding, Policy, make_policy, policy
from governance.review.sections import ReviewContext
from governance.validation.access import parse_access
from meshkit.contracts.model import PERSONAL_CLASSIFICATIONS, Column, Contract
from meshkit.errors import MeshkitError
from meshkit.names import validate_name
from meshkit.products.model import ACCESS_FILE, DataProduct
from meshkit.yamlio import load_yaml
from monitoring.slo.status import product_slos

DEFAULT_LINEAGE_MAX_AGE_DAYS = 7
REQUIRED_SLA = ("latency", "availability")
WRITE_ACCESS = frozenset({"write", "readwrite", "admin"})
PEOPLE_PRINCIPALS = frozenset({"user", "group", "domain", "principalSet"})  # principalSet: a pool of identities
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def _unreadable(exc: MeshkitError) -> Finding:
    return Finding(f"cannot be checked: {exc.reason}", file=str(exc.location) if exc.location else None)


@policy(
    id="owner-present",
    title="The product names an owner",
    severity="error",
    rationale="Someone must be accountable for each product: access approvals, incidents and changes go to them.",
)
def owner_present(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    try:
        team = product.descriptor.team
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    if not any((m.role or "").strip().lower() == "owner" for m in team.members):
        yield Finding(
            f"team {team.name!r} has no member with role `owner`",
            file=str(product.descriptor_path),
            field="team.members",
            hint="Add a team member with `role: owner` (a person, not only a team name) to dataproduct.yaml.",
        )


@policy(
    id="personal-data-classified",
    title="Every column is classified; personal data is restricted and masked",
    severity="error",
    rationale="Masking, access reviews and the LGPD record of processing all start from the classification.",
)
def personal_data_classified(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    try:
        contract = product.contract
        columns = contract.columns
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    for col in columns:
        if not col.classification:
            yield _column_finding(
                contract,
                col,
                f"column {col.name!r} has no classification",
                "Classify every column (public, internal, confidential or restricted).",
            )
        elif col.personal and col.classification not in PERSONAL_CLASSIFICATIONS:
            yield _column_finding(
                contract,
                col,
                f"personal column {col.name!r} is classified {col.classification!r}",
                "Classify personal data restricted or confidential.",
            )
        if col.personal and col.masking == "none":
            yield _column_finding(
                contract,
                col,
                f"personal column {col.name!r} leaves the raw zone unmasked (masking: none)",
                "Mask it with hash (join keys), partial or redact.",
            )


def _column_finding(contract: Contract, col: Column, reason: str, hint: str) -> Finding:
    line = contract.document.line_of(col.field_path)
    return Finding(reason, file=str(contract.path), field=col.field_path, line=line, hint=hint)


@policy(
    id="sla-present",
    title="The contract promises latency and availability",
    severity="error",
    rationale="Consumers build on a product only when it says how fresh and how available it is; SLOs derive from it.",
)
def sla_present(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    try:
        contract = product.contract
        sla = contract.sla
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    missing = [name for name in REQUIRED_SLA if name not in sla or sla[name].value is None]
    if missing:
        yield Finding(
            f"slaProperties lack {', '.join(missing)}",
            file=str(contract.path),
            field="slaProperties",
            line=contract.document.line_of("slaProperties"),
            hint="Add e.g. `{property: latency, value: 15, unit: m}` and `{property: availability, value: 99.5, "
            "unit: percent}`.",
        )


@policy(
    id="quality-rules-present",
    title="The contract declares data quality rules",
    severity="warning",
    rationale="Quality rules are what `meshkit test` runs; a product without them cannot show it is correct.",
)
def quality_rules_present(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    try:
        contract = product.contract
        table = contract.table
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    rules = len(table.quality or ()) + sum(len(p.quality or ()) for p in table.properties or ())
    if rules == 0:
        yield Finding(
            f"table {contract.table_name!r} has no quality rules",
            file=str(contract.path),
            field="schema[0].quality",
            line=contract.document.line_of("schema[0]"),
            hint="Add at least a rowCount or duplicateValues rule on the key, and invalidValues on enums.",
        )


@policy(
    id="retention-set",
    title="The contract sets a retention period",
    severity="error",
    rationale="Personal data may be kept only as long as needed; storage lifecycle rules derive from retention.",
)
def retention_set(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    try:
        contract = product.contract
        retention = contract.sla.get("retention")
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    if retention is None or retention.value in (None, "") or not retention.unit:
        yield Finding(
            "no retention (value and unit) in slaProperties",
            file=str(contract.path),
            field="slaProperties",
            line=contract.document.line_of("slaProperties"),
            hint="Add `{property: retention, value: 5, unit: y}` (how long data is kept).",
        )


@policy(
    id="least-privilege-roles",
    title="Only workload identities hold write or admin roles",
    severity="error",
    rationale="People read; pipelines write. A group with write access can alter the lake outside the contract.",
)
def least_privilege_roles(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    path = product.directory / ACCESS_FILE
    if not path.exists():
        return  # a missing access.yaml is a validation finding, not this policy's
    try:
        contract = product.contract
        document = load_yaml(path)
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    bindings, _ = parse_access(document)
    writers = {(r.role or ""): (r.access or "").lower() for r in contract.odcs.roles or ()}
    for i, binding in enumerate(bindings.bindings if bindings else ()):
        access = writers.get(binding.role, "")
        if access not in WRITE_ACCESS:
            continue
        for cloud, principals in (("gcp", binding.gcp), ("azure", binding.azure)):
            for k, principal in enumerate(principals):
                if principal.split(":", 1)[0] in PEOPLE_PRINCIPALS:
                    field = f"bindings[{i}].{cloud}[{k}]"
                    yield Finding(
                        f"{access} role {binding.role!r} is granted to people ({principal})",
                        file=str(path),
                        field=field,
                        line=document.line_of(field),
                        hint="Grant write/admin roles only to service accounts, service principals or managed "
                        "identities; give people a read role and a break-glass procedure.",
                    )


def lineage_recent(max_age_days: int = DEFAULT_LINEAGE_MAX_AGE_DAYS) -> Policy:
    """`lineage-recent`, with the age limit of the newest COMPLETE pipeline event in days."""

    def check(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
        job = pipeline_job(product.ref)
        last = mesh_facts(ctx).lineage.get(job)
        now = review_moment(ctx.today)
        hint = f"Run the pipeline (`meshkit run {product.ref}`); it emits OpenLineage events to the lineage file."
        if last is None:
            yield Finding(f"no COMPLETE lineage event for job {job!r}", hint=hint)
        elif now - last > timedelta(days=max_age_days):
            age = (now - last).days
            yield Finding(f"last COMPLETE lineage event of {job!r} is {age} days old (limit {max_age_days})", hint=hint)

    return make_policy(
        check,
        id="lineage-recent",
        title=f"The pipeline emitted lineage in the last {max_age_days} days",
        severity="warning",
        rationale="Lineage that stops means the pipeline stopped or lost its instrumentation; both need an owner.",
        lifecycle="warn",
    )


@policy(
    id="slos-met",
    title="No objective has exhausted its error budget",
    severity="error",
    rationale="An exhausted budget means the contract's SLA is broken for consumers; changes should wait.",
    lifecycle="warn",
)
def slos_met(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    status = mesh_facts(ctx).slos.get(product.ref)
    if status is None:  # a product outside the review's product list
        status = product_slos(product, [], review_moment(ctx.today))
    if status.error:
        yield Finding(f"SLOs cannot be judged: {status.error}")
    for objective in status.statuses:
        if objective.state == "exhausted":
            yield Finding(
                f"objective {objective.objective.name!r} has exhausted its error budget "
                f"(SLI {objective.sli:.4%} against {objective.objective.target:.4%})"
                if objective.sli is not None
                else f"objective {objective.objective.name!r} has exhausted its error budget",
                hint=f"See `meshkit slo status {product.ref}`; fix reliability before new features.",
            )


@policy(
    id="naming",
    title="Names follow the conventions",
    severity="warning",
    rationale="Predictable names make products findable and keep SQL, paths and Terraform identifiers safe.",
)
def naming(product: DataProduct, ctx: ReviewContext) -> Iterator[Finding]:
    for value, what in ((product.domain, "domain"), (product.name, "product")):
        try:
            validate_name(value, what)
        except MeshkitError as exc:
            yield Finding(exc.reason, file=str(product.directory), hint=exc.hint)
    try:
        contract = product.contract
        table, columns = contract.table_name, contract.columns
    except MeshkitError as exc:
        yield _unreadable(exc)
        return
    if not SNAKE_CASE.match(table):
        yield Finding(
            f"table name {table!r} is not snake_case",
            file=str(contract.path),
            field="schema[0].physicalName",
            line=contract.document.line_of("schema[0]"),
            hint="Use lower-case letters, digits and single underscores, e.g. `customer_exposure`.",
        )
    for col in columns:
        if not SNAKE_CASE.match(col.name):
            yield Finding(
                f"column {col.name!r} is not snake_case",
                file=str(contract.path),
                field=f"{col.field_path}.name",
                line=contract.document.line_of(f"{col.field_path}.name"),
                hint="Rename it in snake_case (and map the source with customProperty `sourceField`).",
            )


def builtin_policies(lineage_max_age_days: int = DEFAULT_LINEAGE_MAX_AGE_DAYS) -> tuple[Policy, ...]:
    """The built-in set, in report order."""
    return (
        owner_present,
        personal_data_classified,
        sla_present,
        quality_rules_present,
        retention_set,
        least_privilege_roles,
        lineage_recent(lineage_max_age_days),
        slos_met,
        naming,
    )
