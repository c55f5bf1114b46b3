"""Secrets the platform needs, from the environment or the cloud's identity, never from the repository.

The masking key (HMAC for `hash` masking) comes from `MESHKIT_MASKING_KEY` (at least 32 characters).
On the local profile only, when the variable is unset, a random key is generated once into the
workspace (`.meshkit/secrets/masking.key`, mode 0600, git-ignored) so demos hash consistently.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

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
    if settings.profile != "local":
        raise ConfigError(
            f"{MASKING_KEY_ENV} is not set (profile {settings.profile!r})",
            hint="Set it from your secret store (Secret Manager / Key Vault); only the local profile generates one.",
        )
    path = settings.workspace_dir / "secrets" / "masking.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return Path(path).read_text(encoding="utf-8").strip().encode("utf-8")


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
