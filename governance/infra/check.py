"""`meshkit infra check`: the project's policies plus checkov on any Terraform folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from governance.infra.checkov import INSTALL_HINT, find_checkov, run_checkov
from governance.infra.folder import load_folder
from governance.infra.policies import run_policies
from meshkit.checks import Check, CheckRun, Severity, Status
from meshkit.errors import ConfigError

CheckovMode = Literal["auto", "required", "off"]


def check_folder(folder: Path, *, root: Path, checkov: CheckovMode = "auto") -> CheckRun:
    """All checks of `folder`: own policies always; checkov unless off (a note when it is not installed)."""
    run = CheckRun()
    run.extend(run_policies(load_folder(folder)))
    if checkov == "off":
        run.extend([Check("checkov", Status.PASSED, "checkov not run (--checkov off)", severity=Severity.INFO)])
        return run
    binary = find_checkov(root)
    if binary is None:
        if checkov == "required":
            raise ConfigError("checkov is not installed", hint=INSTALL_HINT)
        note = "checkov is not installed: only the project's own policies ran. " + INSTALL_HINT
        run.extend([Check("checkov", Status.WARNING, note, severity=Severity.WARNING)])
        return run
    result = run_checkov(folder, binary)
    run.extend([Check("checkov", Status.PASSED, f"checkov {result.version} ran offline", severity=Severity.INFO)])
    run.extend(result.checks)
    return run


def error_failures(run: CheckRun) -> list[Check]:
    """The failures that make `infra check` exit non-zero: error severity (or a check that crashed)."""
    return [c for c in run.failures if c.severity is Severity.ERROR]
