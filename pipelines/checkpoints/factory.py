"""Open the configured checkpoint store for one namespace (e.g. one relay's product).

`checkpoint_store: file` keeps documents under `<workspace>/checkpoints/<namespace>/`; `blob` keeps
them in the container `checkpoint_container`, names prefixed with `<namespace>/`. Blob credentials:
the emulators' connection string from MESHKIT_STORAGE_CONNECTION_STRING when it is set (refused in
the cloud profile), else `blob_account_url` with Azure AD (`DefaultAzureCredential`: managed or
workload identity). The Azure SDK is imported only here, only for `blob`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from meshkit.config import Settings
from meshkit.errors import ConfigError
from meshkit.secrets import STORAGE_CONNECTION_STRING_ENV, emulator_secret
from pipelines.checkpoints.files import FileStore, validate_document_name
from pipelines.checkpoints.store import Document, DocumentStore

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
# The SDK's default retry waits 15 s, 18 s and 24 s, longer than a 30 s lease. These bound a failing
# call to about 20 s (3 attempts of at most 5 s, 1 s and 3 s back-off), after which the caller sees
# a TransientError while its lease is still valid.
_RETRY_TOTAL = 2
_TIMEOUT_SECONDS = 5


class NamespacedStore(DocumentStore):
    """A view of `inner` where every name is prefixed by `<namespace>/`, so products share one container."""

    def __init__(self, inner: DocumentStore, namespace: str) -> None:
        self.inner = inner
        self.prefix = validate_document_name(namespace) + "/"

    def get(self, name: str) -> Document | None:
        document = self.inner.get(self.prefix + validate_document_name(name))
        return None if document is None else Document(name, document.data, document.etag)

    def put(self, name: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        return self.inner.put(
            self.prefix + validate_document_name(name), data, if_match=if_match, if_none_match=if_none_match
        )

    def list(self, prefix: str) -> Iterator[Document]:
        for document in self.inner.list(self.prefix + prefix):
            yield Document(document.name[len(self.prefix) :], document.data, document.etag)

    def close(self) -> None:
        self.inner.close()


def open_store(settings: Settings, namespace: str) -> DocumentStore:
    """The checkpoint store of `namespace` as configured by `checkpoint_store`; the caller closes it."""
    validate_document_name(namespace)
    if settings.checkpoint_store == "file":
        return FileStore(settings.checkpoint_dir / namespace)
    from pipelines.checkpoints.blob import BlobStore

    return NamespacedStore(BlobStore(_container_client(settings)), namespace)


def _container_client(settings: Settings) -> ContainerClient:
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    container = settings.checkpoint_container
    if not _CONTAINER.fullmatch(container):
        raise ConfigError(
            f"invalid checkpoint_container {container!r}",
            hint="Azure container names are 3-63 lower-case letters, digits and single hyphens, starting and "
            "ending with a letter or digit (e.g. `meshkit-checkpoints`).",
        )
    options: dict[str, Any] = {
        "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=_RETRY_TOTAL),
        "connection_timeout": _TIMEOUT_SECONDS,
        "read_timeout": _TIMEOUT_SECONDS,
    }
    connection_string = emulator_secret(settings, STORAGE_CONNECTION_STRING_ENV, "Azure Blob Storage")
    if connection_string is not None:
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **options)
        except ValueError:
            # The SDK's message is generic; never echo the value, it holds the account key.
            raise ConfigError(
                f"{STORAGE_CONNECTION_STRING_ENV} is not a valid storage connection string",
                hint="Use the form `DefaultEndpointsProtocol=http;AccountName=...;AccountKey=...;"
                "BlobEndpoint=http://127.0.0.1:<port>/<account>;` (Azurite) and keep it in the environment only.",
            ) from None
        return service.get_container_client(container)
    if not settings.blob_account_url:
        raise ConfigError(
            f"blob_account_url is not set (checkpoint_store 'blob', profile {settings.profile!r})",
            hint="Set `blob_account_url: https://<account>.blob.core.windows.net` in meshkit.yaml or "
            f"MESHKIT_BLOB_ACCOUNT_URL (cloud, Azure AD); for Azurite set {STORAGE_CONNECTION_STRING_ENV}; "
            "or use `checkpoint_store: file`.",
        )
    from azure.identity import DefaultAzureCredential

    service = BlobServiceClient(settings.blob_account_url, credential=DefaultAzureCredential(), **options)
    return service.get_container_client(container)
