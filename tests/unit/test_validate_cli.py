"""`meshkit validate`: exit codes, text and JSON output, load errors as checks, lazy imports."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

from governance.validation.products import summarize, validate
from meshkit.checks import Status
from meshkit.cli import main
from meshkit.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("customers/users", "payments/transactions", "risk/customer-exposure")


def _mesh(tmp_path: Path) -> Path:
    """A copy of the example products' descriptors, contracts and access bindings."""
    for ref in EXAMPLES:
        target = tmp_path / "domains" / ref
        target.mkdir(parents=True)
        for name in ("datacontract.yaml", "dataproduct.yaml", "access.yaml"):
            shutil.copy(ROOT / "domains" / ref / name, target / name)
    return tmp_path


def _line(path: Path, marker: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


def test_example_products_validate_without_failures():
    run = validate([], load_settings(ROOT, environ={}))
    assert run.failures == [], [c.to_dict() for c in run.failures]
    passed = {str(Path(c.file or "").relative_to(ROOT)) for c in run.checks if c.status is Status.PASSED}
    for ref in EXAMPLES:
        assert {f"domains/{ref}/{name}" for name in ("datacontract.yaml", "dataproduct.yaml", "access.yaml")} <= passed


def test_valid_mesh_exits_0_and_prints_the_summary(tmp_path, capsys):
    root = _mesh(tmp_path)
    assert main(["--root", str(root), "validate"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["9 files checked: 9 passed, 0 failed, 0 warnings"]


def test_failure_exits_1_with_path_line_field_reason_and_hint(tmp_path, capsys):
    root = _mesh(tmp_path)
    contract = root / "domains/payments/transactions/datacontract.yaml"
    contract.write_text(contract.read_text().replace("    dataset: payments\n", ""))
    assert main(["--root", str(root), "validate", str(contract.parent)]) == 1
    out = capsys.readouterr().out.splitlines()
    line = _line(contract, "- server: lake")
    assert f"{contract}:{line} servers[1]: 'dataset' is a required property" in out
    hint = out[out.index(f"{contract}:{line} servers[1]: 'dataset' is a required property") + 1]
    assert hint.startswith("  hint: ") and "dataset" in hint
    assert out[-1] == "3 files checked: 2 passed, 1 failed, 0 warnings"


def test_json_format_parses_and_has_the_summary(tmp_path, capsys):
    root = _mesh(tmp_path)
    descriptor = root / "domains/risk/customer-exposure/dataproduct.yaml"
    descriptor.write_text(descriptor.read_text().replace("port: users-current", "port: users-latest"))
    assert main(["--root", str(root), "validate", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["failed"] == 1
    assert report["summary"] == {"files": 9, "passed": 8, "failed": 1, "warnings": 0}
    [failed] = [c for c in report["checks"] if c["status"] == "failed"]
    assert failed["rule"] == "product.input-port-exists" and failed["field"] == "inputPorts[0].port"


def test_warnings_do_not_fail(tmp_path, capsys):
    root = _mesh(tmp_path)
    (root / "domains/risk/customer-exposure/access.yaml").unlink()
    assert main(["--root", str(root), "validate"]) == 0
    out = capsys.readouterr().out
    assert "warning: no access.yaml" in out
    assert out.strip().splitlines()[-1] == "8 files checked: 8 passed, 0 failed, 1 warning"


def test_yaml_syntax_error_is_a_check_with_its_line(tmp_path, capsys):
    root = _mesh(tmp_path)
    contract = root / "domains/customers/users/datacontract.yaml"
    lines = contract.read_text().splitlines()
    lines[9] = "description: [unclosed"
    contract.write_text("\n".join(lines) + "\n")
    run = validate([contract], load_settings(root, environ={}))
    [check] = run.failures
    assert (check.rule, check.file) == ("contract.load", str(contract))
    assert check.line is not None and 10 <= check.line <= 12
    assert main(["--root", str(root), "validate", str(contract)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert f"{contract}:{check.line}: invalid YAML" in captured.out


def test_contract_file_domain_folder_and_missing_path(tmp_path):
    root = _mesh(tmp_path)
    settings = load_settings(root, environ={})
    single = validate([root / "domains/customers/users/datacontract.yaml"], settings)
    assert summarize(single).files == 1 and single.ok
    domain = validate([root / "domains/payments"], settings)
    assert summarize(domain).files == 3 and domain.ok
    missing = validate([root / "nowhere"], settings)
    assert [c.rule for c in missing.failures] == ["validate.target"]
    empty = validate([], load_settings(tmp_path / "empty", environ={}))
    assert [c.rule for c in empty.failures] == ["validate.target"]


def test_inconsistent_descriptor_and_contract(tmp_path):
    root = _mesh(tmp_path)
    product = root / "domains/payments/transactions"
    descriptor = product / "dataproduct.yaml"
    descriptor.write_text(
        descriptor.read_text()
        .replace("domain: payments", "domain: billing", 1)
        .replace(
            "contractId: urn:meshkit:contract:payments:transactions\n  - name: transactions-changelog",
            "contractId: urn:meshkit:contract:payments:old\n  - name: transactions-changelog",
        )
    )
    run = validate([product], load_settings(root, environ={}))
    found = {(c.rule, c.field, c.line) for c in run.failures}
    assert found == {
        ("product.consistency", "domain", _line(descriptor, "domain: billing")),
        ("product.consistency", "outputPorts[0].contractId", _line(descriptor, "payments:old")),
    }


def test_validate_imports_no_beam_or_cloud_sdk(tmp_path, monkeypatch, capsys):
    heavy = ("apache_beam", "google.cloud", "azure")

    class Blocker:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name.startswith(heavy):
                raise ImportError(f"validate must not import {name}")

    for name in list(sys.modules):
        if name.startswith((*heavy, "governance", "meshkit.cli")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Blocker(), *sys.meta_path])
    cli = importlib.import_module("meshkit.cli")
    assert cli.main(["--root", str(_mesh(tmp_path)), "validate"]) == 0
    assert "0 failed" in capsys.readouterr().out
