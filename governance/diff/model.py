"""The unit of a contract diff: one classified change, and the kinds a change can be."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

ChangeKind = Literal["breaking", "non-breaking", "governance"]

# codes whose only effect is on documentation: they need a patch bump, not a minor one
DOCS_ONLY_CODES = frozenset({"description-changed"})


@dataclass(frozen=True)
class Change:
    """One classified difference: `field` is the path in the new contract (the old one when removed)."""

    kind: ChangeKind
    code: str
    field: str
    old: Any
    new: Any
    message: str

    @property
    def docs_only(self) -> bool:
        return self.code in DOCS_ONLY_CODES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "old": _plain(self.old), "new": _plain(self.new)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def worst(changes: Iterable[Change]) -> ChangeKind | None:
    """The most demanding kind among `changes` (breaking > governance > non-breaking)."""
    kinds = {c.kind for c in changes}
    order: tuple[ChangeKind, ...] = ("breaking", "governance", "non-breaking")
    for kind in order:
        if kind in kinds:
            return kind
    return None
