"""A policy: one governance rule over a data product, with a lifecycle that sets how loudly it reports.

Lifecycle: `draft` runs but reports findings as info; `warn` reports them as warnings; `enforce`
reports them at the policy's severity, but only from `enforce_from` — before that date an enforced
policy still reports warnings that say when enforcement starts (the grace period for domain teams).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from governance.review.sections import ReviewContext
from meshkit.checks import Check, Severity, Status
from meshkit.errors import ConfigError
from meshkit.products.model import DataProduct

Lifecycle = Literal["draft", "warn", "enforce"]
LIFECYCLES: tuple[str, ...] = get_args(Lifecycle)
SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)


@dataclass(frozen=True)
class Finding:
    """What a policy found wrong with a product, where, and what to do about it."""

    reason: str
    file: str | None = None
    field: str | None = None
    line: int | None = None
    hint: str | None = None


PolicyCheck = Callable[[DataProduct, ReviewContext], Iterable[Finding]]


@dataclass(frozen=True)
class Policy:
    """A named governance rule; `check` yields one `Finding` per violation and nothing when it holds."""

    id: str
    title: str
    severity: Severity
    rationale: str
    lifecycle: Lifecycle
    check: PolicyCheck
    enforce_from: date | None = None
    source: str = "built-in"  # the file that defined it, for error messages and the report

    def __call__(self, product: DataProduct, context: ReviewContext) -> Iterable[Finding]:
        return self.check(product, context)

    def outcome(self, today: date) -> tuple[Status, Severity, str]:
        """Status and severity of a finding on `today`, and a note on the lifecycle ("" when enforced)."""
        if self.lifecycle == "draft":
            return Status.WARNING, Severity.INFO, "draft policy, reported for information"
        if self.lifecycle == "warn":
            return Status.WARNING, Severity.WARNING, "not enforced yet"
        if self.enforce_from is not None and today < self.enforce_from:
            return Status.WARNING, Severity.WARNING, f"enforced from {self.enforce_from.isoformat()}"
        if self.severity is Severity.ERROR:
            return Status.FAILED, Severity.ERROR, ""
        return Status.WARNING, self.severity, ""


def _date(value: date | str | None, where: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: enforce_from {value!r} is not a date",
            hint="Write it as YYYY-MM-DD, e.g. enforce_from='2027-01-31'.",
        ) from exc


def make_policy(
    check: PolicyCheck,
    *,
    id: str,  # the policy's public field name (shadows the builtin on purpose)
    title: str,
    severity: str,
    rationale: str,
    lifecycle: str = "enforce",
    enforce_from: date | str | None = None,
    source: str = "built-in",
) -> Policy:
    """Build a `Policy`, raising `ConfigError` that names the policy and the bad field."""
    where = f"policy {id!r}"
    if not isinstance(id, str) or not id.strip() or any(c.isspace() for c in id):
        raise ConfigError(f"policy id {id!r} is empty or contains spaces", hint="Use a short kebab-case id.")
    for name, value in (("title", title), ("rationale", rationale)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: `{name}` is empty", hint=f"Say in one line what the policy's {name} is.")
    if severity not in SEVERITIES:
        raise ConfigError(
            f"{where}: severity {severity!r} is not valid", hint=f"Valid values are: {', '.join(SEVERITIES)}."
        )
    if lifecycle not in LIFECYCLES:
        raise ConfigError(
            f"{where}: lifecycle {lifecycle!r} is not valid", hint=f"Valid values are: {', '.join(LIFECYCLES)}."
        )
    start = _date(enforce_from, where)
    if start is not None and lifecycle != "enforce":
        raise ConfigError(
            f"{where}: enforce_from is set but lifecycle is {lifecycle!r}",
            hint="Use lifecycle='enforce' with enforce_from: it reports warnings until that date.",
        )
    return Policy(
        id=id,
        title=title,
        severity=Severity(severity),
        rationale=rationale,
        lifecycle=lifecycle,  # type: ignore[arg-type]  # checked against LIFECYCLES above
        check=check,
        enforce_from=start,
        source=source,
    )


def policy(
    *,
    id: str,  # the policy's public field name (shadows the builtin on purpose)
    title: str,
    severity: str,
    rationale: str,
    lifecycle: str = "enforce",
    enforce_from: date | str | None = None,
) -> Callable[[PolicyCheck], Policy]:
    """Decorator: turn `def rule(product, ctx) -> Iterable[Finding]` into a `Policy`."""

    def decorate(check: PolicyCheck) -> Policy:
        return make_policy(
            check,
            id=id,
            title=title,
            severity=severity,
            rationale=rationale,
            lifecycle=lifecycle,
            enforce_from=enforce_from,
            source=getattr(check, "__module__", "built-in"),
        )

    return decorate


def evaluate(rule: Policy, product: DataProduct, context: ReviewContext) -> list[Check]:
    """The checks of one policy on one product: one per finding, or one passed check.

    A policy that crashes becomes an `error` check naming it; it never stops the review.
    """
    try:
        findings = list(rule(product, context))
    except Exception as exc:  # a team's buggy policy must not hide every other result
        return [
            Check(
                rule=f"policy.{rule.id}",
                status=Status.ERROR,
                reason=f"{product.ref}: policy {rule.id!r} failed to run: {type(exc).__name__}: {exc}",
                file=rule.source,
                hint="Fix the policy function; it must return findings, not raise.",
                severity=Severity.ERROR,
            )
        ]
    if not findings:
        return [
            Check(
                rule=f"policy.{rule.id}",
                status=Status.PASSED,
                reason=f"{product.ref}: {rule.title}",
                file=str(product.directory),
                severity=rule.severity,
            )
        ]
    status, severity, note = rule.outcome(context.today)
    suffix = f" ({note})" if note else ""
    return [
        Check(
            rule=f"policy.{rule.id}",
            status=status,
            reason=f"{product.ref}: {f.reason}{suffix}",
            file=f.file or str(product.directory),
            line=f.line,
            field=f.field,
            hint=f.hint or rule.rationale,
            severity=severity,
        )
        for f in findings
    ]


def evaluate_product(policies: Iterable[Policy], product: DataProduct, context: ReviewContext) -> list[Check]:
    """Every policy on one product."""
    return [check for rule in policies for check in evaluate(rule, product, context)]
