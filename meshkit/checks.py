"""The result model every check returns; renderers (text, JSON, Markdown, HTML) read only this."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    ERROR = "error"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One finding: which rule, what happened, where, and what to do about it."""

    rule: str
    status: Status
    reason: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def where(self) -> str:
        if not self.file:
            return ""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} ({self.field})" if self.field else where

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}


@dataclass
class CheckRun:
    """All checks of one command; `ok` is false when any check failed or errored."""

    checks: list[Check] = field(default_factory=list)

    def extend(self, checks: Iterable[Check]) -> None:
        self.checks.extend(checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status in (Status.FAILED, Status.ERROR)]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.WARNING]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed": len(self.failures),
            "warnings": len(self.warnings),
            "checks": [c.to_dict() for c in self.checks],
        }
