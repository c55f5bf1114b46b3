"""The breaking-change and semver gate: every contract at a base revision against the working tree.

`diff_mesh(root, base)` returns a `MeshDiff`: per product, the classified changes (`changes.py`)
and whether the contract's version bump covers them (`semver.py`). The CLI and the review render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from governance.diff.changes import Change, classify
from governance.diff.git import contract_paths_at, read_many_at, repo_root, resolve_revision
from governance.diff.semver import VersionCheck, check_version, suggested_version
from meshkit.contracts.model import Contract, load_contract, parse_contract
from meshkit.errors import ContractError, Location, MeshkitError
from meshkit.products.discovery import discover
from meshkit.yamlio import parse_yaml

__all__ = ["Change", "ContractDiff", "MeshDiff", "VersionCheck", "diff_contracts", "diff_mesh"]

DiffStatus = Literal["added", "removed", "changed", "unchanged", "error"]


@dataclass(frozen=True)
class ContractDiff:
    """One product's contract between the base revision and now."""

    ref: str  # domain/product
    path: str  # the contract file now (or at the base, when removed)
    status: DiffStatus
    changes: tuple[Change, ...] = ()
    version: VersionCheck | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """False when the version bump is missing or the contract could not be compared."""
        if self.status == "error":
            return False
        return self.version is None or self.version.ok

    @property
    def suggestion(self) -> str | None:
        if self.version is None or self.version.ok:
            return None
        return suggested_version(self.version.old_version, self.version.required)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "path": self.path,
            "status": self.status,
            "ok": self.ok,
            "changes": [c.to_dict() for c in self.changes],
            "version": self.version.to_dict() if self.version else None,
            "suggested_version": self.suggestion,
            "error": self.error,
        }


@dataclass(frozen=True)
class MeshDiff:
    base: str
    commit: str
    contracts: tuple[ContractDiff, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.contracts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "commit": self.commit,
            "ok": self.ok,
            "contracts": [c.to_dict() for c in self.contracts],
        }


def diff_contracts(ref: str, old: Contract, new: Contract) -> ContractDiff:
    """Classify the changes between two versions of one product's contract and check its version."""
    changes = tuple(classify(old, new))
    version = check_version(changes, old.version, new.version)
    status: DiffStatus = "changed" if changes or old.version != new.version else "unchanged"
    return ContractDiff(ref, str(new.path), status, changes, version)


def _removed(ref: str, path: str, old: Contract) -> ContractDiff:
    change = Change(
        "breaking",
        "product-removed",
        "",
        old.id or ref,
        None,
        f"product {ref} (contract {old.version}) removed; its consumers lose their input",
    )
    return ContractDiff(ref, path, "removed", (change,))


def diff_mesh(root: Path, base: str, domains_dir: Path | None = None) -> MeshDiff:
    """Compare every contract under `domains_dir` (default `root/domains`) at `base` with the working tree."""
    domains = (domains_dir or root / "domains").resolve()
    repo = repo_root(root)
    commit = resolve_revision(repo, base)
    before: dict[str, str] = {}
    for rel in contract_paths_at(repo, commit, domains):
        parts = PurePosixPath(rel).parts
        before[f"{parts[-3]}/{parts[-2]}"] = rel
    now = {p.ref: p for p in discover(domains)}
    texts = read_many_at(repo, commit, sorted(before.values()))
    results: list[ContractDiff] = []
    for ref in sorted(set(before) | set(now)):
        try:
            old = _load_at(commit, before[ref], texts) if ref in before else None
            if ref not in now:
                assert old is not None
                results.append(_removed(ref, before[ref], old))
                continue
            new = load_contract(now[ref].contract_path)
            if old is None:
                results.append(ContractDiff(ref, str(new.path), "added"))
                continue
            results.append(diff_contracts(ref, old, new))
        except MeshkitError as exc:
            path = str(now[ref].contract_path) if ref in now else before[ref]
            results.append(ContractDiff(ref, path, "error", error=exc.message))
    return MeshDiff(base, commit, tuple(results))


def _load_at(commit: str, rel: str, texts: dict[str, str]) -> Contract:
    where = f"{commit[:12]}:{rel}"
    if rel not in texts:
        raise ContractError("listed by git ls-tree but not readable", location=Location(where))
    return parse_contract(parse_yaml(texts[rel], Path(where)))
