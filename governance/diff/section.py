"""The review's "diff" section: contract changes since `context.base_revision` and the version gate."""

from __future__ import annotations

from governance.diff import ContractDiff, MeshDiff, diff_mesh
from governance.diff.changes import Change
from governance.review.sections import ReviewContext, ReviewSection, ReviewTable
from meshkit.checks import Check, Severity, Status
from meshkit.errors import MeshkitError

RULE_VERSION = "diff.version-bump"
RULE_APPROVAL = "diff.governance-approval"
RULE_COMPARE = "diff.compare"


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def contract_checks(diff: ContractDiff) -> tuple[Check, ...]:
    """What one product's diff means for the gate: a missing bump fails, governance changes warn."""
    if diff.status == "error":
        return (Check(RULE_COMPARE, Status.ERROR, f"{diff.ref}: cannot compare: {diff.error}", file=diff.path),)
    checks: list[Check] = []
    version = diff.version
    if version is not None and not version.ok:
        named = "; ".join(c.message for c in diff.changes if c.kind != "non-breaking") or "changes"
        hint = f"Set `version: {diff.suggestion}` in the contract." if diff.suggestion else None
        checks.append(
            Check(
                RULE_VERSION,
                Status.FAILED,
                f"{diff.ref}: {version.message} ({named})",
                file=diff.path,
                field="version",
                hint=hint,
            )
        )
    elif version is not None and version.required != "none":
        checks.append(
            Check(
                RULE_VERSION,
                Status.PASSED,
                f"{diff.ref}: {version.message}",
                file=diff.path,
                field="version",
                severity=Severity.INFO,
            )
        )
    governance = [c for c in diff.changes if c.kind == "governance"]
    if governance:
        checks.append(
            Check(
                RULE_APPROVAL,
                Status.WARNING,
                f"{diff.ref}: needs governance approval: " + "; ".join(c.message for c in governance),
                file=diff.path,
                field=governance[0].field,
                severity=Severity.WARNING,
                hint="Ask the governance review board to approve the pull request.",
            )
        )
    if diff.status == "removed":
        checks.append(
            Check(
                "diff.product-removed",
                Status.WARNING,
                f"{diff.ref}: product removed",
                file=diff.path,
                severity=Severity.WARNING,
                hint="Deprecate first (status: deprecated) and tell the consumers.",
            )
        )
    return tuple(checks)


def change_rows(diff: ContractDiff) -> list[tuple[str, ...]]:
    return [_row(diff.ref, c) for c in diff.changes]


def _row(ref: str, change: Change) -> tuple[str, ...]:
    return (ref, change.kind, change.code, change.field, f"{_shown(change.old)} → {_shown(change.new)}")


def section_from(mesh: MeshDiff) -> ReviewSection:
    per_product = {d.ref: contract_checks(d) for d in mesh.contracts}
    checks = tuple(c for d in mesh.contracts for c in per_product[d.ref])
    changed = [d for d in mesh.contracts if d.status != "unchanged"]
    failing = [d for d in mesh.contracts if not d.ok]
    versions = ReviewTable(
        ("product", "status", "version", "required", "ok"),
        tuple(
            (
                d.ref,
                d.status,
                f"{d.version.old_version} → {d.version.new_version}" if d.version else "—",
                d.version.required if d.version else "—",
                "yes" if d.ok else "no",
            )
            for d in changed
        ),
    )
    changes = ReviewTable(
        ("product", "kind", "change", "field", "old → new"), tuple(r for d in changed for r in change_rows(d))
    )
    summary = f"{len(changed)} of {len(mesh.contracts)} contracts changed since {mesh.base} ({mesh.commit[:12]}); " + (
        f"{len(failing)} without the required version bump." if failing else "every version bump covers its changes."
    )
    return ReviewSection(
        key="diff",
        title=f"Contract changes since {mesh.base}",
        summary=summary,
        checks=checks,
        per_product={k: v for k, v in per_product.items() if v},
        tables=(versions, changes) if changed else (),
        data=mesh.to_dict(),
    )


def review_section(context: ReviewContext) -> ReviewSection:
    """The diff against `context.base_revision`; an explicit no-op section when there is none."""
    if not context.base_revision:
        return ReviewSection(
            key="diff",
            title="Contract changes",
            summary="Not compared: no base revision (run `meshkit review --base origin/main`).",
        )
    try:
        mesh = diff_mesh(context.settings.root, context.base_revision, context.settings.domains_dir)
    except MeshkitError as exc:
        check = Check(RULE_COMPARE, Status.ERROR, exc.message, hint=exc.hint)
        return ReviewSection(key="diff", title="Contract changes", summary=exc.reason, checks=(check,))
    refs = {p.ref for p in context.products}
    if refs:
        # the review may cover a subset of the mesh; removed products are always shown
        mesh = MeshDiff(
            mesh.base, mesh.commit, tuple(d for d in mesh.contracts if d.ref in refs or d.status == "removed")
        )
    return section_from(mesh)
