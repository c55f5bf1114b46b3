"""Small durable documents with optimistic concurrency: where the relay keeps continuation tokens and
leases, and where Event Hubs consumers keep their offsets.

The model is Azure Blob's: each document has an ETag; a conditional write (`if_match` an ETag, or
`if_none_match` for create-only) fails with `PreconditionFailed` when someone else wrote in between.
Implementations: `FileStore` (the local profile, a folder) and `BlobStore` (Azure Blob; Azurite in the
emulators profile).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from meshkit.errors import TransientError


class PreconditionFailed(TransientError):
    """A conditional write lost a race: the document changed (or exists) since it was read."""


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    data: bytes
    etag: str


class DocumentStore(Protocol):
    def get(self, name: str) -> Document | None:
        """The document, or None when it does not exist."""
        ...

    def put(self, name: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write durably and return the new ETag; raise `PreconditionFailed` when the condition fails."""
        ...

    def list(self, prefix: str) -> Iterator[Document]:
        """Documents whose name starts with `prefix`, in name order."""
        ...

    def close(self) -> None: ...
