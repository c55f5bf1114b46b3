"""`meshkit validate`: contracts and whole products (contract, descriptor, access, ports) as one CheckRun.

Nothing here raises for a bad file: load and parse errors become checks with file and line, and
every file that passed gets a PASSED check so the run lists what was checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from governance.validation.access import access_checks, missing_access_checks
from governance.validation.contract_schema import schema_checks
from governance.validation.contract_semantics import semantic_checks
from meshkit.checks import Check, CheckRun, Status
from meshkit.config import Settings
from meshkit.contracts.model import Contract, parse_contract
from meshkit.errors import MeshkitError
from meshkit.products.discovery import check_ports, discover
from meshkit.products.model import (
    ACCESS_FILE,
    CONTRACT_FILE,
    DESCRIPTOR_FILE,
    DataProduct,
    ProductDescriptor,
    parse_descriptor,
    product_from_dir,
)
from meshkit.yamlio import YamlDocument, load_yaml


@dataclass(frozen=True)
class ValidationSummary:
    """How many files were checked and how they fared; warnings never fail a file."""

    files: int
    passed: int
    failed: int
    warnings: int

    def __str__(self) -> str:
        plural = "" if self.warnings == 1 else "s"
        return (
            f"{self.files} file{'' if self.files == 1 else 's'} checked: {self.passed} passed, "
            f"{self.failed} failed, {self.warnings} warning{plural}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "passed": self.passed, "failed": self.failed, "warnings": self.warnings}


def summarize(run: CheckRun) -> ValidationSummary:
    files = {c.file for c in run.checks if c.file}
    failed = {c.file for c in run.failures if c.file}
    return ValidationSummary(len(files), len(files - failed), len(failed), len(run.warnings))


def error_check(rule: str, exc: MeshkitError, file: Path) -> Check:
    """A load or parse error as a failed check, keeping the error's line and field."""
    where = exc.location
    return Check(
        rule,
        Status.FAILED,
        exc.reason,
        file=where.file if where else str(file),
        line=where.line if where else None,
        field=where.field if where else None,
        hint=exc.hint,
    )


def _load(path: Path, rule: str) -> tuple[YamlDocument | None, list[Check]]:
    try:
        return load_yaml(path), []
    except MeshkitError as exc:
        return None, [error_check(rule, exc, path)]


def contract_checks(path: Path) -> tuple[Contract | None, list[Check]]:
    """Schema checks, then (only when the schema passes) the typed model and semantic checks."""
    document, checks = _load(path, "contract.load")
    if document is None:
        return None, checks
    checks = schema_checks(document)
    if checks:
        return None, checks
    try:
        contract = parse_contract(document)
    except MeshkitError as exc:
        return None, [error_check("odcs.model", exc, path)]
    return contract, semantic_checks(contract)


def _descriptor_checks(product: DataProduct) -> tuple[ProductDescriptor | None, YamlDocument | None, list[Check]]:
    path = product.descriptor_path
    if not path.is_file():
        missing = Check(
            "product.descriptor",
            Status.FAILED,
            f"product {product.ref} has no {DESCRIPTOR_FILE}",
            file=str(path),
            hint=f"Add {DESCRIPTOR_FILE} (owner, domain, ports); `meshkit new` writes one.",
        )
        return None, None, [missing]
    document, checks = _load(path, "product.descriptor")
    if document is None:
        return None, None, checks
    try:
        return parse_descriptor(document), document, []
    except MeshkitError as exc:
        return None, document, [error_check("product.descriptor", exc, path)]


def _mismatch(document: YamlDocument, field: str, reason: str, hint: str) -> Check:
    return Check(
        "product.consistency",
        Status.FAILED,
        reason,
        file=str(document.path),
        line=document.line_of(field),
        field=field,
        hint=hint,
    )


def _consistency_checks(
    product: DataProduct, contract: Contract | None, descriptor: ProductDescriptor | None, doc: YamlDocument | None
) -> list[Check]:
    """Folder, descriptor and contract must agree on domain, name and contract id."""
    checks: list[Check] = []
    folder = f"the folder domains/{product.ref}"
    if descriptor is not None and doc is not None:
        for field, value, expected in (
            ("domain", descriptor.domain, product.domain),
            ("name", descriptor.name, product.name),
        ):
            if value != expected:
                checks.append(
                    _mismatch(doc, field, f"{field} {value!r} does not match {folder}", f"Set `{field}: {expected}`.")
                )
        for i, port in enumerate(descriptor.outputPorts):
            if contract is not None and port.contractId != contract.id:
                checks.append(
                    _mismatch(
                        doc,
                        f"outputPorts[{i}].contractId" if port.contractId else f"outputPorts[{i}]",
                        f"output port {port.name!r} has contractId {port.contractId!r}, "
                        f"but the product's contract id is {contract.id!r}",
                        f"Set `contractId: {contract.id}` on the port.",
                    )
                )
    if contract is not None:
        doc_c = contract.document
        if contract.domain != product.domain:
            checks.append(
                _mismatch(
                    doc_c, "domain", f"contract domain {contract.domain!r} does not match {folder}",
                    f"Set `domain: {product.domain}`.",
                )
            )  # fmt: skip
        data_product = contract.odcs.dataProduct
        if data_product is not None and data_product != product.name:
            checks.append(
                _mismatch(
                    doc_c, "dataProduct", f"contract dataProduct {data_product!r} does not match {folder}",
                    f"Set `dataProduct: {product.name}`.",
                )
            )  # fmt: skip
    return checks


def _access(product: DataProduct, contract: Contract | None, today: date) -> tuple[list[Check], Path | None]:
    path = product.directory / ACCESS_FILE
    if not path.is_file():
        return (missing_access_checks(contract, ACCESS_FILE) if contract is not None else []), None
    document, checks = _load(path, "access.format")
    if document is None:
        return checks, path
    return access_checks(document, contract, today=today), path


def _passed(files: list[Path], checks: list[Check]) -> list[Check]:
    """One PASSED check per file without failures, so the run lists everything it checked."""
    failed = {c.file for c in checks if c.status in (Status.FAILED, Status.ERROR)}
    passed = []
    for file in dict.fromkeys(files):
        if str(file) in failed:
            continue
        warned = sum(1 for c in checks if c.file == str(file) and c.status is Status.WARNING)
        note = f" ({warned} warning{'' if warned == 1 else 's'})" if warned else ""
        passed.append(Check("validate.file", Status.PASSED, f"{file.name} passed{note}", file=str(file)))
    return passed


def _product_checks(product: DataProduct, today: date) -> tuple[list[Check], list[Path]]:
    contract, checks = contract_checks(product.contract_path)
    descriptor, descriptor_doc, more = _descriptor_checks(product)
    checks += more
    checks += _consistency_checks(product, contract, descriptor, descriptor_doc)
    access, access_path = _access(product, contract, today)
    checks += access
    return checks, [product.contract_path, product.descriptor_path, *([access_path] if access_path else [])]


def validate_product(product: DataProduct, today: date) -> list[Check]:
    """Contract, descriptor, their consistency and access.yaml of one product (ports: see validate)."""
    checks, files = _product_checks(product, today)
    return checks + _passed(files, checks)


def _target_problem(path: Path, reason: str, hint: str) -> Check:
    return Check("validate.target", Status.FAILED, reason, file=str(path), hint=hint)


def _products_in(directory: Path, pattern: str) -> tuple[list[DataProduct], list[Check]]:
    """Product folders matching `pattern` (relative to `directory`); unsafe folder names become checks."""
    products, checks = [], []
    for contract in sorted(directory.glob(pattern)):
        try:
            products.append(product_from_dir(contract.parent))
        except MeshkitError as exc:
            checks.append(_target_problem(contract.parent, exc.reason, exc.hint or ""))
    return products, checks


def _discover(domains_dir: Path) -> tuple[list[DataProduct], list[Check]]:
    try:
        return discover(domains_dir), []
    except MeshkitError:
        return _products_in(domains_dir, f"*/*/{CONTRACT_FILE}")


_EMPTY_HINT = "Check --root (the folder holding domains/), or create a product with `meshkit new <domain>/<product>`."


def _targets(paths: list[Path], settings: Settings) -> tuple[list[DataProduct], list[Path], list[Check]]:
    """Products and standalone contract files named by `paths` (every product when there are none)."""
    if not paths:
        domains_dir = settings.domains_dir.resolve()
        found, bad = _discover(domains_dir)
        if not found and not bad:  # validating nothing must not look like success (e.g. a wrong --root)
            bad = [_target_problem(domains_dir, f"no data product under {domains_dir}", _EMPTY_HINT)]
        return found, [], bad
    products: list[DataProduct] = []
    contracts: list[Path] = []
    problems: list[Check] = []
    for raw in paths:
        path = raw.resolve()
        if path.is_file() and path.name in (DESCRIPTOR_FILE, ACCESS_FILE) and (path.parent / CONTRACT_FILE).is_file():
            path = path.parent
        if path.is_file():
            contracts.append(path)
            continue
        if not path.is_dir():
            problems.append(_target_problem(raw, f"no such file or folder: {raw}", "Check the path."))
            continue
        for pattern in (CONTRACT_FILE, f"*/{CONTRACT_FILE}", f"*/*/{CONTRACT_FILE}"):
            if any(path.glob(pattern)):
                found, bad = _products_in(path, pattern) if pattern != CONTRACT_FILE else _one(path)
                products += found
                problems += bad
                break
        else:
            loose = _contract_files(path)
            contracts += loose
            if not loose:
                problems.append(
                    _target_problem(
                        raw,
                        f"no contract in {raw} (no {CONTRACT_FILE} in it or in product folders below it, "
                        "no *.yaml file of kind DataContract)",
                        "Pass a contract file, a product folder, a domain folder or the domains folder.",
                    )
                )
    unique = {p.directory: p for p in products}
    return list(unique.values()), list(dict.fromkeys(contracts)), problems


def _contract_files(directory: Path) -> list[Path]:
    """YAML files directly in `directory` that declare `kind: DataContract` (e.g. ODCS examples)."""
    found = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            data = load_yaml(path).data
        except MeshkitError:
            found.append(path)  # reported with its line by contract_checks
            continue
        if isinstance(data, dict) and data.get("kind") == "DataContract":
            found.append(path)
    return found


def _one(directory: Path) -> tuple[list[DataProduct], list[Check]]:
    try:
        return [product_from_dir(directory)], []
    except MeshkitError as exc:
        return [], [_target_problem(directory, exc.reason, exc.hint or "")]


def _port_checks(products: list[DataProduct], settings: Settings) -> list[Check]:
    """check_ports over the whole mesh around the selected products, reported for those products."""
    mesh: dict[str, DataProduct] = {}
    for domains_dir in {settings.domains_dir.resolve(), *(p.directory.parent.parent for p in products)}:
        mesh.update({p.ref: p for p in _discover(domains_dir)[0]})
    mesh.update({p.ref: p for p in products})
    mine = {str(p.descriptor_path) for p in products}
    refs = {p.ref for p in products}
    return [
        c
        for c in check_ports(list(mesh.values()))
        if c.file in mine or (c.file is None and any(ref in c.reason for ref in refs))
    ]


def validate(paths: list[Path], settings: Settings, *, today: date | None = None) -> CheckRun:
    """Validate the given contract files / product folders / domain folders (all products when empty)."""
    today = today or date.today()
    products, contracts, problems = _targets(paths, settings)
    checks, files = list(problems), list(contracts)
    for product in products:
        found, checked = _product_checks(product, today)
        checks += found
        files += checked
    for path in contracts:
        checks += contract_checks(path)[1]
    checks += _port_checks(products, settings)
    return CheckRun(checks + _passed(files, checks))
