"""Every HCL file under terraform/ is in `terraform fmt` canonical form (generated stacks included).

Only `fmt`: `init`/`validate` need providers that cannot be downloaded on the offline machines.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import require_emulator  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]


def test_terraform_files_are_formatted():
    terraform = shutil.which("terraform")
    require_emulator("terraform", terraform is not None, "the terraform CLI is not on PATH")
    assert terraform is not None
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(ROOT / "terraform")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change these files:\n{result.stdout}{result.stderr}"
