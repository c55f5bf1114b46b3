"""The version bump a set of changes requires, checked against the contract's own `version` change.

breaking -> major; governance-relevant -> at least minor, plus a governance approval; other
additions -> minor; documentation only -> patch. Before 1.0.0 (semver's "anything may change"),
a minor bump satisfies a breaking change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from governance.diff.changes import Change

Bump = Literal["none", "patch", "minor", "major"]
_ORDER: dict[str, int] = {"none": 0, "patch": 1, "minor": 2, "major": 3}
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _SEMVER.match(text.strip())
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def required_bump(changes: Sequence[Change]) -> Bump:
    """The smallest bump that covers every change."""
    if any(c.kind == "breaking" for c in changes):
        return "major"
    if any(not c.docs_only for c in changes):
        return "minor"
    return "patch" if changes else "none"


def actual_bump(old: str, new: str) -> Bump | None:
    """How `new` moved from `old`; None when either is not semver or the version went backwards."""
    a, b = parse_version(old), parse_version(new)
    if a is None or b is None or b < a:
        return None
    if b[0] > a[0]:
        return "major"
    if b[1] > a[1]:
        return "minor"
    return "patch" if b[2] > a[2] else "none"


@dataclass(frozen=True)
class VersionCheck:
    """Whether the contract's version change covers what changed."""

    old_version: str
    new_version: str
    required: Bump
    actual: Bump | None
    needs_approval: bool  # a governance-relevant change: the review board signs off
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "required": self.required,
            "actual": self.actual,
            "needs_approval": self.needs_approval,
            "ok": self.ok,
            "message": self.message,
        }


def check_version(changes: Sequence[Change], old_version: str, new_version: str) -> VersionCheck:
    required = required_bump(changes)
    actual = actual_bump(old_version, new_version)
    needs_approval = any(c.kind == "governance" for c in changes)
    effective = required
    before = parse_version(old_version)
    if required == "major" and before is not None and before[0] == 0:
        effective = "minor"  # 0.y.z: the public contract is not stable yet
    shown = f"{old_version} -> {new_version}"
    if actual is None:
        ok = False
        message = f"version {shown} is not a forward semantic version; a {effective} bump is required"
    elif _ORDER[actual] >= _ORDER[effective]:
        ok = True
        message = f"version {shown} ({actual}) covers the changes (required: {effective})"
    else:
        ok = False
        message = f"version {shown} is a {actual} change but the changes require a {effective} bump"
    if needs_approval:
        message += "; governance-relevant changes need the review board's approval"
    return VersionCheck(old_version, new_version, required, actual, needs_approval, ok, message)


def suggested_version(old_version: str, bump: Bump) -> str | None:
    """`1.2.3` + minor -> `1.3.0`."""
    parts = parse_version(old_version)
    if parts is None:
        return None
    major, minor, patch = parts
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    return old_version
