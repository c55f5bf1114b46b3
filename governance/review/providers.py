"""The ordered section providers of the review, imported lazily by module path.

Each provider module exposes `review_section(context) -> ReviewSection`. A module that is not
installed yet is skipped with an info note, so the review works while areas are still being built;
a provider that raises becomes a failed check naming it, and the other sections still render.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from governance.review.sections import ReviewContext, ReviewSection
from meshkit.checks import Check, Severity, Status

PROVIDERS: tuple[str, ...] = (
    "governance.policies.section",
    "governance.diff.section",
    "governance.cost.section",
    "governance.review.access_section",
    "governance.review.testing_section",
)


@dataclass(frozen=True)
class SectionsResult:
    """The sections that rendered, plus notes and failures about the providers themselves."""

    sections: tuple[ReviewSection, ...]
    checks: tuple[Check, ...]


def _missing(module: str, exc: ModuleNotFoundError) -> bool:
    """True when `module` itself (or its package) is absent, not when it fails to import a dependency."""
    return exc.name is not None and (module == exc.name or module.startswith(exc.name + "."))


def _area(module_path: str) -> str:
    """`governance.policies.section` -> policies; `governance.review.access_section` -> access."""
    parts = module_path.split(".")
    if parts[-1] == "section" and len(parts) > 1:
        return parts[-2]
    return parts[-1].removesuffix("_section")


def collect_sections(context: ReviewContext, providers: Sequence[str] = PROVIDERS) -> SectionsResult:
    """Call every provider in order; never raises."""
    sections: list[ReviewSection] = []
    checks: list[Check] = []
    for module_path in providers:
        rule = f"review.provider.{_area(module_path)}"
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if _missing(module_path, exc):
                checks.append(
                    Check(
                        rule,
                        Status.PASSED,
                        f"section provider {module_path} is not installed yet; its section is skipped",
                        hint="Nothing to do until the area lands.",
                        severity=Severity.INFO,
                    )
                )
                continue
            checks.append(_failure(rule, module_path, exc))
            continue
        except Exception as exc:
            checks.append(_failure(rule, module_path, exc))
            continue
        try:
            sections.append(_relative_paths(module.review_section(context), context.settings.root))
        except Exception as exc:
            checks.append(_failure(rule, module_path, exc))
    return SectionsResult(tuple(sections), tuple(checks))


def _relative_paths(section: ReviewSection, root: Path) -> ReviewSection:
    """The same section with every check's file shown relative to the repository root (reports and
    SARIF must not carry a machine's absolute paths)."""
    base = str(root.resolve())

    def shown(check: Check) -> Check:
        if not check.file or not check.file.startswith("/"):
            return check
        relative = _relative(check.file, base)
        return check if relative == check.file else replace(check, file=relative)

    return replace(
        section,
        checks=tuple(shown(c) for c in section.checks),
        per_product={ref: tuple(shown(c) for c in checks) for ref, checks in section.per_product.items()},
    )


@lru_cache(maxsize=65536)
def _relative(file: str, base: str) -> str:
    """`file` relative to `base` when inside it (resolved once per distinct file: 1,000 products
    repeat the same few files in thousands of checks)."""
    path = Path(file).resolve()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else file


def _failure(rule: str, module_path: str, exc: BaseException) -> Check:
    return Check(
        rule,
        Status.ERROR,
        f"section provider {module_path} failed: {type(exc).__name__}: {exc}",
        hint=f"Fix {module_path}.review_section; run `meshkit review --debug` for the traceback.",
        severity=Severity.ERROR,
    )
