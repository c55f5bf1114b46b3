"""What `meshkit drift` finds: one `DriftFinding` per field, and the `DriftReport` that holds them with
the proposed contract change. Names, kinds and counts only; never a document's values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# A field is judged required when it is present and not null in at least this share of the profiled
# (non-delete) documents; a contract column seen in fewer than VANISHED_SHARE of them no longer appears.
REQUIRED_SHARE = 0.999
VANISHED_SHARE = 0.01
# Values of a kind the contract's type does not accept (in at least this share of the documents that
# carry the field), or a required column without a value (in at least this share of the documents),
# is drift; fewer are bad values, which the pipeline dead-letters: reported as a note.
BAD_VALUE_SHARE = 0.01

FindingCode = Literal[
    "field-added",  # documents carry a field the contract lacks
    "field-vanished",  # a contract column no longer appears
    "type-changed",  # a field arrives with a kind the contract's type does not accept
    "required-violated",  # a required column is missing or null in some documents
    "could-be-required",  # an optional column is always present (a note: no change proposed)
    "bad-values",  # a few values of an unexpected kind (a note: dead letters, not drift)
    "too-many-fields",  # documents carry more distinct fields than the profile keeps (a note)
]
NOTES = frozenset({"could-be-required", "bad-values", "too-many-fields"})


@dataclass(frozen=True)
class DriftFinding:
    """One difference between what the source sends and what the contract says."""

    code: FindingCode
    field: str  # the document's field path (`sourceField`)
    column: str | None  # the contract column, when there is one (or the proposed name)
    present: int  # documents carrying the field
    documents: int  # documents profiled
    kinds: dict[str, int]  # kind -> documents, for the field
    message: str
    proposed: str | None = None  # what the proposal does about it, when anything

    @property
    def drift(self) -> bool:
        """True when the contract must change (or a person must decide); False for a note."""
        return self.code not in NOTES

    @property
    def share(self) -> float:
        return self.present / self.documents if self.documents else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drift": self.drift, "share": round(self.share, 6)}


@dataclass(frozen=True)
class ContractProposal:
    """The contract change that accommodates the drift: a unified diff of the contract file (paths
    relative to the project root, `patch -p0`), and the bump governance/diff requires for it."""

    path: str  # the contract, relative to the project root
    diff: str
    old_version: str
    new_version: str
    bump: str  # none | patch | minor | major (governance/diff's `required_bump`)
    changes: tuple[dict[str, Any], ...] = ()  # governance/diff's classified changes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    product: str  # domain/product
    contract_version: str
    runs: tuple[str, ...]  # the runs whose profiles were merged, newest first
    documents: int  # documents profiled over those runs
    sample_every: int
    findings: tuple[DriftFinding, ...] = field(default_factory=tuple)
    proposal: ContractProposal | None = None

    @property
    def drifted(self) -> bool:
        """True when a finding needs a contract change (the CLI exits 1)."""
        return any(f.drift for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "contract_version": self.contract_version,
            "runs": list(self.runs),
            "documents": self.documents,
            "sample_every": self.sample_every,
            "thresholds": {
                "required_share": REQUIRED_SHARE,
                "vanished_share": VANISHED_SHARE,
                "bad_value_share": BAD_VALUE_SHARE,
            },
            "drifted": self.drifted,
            "findings": [f.to_dict() for f in self.findings],
            "proposal": self.proposal.to_dict() if self.proposal else None,
        }
