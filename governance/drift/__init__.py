"""Schema drift of document sources: what the pipeline saw (its per-run document profiles) against
what the product's contract says, with the contract change it needs and the version bump for it.

`drift_report(settings, product)` merges the latest run profiles (written by the pipeline's decode
step, pipelines/transforms/profile.py), compares them with the contract's source columns
(`compare.py`) and proposes the change as a diff (`proposal.py`), judged by governance/diff.
"""

from __future__ import annotations

import json

from governance.drift.compare import compare
from governance.drift.model import (
    BAD_VALUE_SHARE,
    REQUIRED_SHARE,
    VANISHED_SHARE,
    ContractProposal,
    DriftFinding,
    DriftReport,
)
from governance.drift.proposal import propose
from meshkit.config import Settings
from meshkit.errors import Location, TerminalError
from meshkit.products.discovery import find_product
from pipelines.transforms.profile import DocumentProfile, profile_dir

__all__ = [
    "BAD_VALUE_SHARE",
    "REQUIRED_SHARE",
    "VANISHED_SHARE",
    "ContractProposal",
    "DriftFinding",
    "DriftReport",
    "drift_report",
    "latest_profile",
]


def latest_profile(settings: Settings, product: str, runs: int = 10) -> DocumentProfile:
    """The profiles of the product's latest `runs` runs that profiled documents, merged (newest first)."""
    if runs < 1:
        raise TerminalError(f"--runs must be at least 1, got {runs}", hint="Pass --runs 1 or more.")
    folder = profile_dir(settings.workspace_dir, product)
    found: list[tuple[str, DocumentProfile]] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append((str(data.get("written_at", "")), DocumentProfile.from_dict(data)))
        except (ValueError, TypeError, AttributeError) as exc:
            raise TerminalError(
                f"the run profile is not readable: {type(exc).__name__}: {str(exc)[:200]}",
                location=Location(str(path)),
                hint="Delete the file; the next `meshkit run` writes a new profile.",
            ) from exc
    if not found:
        raise TerminalError(
            f"no document profiles for {product} yet (looked in {folder})",
            hint=f"Run `meshkit run {product}`: the pipeline profiles the documents it decodes.",
        )
    found.sort(key=lambda item: item[0], reverse=True)
    merged = DocumentProfile(0)
    for _, profile in found[:runs]:
        merged = merged.merge(profile)
    return merged


def drift_report(settings: Settings, product: str, *, runs: int = 10, remove_vanished: bool = False) -> DriftReport:
    """Drift of `product` (domain/product) over its latest `runs` profiled runs, with the proposal."""
    found = find_product(settings.domains_dir, product)
    contract = found.contract
    profile = latest_profile(settings, found.ref, runs)
    findings = tuple(compare(contract, profile))
    try:
        relpath = str(found.contract_path.resolve().relative_to(settings.root.resolve()))
    except ValueError:
        relpath = str(found.contract_path)
    proposal = propose(contract, findings, relpath, remove_vanished=remove_vanished) if findings else None
    return DriftReport(
        found.ref, contract.version, profile.runs, profile.documents, profile.sample_every, findings, proposal
    )
