"""Secrets the platform needs, from the environment or the cloud's identity, never from the repository.

The masking key (HMAC for `hash` masking) comes from `MESHKIT_MASKING_KEY` (at least 32 characters).
On the local profile only, when the variable is unset, a random key is generated once into the
workspace (`.meshkit/secrets/masking.key`, mode 0600, git-ignored) so demos hash consistently.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from pathlib import Path
from typing import Any

from meshkit.config import Settings
from meshkit.errors import ConfigError

MASKING_KEY_ENV = "MESHKIT_MASKING_KEY"
MIN_KEY_LENGTH = 32


def masking_key(settings: Settings) -> bytes:
    value = os.environ.get(MASKING_KEY_ENV)
    if value is not None:
        if len(value) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{MASKING_KEY_ENV} is shorter than {MIN_KEY_LENGTH} characters",
                hint="Use a random value, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`, "
                "kept in Secret Manager or Key Vault.",
            )
        return value.encode("utf-8")
    if settings.masking_key_secret:
        return _secret_manager_key(settings.masking_key_secret)
    if settings.profile != "local":
        raise ConfigError(
            f"{MASKING_KEY_ENV} is not set (profile {settings.profile!r})",
            hint="Set `masking_key_secret` to the Secret Manager version holding it (Dataflow workers read it "
            f"there), or {MASKING_KEY_ENV} from your secret store; only the local profile generates one.",
        )
    path = settings.workspace_dir / "secrets" / "masking.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return Path(path).read_text(encoding="utf-8").strip().encode("utf-8")


_SECRET_VERSION = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]+/versions/(latest|[0-9]+)$")


@functools.lru_cache(maxsize=4)
def _secret_manager_key(version: str) -> bytes:
    """The masking key from Secret Manager, read once per process with the process's own identity."""
    if not _SECRET_VERSION.match(version):
        raise ConfigError(
            f"masking_key_secret {version!r} is not a Secret Manager version name",
            hint="Write it as projects/<project>/secrets/<name>/versions/latest (or a version number).",
        )
    from google.api_core import exceptions
    from google.cloud import secretmanager

    try:
        payload = _secret_manager_client(secretmanager).access_secret_version(name=version).payload.data
    except exceptions.GoogleAPICallError as exc:
        raise ConfigError(
            f"could not read the masking key from {version}: {exc.__class__.__name__}",
            hint="Grant the identity roles/secretmanager.secretAccessor on that secret, and check the name.",
        ) from exc
    key: str = bytes(payload).decode("utf-8").strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"the masking key in {version} is shorter than {MIN_KEY_LENGTH} characters",
            hint="Add a new version with a random value of at least 32 characters.",
        )
    return key.encode("utf-8")


SECRET_MANAGER_ENDPOINT_ENV = "MESHKIT_SECRET_MANAGER_ENDPOINT"  # noqa: S105 - a variable name, not a secret


def _secret_manager_client(secretmanager: Any) -> Any:
    """The real client; `MESHKIT_SECRET_MANAGER_ENDPOINT` (host:port) points it at a local endpoint
    speaking the same gRPC API (plaintext, anonymous), as the emulator tests do."""
    endpoint = os.environ.get(SECRET_MANAGER_ENDPOINT_ENV)
    if not endpoint:
        return secretmanager.SecretManagerServiceClient()
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    transport = SecretManagerServiceGrpcTransport(
        channel=grpc.insecure_channel(endpoint),
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )
    return secretmanager.SecretManagerServiceClient(transport=transport)


# Connection strings are for emulators only; the cloud profile authenticates with Azure AD
# (managed identity / workload identity through azure-identity). They are read from the environment,
# never from meshkit.yaml, and never logged.
EVENTHUBS_CONNECTION_STRING_ENV = "MESHKIT_EVENTHUBS_CONNECTION_STRING"
STORAGE_CONNECTION_STRING_ENV = "MESHKIT_STORAGE_CONNECTION_STRING"
COSMOS_KEY_ENV = "MESHKIT_COSMOS_KEY"
# PostgreSQL CDC: the replication role's credentials, or a whole libpq DSN (host/port/dbname in it win
# over the contract's server); read when the relay connects, never logged.
POSTGRES_USER_ENV = "MESHKIT_POSTGRES_USER"
POSTGRES_PASSWORD_ENV = "MESHKIT_POSTGRES_PASSWORD"  # noqa: S105 - the variable's name, not a secret
POSTGRES_DSN_ENV = "MESHKIT_POSTGRES_DSN"


def emulator_secret(settings: Settings, env: str, what: str) -> str | None:
    """The emulator credential in `env`, or None in the cloud profile (which must use Azure AD)."""
    value = os.environ.get(env)
    if value is None:
        return None
    if settings.profile == "cloud":
        raise ConfigError(
            f"{env} is set but the profile is 'cloud'",
            hint=f"The cloud profile authenticates to {what} with Azure AD (managed identity or workload "
            f"identity); unset {env} and grant the identity its role instead.",
        )
    return value
