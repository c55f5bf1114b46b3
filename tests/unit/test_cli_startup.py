"""Start-up bar of the design: `meshkit --help` and `meshkit validate` never import Beam or cloud SDKs.

Each probe runs in a fresh interpreter, so what earlier tests imported cannot hide a heavy import.
Only modules imported after the probe starts count: site-packages `.pth` files create empty
`google` / `google.cloud` namespace modules at interpreter start-up, and those are no SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from meshkit.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("apache_beam", "google.cloud", "google.api_core", "azure", "pyarrow", "duckdb", "openlineage")
BEAM_AND_CLOUD = ("apache_beam", "google.cloud", "google.api_core", "azure", "duckdb", "openlineage")
OTHER_AREAS = ("pipelines", "governance", "monitoring")
MARKER = "MODULES-IMPORTED-BY-PROBE="

PROBE = """
import contextlib, io, json, sys
before = set(sys.modules)
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    try:
{body}
    except SystemExit:
        pass
print(out.getvalue())
print({marker!r} + json.dumps(sorted(set(sys.modules) - before)))
"""


def _probe(tmp_path: Path, *statements: str) -> tuple[list[str], str]:
    """Run `statements` in a fresh interpreter; the modules they imported and what they printed."""
    body = "\n".join(f"        {line}" for line in statements)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    env["MESHKIT_WORKSPACE"] = str(tmp_path / "ws")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body, marker=MARKER)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed, _, modules = done.stdout.rpartition(MARKER)
    return json.loads(modules), printed


def _loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)})


def test_building_the_parser_imports_nothing_heavy(tmp_path):
    modules, _ = _probe(tmp_path, "import meshkit.cli", "meshkit.cli.build_parser()")
    assert "meshkit.cli" in modules
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, OTHER_AREAS) == [], "the CLI must import other packages inside the command"


def test_parsing_validate_arguments_and_its_help_imports_nothing_heavy(tmp_path):
    modules, printed = _probe(
        tmp_path,
        "import meshkit.cli",
        "meshkit.cli.build_parser().parse_args(['validate', '--format', 'json', 'domains'])",
        "meshkit.cli.main(['validate', '--help'])",
    )
    assert "usage: meshkit validate" in printed
    assert _loaded(modules, HEAVY) == []


def test_validate_on_the_repository_imports_no_beam_or_cloud_sdk(tmp_path):
    modules, printed = _probe(
        tmp_path, "import meshkit.cli", f"meshkit.cli.main(['--root', {str(ROOT)!r}, 'validate'])"
    )
    assert "files checked" in printed, printed
    assert _loaded(modules, BEAM_AND_CLOUD) == []


def test_validate_on_the_repository_does_not_import_pyarrow(tmp_path):
    modules, printed = _probe(
        tmp_path, "import meshkit.cli", f"meshkit.cli.main(['--root', {str(ROOT)!r}, 'validate'])"
    )
    assert "files checked" in printed, printed
    assert _loaded(modules, ("pyarrow",)) == []


def test_python_m_meshkit_help_lists_every_verb(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "meshkit", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: meshkit")
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert set(COMMANDS) <= listed, f"--help lists {sorted(listed)}"
    assert {"new", "validate", "run", "demo", "review"} <= set(COMMANDS)
