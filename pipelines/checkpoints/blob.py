"""`BlobStore`: documents as block blobs in one Azure Blob container (Azurite in the emulators profile).

Conditional writes map onto Blob's own: `if_match` is `If-Match: <etag>` (MatchConditions.IfNotModified)
and `if_none_match` is `If-None-Match: *` (MatchConditions.IfMissing). Documents are far below the
SDK's single-put size, so every write is one Put Blob request, atomic on the service. A failed
condition (412, or 409 BlobAlreadyExists) is `PreconditionFailed`; throttling, 5xx and connection
errors, once the SDK's own retries are spent, are `TransientError`; anything else (authorisation,
a bad request) is `TerminalError`. Names follow the same rule as `FileStore`, so a name that works
on the local profile works here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient

from meshkit.errors import TerminalError, TransientError
from pipelines.checkpoints.files import validate_document_name, validate_prefix
from pipelines.checkpoints.store import Document, DocumentStore, PreconditionFailed

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_ROLE_HINT = (
    "Grant the relay's identity the 'Storage Blob Data Contributor' role on the account or container "
    "(emulators: check MESHKIT_STORAGE_CONNECTION_STRING)"
)


class BlobStore(DocumentStore):
    """Documents in the container `container` (created when missing); the caller owns the client's settings."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        with self._translated("create the container"):
            try:
                container.create_container()
            except ResourceExistsError:
                pass
            except ClientAuthenticationError:
                # An identity may write blobs without the right to create containers: fine if it exists.
                if not container.exists():
                    raise

    def get(self, name: str) -> Document | None:
        blob = self.container.get_blob_client(validate_document_name(name))
        with self._translated(f"read {name!r}"):
            try:
                downloader = blob.download_blob()
                data = downloader.readall()
            except ResourceNotFoundError:
                return None
        return Document(name=name, data=data, etag=str(downloader.properties.etag))

    def put(self, name: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        blob = self.container.get_blob_client(validate_document_name(name))
        # The SDK forwards an unused `etag` keyword to the HTTP session, so pass it only with its condition.
        conditions: dict[str, Any] = {}
        if if_none_match:
            conditions = {"match_condition": MatchConditions.IfMissing}
        elif if_match is not None:
            conditions = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        with self._translated(f"write {name!r}"):
            try:
                response = blob.upload_blob(data, overwrite=True, **conditions)
            except ResourceModifiedError:
                raise PreconditionFailed(
                    f"blob {name!r} changed since ETag {if_match!r}" if if_match else f"blob {name!r} already exists",
                    hint="Another writer got there first; read it again before writing.",
                ) from None
            except ResourceExistsError as error:
                if if_none_match:
                    raise PreconditionFailed(
                        f"blob {name!r} already exists", hint="Read it and retry with if_match."
                    ) from None
                raise TransientError(f"conflict writing blob {name!r}: {_code(error)}") from error
            except ResourceNotFoundError:
                if if_match is None:
                    raise
                raise PreconditionFailed(
                    f"blob {name!r} no longer exists (expected ETag {if_match!r})",
                    hint="Read it again before writing.",
                ) from None
        return str(response["etag"])

    def list(self, prefix: str) -> Iterator[Document]:
        validate_prefix(prefix)
        with self._translated(f"list {prefix!r}"):
            names = [blob.name for blob in self.container.list_blobs(name_starts_with=prefix)]
        for name in names:  # the service lists in name order
            document = self.get(name)
            if document is not None:
                yield document

    def close(self) -> None:
        self.container.close()

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Turn the SDK's errors (after its own retries) into meshkit's transient/terminal errors."""
        where = f"container {self.container.container_name!r} at {self.container.primary_hostname}"
        try:
            yield
        except ClientAuthenticationError as error:
            raise TerminalError(
                f"not authorised to {action} in {where}: HTTP {error.status_code} {_code(error)}".rstrip(),
                hint=_ROLE_HINT,
            ) from None
        except (ServiceRequestError, ServiceResponseError) as error:
            raise TransientError(
                f"could not {action} in {where}: {type(error).__name__}",
                hint="The storage endpoint did not answer; the caller retries.",
            ) from error
        except HttpResponseError as error:
            status = error.status_code or 0
            reason = f"could not {action} in {where}: HTTP {status} {_code(error)}".rstrip()
            if status in _TRANSIENT_STATUS:
                raise TransientError(
                    reason, hint="Storage is throttling or unavailable; the caller retries."
                ) from error
            raise TerminalError(reason, hint=_ROLE_HINT if status == 403 else None) from error


def _code(error: HttpResponseError) -> str:
    """The storage error code (e.g. `AuthorizationPermissionMismatch`), which the SDK sets at run time."""
    return str(getattr(error, "error_code", None) or "")
