"""The review's "policies" section: every policy on every product, with a per-policy tally."""

from __future__ import annotations

from collections import Counter

from governance.policies.model import Policy, evaluate
from governance.policies.registry import load_policies
from governance.review.sections import ReviewContext, ReviewSection, ReviewTable
from meshkit.checks import Check, Severity, Status
from meshkit.errors import ConfigError


def _lifecycle(rule: Policy) -> str:
    return f"enforce from {rule.enforce_from.isoformat()}" if rule.enforce_from else rule.lifecycle


def policies_section(context: ReviewContext, policies: tuple[Policy, ...]) -> ReviewSection:
    """Evaluate `policies` on every product of `context`."""
    per_product: dict[str, tuple[Check, ...]] = {}
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for product in context.products:
        checks: list[Check] = []
        for rule in policies:
            found = evaluate(rule, product, context)
            if all(c.status is Status.PASSED for c in found):
                passed[rule.id] += 1
            else:
                failed[rule.id] += 1
            checks.extend(found)
        per_product[product.ref] = tuple(checks)
    all_checks = tuple(c for checks in per_product.values() for c in checks)
    table = ReviewTable(
        columns=("policy", "title", "lifecycle", "severity", "passed", "failed"),
        rows=tuple(
            (r.id, r.title, _lifecycle(r), r.severity.value, str(passed[r.id]), str(failed[r.id])) for r in policies
        ),
    )
    blocking = sum(1 for c in all_checks if c.status in (Status.FAILED, Status.ERROR))
    warnings = sum(1 for c in all_checks if c.status is Status.WARNING)
    summary = f"{len(policies)} policies on {len(context.products)} products: {blocking} failing, {warnings} warnings"
    return ReviewSection(
        key="policies",
        title="Policies",
        summary=summary,
        checks=all_checks,
        per_product=per_product,
        tables=(table,),
        data={
            "policies": [
                {
                    "id": r.id,
                    "title": r.title,
                    "severity": r.severity.value,
                    "lifecycle": r.lifecycle,
                    "enforce_from": r.enforce_from.isoformat() if r.enforce_from else None,
                    "rationale": r.rationale,
                    "source": r.source,
                    "passed": passed[r.id],
                    "failed": failed[r.id],
                }
                for r in policies
            ]
        },
    )


def review_section(context: ReviewContext) -> ReviewSection:
    """Built-in and team policies (from `<root>/policies/`) on every product of the review.

    A broken team policy file does not stop the review: it becomes one error check naming the file.
    """
    try:
        policies = load_policies(context.settings.root)
    except ConfigError as exc:
        broken = Check(
            rule="policy.load",
            status=Status.ERROR,
            reason=exc.reason,
            file=exc.location.file if exc.location else None,
            line=exc.location.line if exc.location else None,
            hint=exc.hint,
            severity=Severity.ERROR,
        )
        section = policies_section(context, load_policies(context.settings.root, include_team=False))
        return ReviewSection(
            key=section.key,
            title=section.title,
            summary=f"{section.summary}; team policies not loaded: {exc.message}",
            checks=(broken, *section.checks),
            per_product=section.per_product,
            tables=section.tables,
            data=section.data,
        )
    return policies_section(context, policies)
