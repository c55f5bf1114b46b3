"""Generated product stacks: golden files, HCL that parses, `terraform fmt`-clean, deterministic.

Regenerate the golden files after an intended change with `MESHKIT_UPDATE_GOLDEN=1 pytest
tests/unit/test_infra_stack.py`, and review the diff like code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import hcl2
import pytest
from conftest import require_emulator  # tests/conftest.py

from governance.iam import product_access
from governance.infra.stack import STACK_FILES, product_stack
from meshkit.cli import main
from meshkit.config import load_settings
from meshkit.products.discovery import find_product

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "terraform" / "golden"
TODAY = date(2026, 11, 26)
PRODUCTS = ("customers/users", "payments/transactions", "risk/customer-exposure")
MODULES_SOURCE = "../../../../terraform/modules"  # from build/<domain>/<product>/terraform
EXPIRED_ACCESS = """apiVersion: meshkit/v1
kind: AccessBindings
bindings:
  - role: payments_reader
    purpose: Payments analysts.
    expires: '2026-11-10'
    gcp:
      - group:payments-analytics@fintech.example
  - role: payments_reader
    purpose: A finished audit.
    expires: '2026-09-30'
    gcp:
      - user:auditor@fintech.example
  - role: payments_pipeline_writer
    purpose: The product's pipeline.
    expires: '2027-11-30'
    gcp:
      - serviceAccount:payments-tx-pipeline@fintech-lake-prod.iam.gserviceaccount.com
    azure:
      - managedIdentity:mi-payments-transactions-relay
"""


def _stack(root: Path, ref: str) -> dict[str, str]:
    settings = load_settings(root, overrides={}, environ={})
    access = product_access(find_product(settings.domains_dir, ref), settings, today=TODAY)
    out = settings.build_dir / ref / "terraform"
    stack = product_stack(
        access, out=out, modules_dir=ROOT / "terraform/modules", today=TODAY.isoformat(), grace_days=30,
        modules_source=MODULES_SOURCE,
    )  # fmt: skip
    return stack.files


def _compare(files: dict[str, str], golden: Path) -> None:
    if os.environ.get("MESHKIT_UPDATE_GOLDEN") == "1":
        golden.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (golden / name).write_text(text, encoding="utf-8")
    for name in STACK_FILES:
        expected = (golden / name).read_text(encoding="utf-8")
        assert files[name] == expected, f"{golden / name} differs; regenerate with MESHKIT_UPDATE_GOLDEN=1 and review"


@pytest.fixture
def expired_root(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "domains/payments/transactions", tmp_path / "domains/payments/transactions")
    (tmp_path / "domains/payments/transactions/access.yaml").write_text(EXPIRED_ACCESS, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("ref", PRODUCTS)
def test_generated_stack_matches_golden_files(ref):
    _compare(_stack(ROOT, ref), GOLDEN / ref)


def test_grace_and_dropped_grants_in_the_generated_stack(expired_root):
    files = _stack(expired_root, "payments/transactions")
    _compare(files, GOLDEN / "expired" / "payments/transactions")
    main_tf = files["main.tf"]
    assert (
        "user:auditor@fintech.example (gcp) — payments_reader: A finished audit; expires 2026-09-30 — EXPIRED, dropped"
        in main_tf
    )
    assert main_tf.count("user:auditor@fintech.example") == 1  # only in the note, never in a binding
    assert "expires 2026-11-10 — EXPIRED, in grace period" in main_tf


@pytest.mark.parametrize("ref", PRODUCTS)
def test_generated_hcl_parses_and_grants_what_the_plan_says(ref):
    files = _stack(ROOT, ref)
    parsed = {name: hcl2.loads(text) for name, text in files.items()}
    module = parsed["main.tf"]["module"][0]['"product"']
    assert module["source"] == f'"{MODULES_SOURCE}/product"'
    settings = load_settings(ROOT, overrides={}, environ={})
    access = product_access(find_product(settings.domains_dir, ref), settings, today=TODAY)
    generated = sum(len(module[k]) for k in ("table_readers", "view_readers", "bucket_grants", "policy_tag_readers"))
    assert generated == len(access.on("gcp"))


def test_generation_is_deterministic():
    assert _stack(ROOT, "customers/users") == _stack(ROOT, "customers/users")


def _terraform() -> str | None:
    found = shutil.which("terraform")
    require_emulator("terraform", found is not None, "the terraform CLI is not on PATH")
    return found


def _fmt_check(folder: Path) -> subprocess.CompletedProcess[str]:
    terraform = _terraform()
    assert terraform
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(folder)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_golden_stacks_pass_terraform_fmt():
    done = _fmt_check(GOLDEN)
    assert done.returncode == 0, done.stdout + done.stderr


def test_modules_pass_terraform_fmt():
    done = _fmt_check(ROOT / "terraform" / "modules")
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_writes_the_stack_under_build(tmp_path, capsys):
    shutil.copytree(ROOT / "domains", tmp_path / "domains")
    code = main(["--root", str(tmp_path), "infra", "customers/users", "--today", "2026-11-26"])
    out = capsys.readouterr().out
    folder = tmp_path / "build/customers/users/terraform"
    assert code == 0 and sorted(p.name for p in folder.iterdir()) == sorted(STACK_FILES)
    assert "customers/users: 16 GCP IAM and 4 Azure RBAC bindings; 0 expired grants dropped." in out
    assert 'source                     = "../../../../terraform/modules/product"' in (folder / "main.tf").read_text()


def test_cli_names_an_unknown_product(capsys):
    assert main(["infra", "customers/nobody"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: no data product 'customers/nobody'") and "Known products:" in err
