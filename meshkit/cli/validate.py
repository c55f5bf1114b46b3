"""`meshkit validate [paths...]`: schema, semantic, access and port checks of contracts and products.

Exit 1 when any check failed or errored; warnings are printed but do not fail the run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from meshkit.checks import Check, CheckRun, Status
from meshkit.cli._common import settings_from

if TYPE_CHECKING:
    from governance.validation.products import ValidationSummary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="contract files, product folders, domain folders or the domains folder (default: every product)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _shown(file: str) -> str:
    """A path relative to the current folder when it is below it, so lines stay short and clickable."""
    try:
        return str(Path(file).relative_to(Path.cwd()))
    except ValueError:
        return file


def render_check(check: Check) -> str:
    """`path:line field: reason` and an indented `hint:` line (warnings say so before the reason)."""
    where = _shown(check.file) if check.file else ""
    if check.file and check.line is not None:
        where += f":{check.line}"
    if check.field:
        where += f" {check.field}" if where else check.field
    reason = f"warning: {check.reason}" if check.status is Status.WARNING else check.reason
    text = f"{where}: {reason}" if where else reason
    return f"{text}\n  hint: {check.hint}" if check.hint else text


def render_text(run: CheckRun, summary: ValidationSummary) -> str:
    problems = [c for c in run.checks if c.status is not Status.PASSED]
    return "\n".join([*(render_check(c) for c in problems), str(summary)])


def run(args: argparse.Namespace) -> int:
    from governance.validation.products import summarize, validate

    result = validate(list(args.paths), settings_from(args))
    summary = summarize(result)
    if args.format == "json":
        print(json.dumps({**result.to_dict(), "summary": summary.to_dict()}, indent=2))
    else:
        print(render_text(result, summary))
    return 0 if result.ok else 1
