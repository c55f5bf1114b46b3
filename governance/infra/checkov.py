"""checkov, run offline on a Terraform folder, its failed checks turned into meshkit checks.

checkov lives in its own virtualenv (`scripts/install-checkov.sh` -> .emulators/checkov-venv) so its
pins never touch the project's environment; `MESHKIT_CHECKOV` names another binary. Failed checks
that overlap the project's own policies (public access, basic roles, keys, key-based auth, CMEK)
are errors; the rest are warnings, because checkov's severities need its online platform.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshkit.checks import Check, Severity, Status
from meshkit.errors import ConfigError, TerminalError

VENV_BINARY = Path(".emulators") / "checkov-venv" / "bin" / "checkov"
INSTALL_HINT = (
    "Install it with scripts/install-checkov.sh (its own virtualenv), or set MESHKIT_CHECKOV to a checkov binary."
)
TIMEOUT_SECONDS = 600
ERROR_CHECKS = frozenset(
    {
        "CKV_GCP_28",  # bucket not anonymously or publicly accessible
        "CKV_GCP_29",  # uniform bucket-level access
        "CKV_GCP_100",  # BigQuery table not anonymously or publicly accessible
        "CKV_GCP_15",  # BigQuery dataset not anonymously or publicly accessible
        "CKV_GCP_114",  # public access prevention enforced
        "CKV_GCP_117",  # basic roles at project level
        "CKV_GCP_41",  # no Service Account User/Token Creator at project level
        "CKV_GCP_42",  # service account without admin privileges
        "CKV_GCP_46",  # no default service account at project level
        "CKV_GCP_81",  # BigQuery dataset encrypted with a customer key
        "CKV_AZURE_140",  # Cosmos DB local authentication disabled
        "CKV_AZURE_99",  # Cosmos DB not reachable from all networks
        "CKV_AZURE_190",  # blob containers not public
        "CKV_AZURE_34",  # blob containers not public
    }
)


@dataclass(frozen=True)
class CheckovRun:
    """What checkov reported on a folder, and the version that reported it."""

    version: str
    checks: tuple[Check, ...]


def find_checkov(root: Path) -> Path | None:
    """The checkov binary: MESHKIT_CHECKOV, the project's checkov venv, then PATH."""
    named = os.environ.get("MESHKIT_CHECKOV")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"MESHKIT_CHECKOV={named} is not a file", hint=INSTALL_HINT)
        return path
    for base in (root, Path(__file__).resolve().parents[2]):  # the project, then meshkit's own checkout
        venv = base / VENV_BINARY
        if venv.is_file():
            return venv
    found = shutil.which("checkov")
    return Path(found) if found else None


def _results(payload: Any) -> list[dict[str, Any]]:
    reports = payload if isinstance(payload, list) else [payload]
    return [r for r in reports if isinstance(r, dict)]


def _check(folder: Path, failed: dict[str, Any]) -> Check:
    check_id = str(failed.get("check_id"))
    lines = failed.get("file_line_range") or [None]
    file_path = str(failed.get("file_abs_path") or failed.get("file_path") or "")
    shown = (
        file_path if not file_path.startswith("/") or Path(file_path).exists() else str(folder / file_path.lstrip("/"))
    )
    error = check_id in ERROR_CHECKS
    guideline = failed.get("guideline")
    return Check(
        f"checkov.{check_id}",
        Status.FAILED if error else Status.WARNING,
        f"{check_id}: {failed.get('check_name')}",
        file=shown or None,
        line=lines[0],
        field=str(failed.get("resource") or "") or None,
        hint=(f"See {guideline}. " if guideline else "")
        + f"If accepted, say why in the resource: `# checkov:skip={check_id}: <reason>`.",
        severity=Severity.ERROR if error else Severity.WARNING,
    )


def run_checkov(folder: Path, binary: Path) -> CheckovRun:
    """checkov on `folder` offline (`--skip-download`); raises `TerminalError` when it cannot run."""
    command = [
        str(binary),
        "--directory",
        str(folder),
        "--framework",
        "terraform",
        "--output",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
    ]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TerminalError(f"checkov could not run: {exc}", hint=INSTALL_HINT) from exc
    try:
        payload = json.loads(done.stdout or "{}")
    except json.JSONDecodeError as exc:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise TerminalError(
            f"checkov exited {done.returncode} without a JSON report: {tail}", hint=INSTALL_HINT
        ) from exc
    reports = _results(payload)
    version = next((str(r.get("checkov_version")) for r in reports if r.get("checkov_version")), "")
    if not version:
        version = next(
            (str(r.get("summary", {}).get("checkov_version")) for r in reports if r.get("summary")), "unknown"
        )
    checks = [_check(folder, f) for r in reports for f in r.get("results", {}).get("failed_checks", [])]
    checks.sort(key=lambda c: (c.file or "", c.line or 0, c.rule))
    return CheckovRun(version, tuple(checks))
