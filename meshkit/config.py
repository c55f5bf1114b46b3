"""Typed, layered settings: defaults < meshkit.yaml < environment (MESHKIT_*) < command-line flags.

Secrets never come from files in the repository: the masking key is read from the environment
(`MESHKIT_MASKING_KEY`) or, on the local profile only, from a generated key file in the workspace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from meshkit.errors import ConfigError, Location
from meshkit.yamlio import load_yaml

Profile = Literal["local", "emulators", "cloud"]
CONFIG_FILE = "meshkit.yaml"
ENV_PREFIX = "MESHKIT_"


class Settings(BaseModel):
    """Where each component runs and where the local profile keeps its state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = "local"
    root: Path = Path()
    workspace: Path = Path(".meshkit")
    environment: str = "dev"
    lineage_namespace: str = "meshkit-dev"
    lake_bucket_prefix: str = "meshkit-lake"
    eventlog_partitions: int = 8
    batch_size: int = 5000

    @property
    def workspace_dir(self) -> Path:
        return self.workspace if self.workspace.is_absolute() else self.root / self.workspace

    @property
    def domains_dir(self) -> Path:
        return self.root / "domains"

    @property
    def lake_dir(self) -> Path:
        return self.workspace_dir / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.workspace_dir / "warehouse.duckdb"

    @property
    def eventlog_dir(self) -> Path:
        return self.workspace_dir / "eventlog"

    @property
    def lineage_path(self) -> Path:
        return self.workspace_dir / "lineage" / "events.ndjson"

    @property
    def metrics_path(self) -> Path:
        return self.workspace_dir / "metrics.sqlite"

    @property
    def reports_dir(self) -> Path:
        return self.workspace_dir / "reports"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    def bucket(self, zone: str) -> str:
        return f"{self.lake_bucket_prefix}-{zone}"


_FIELDS = tuple(Settings.model_fields)


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: environ[f"{ENV_PREFIX}{name.upper()}"] for name in _FIELDS if f"{ENV_PREFIX}{name.upper()}" in environ
    }


def load_settings(
    root: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings in the documented order; an invalid key names its source and valid values."""
    root = (root or Path.cwd()).resolve()
    environ = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []
    config_file = root / CONFIG_FILE
    if config_file.exists():
        data = load_yaml(config_file).data or {}
        if not isinstance(data, dict):
            raise ConfigError("meshkit.yaml must be a mapping", location=Location(str(config_file), 1))
        layers.append((str(config_file), data))
    layers.append((f"environment ({ENV_PREFIX}*)", _from_env(environ)))
    layers.append(("command line", {k: v for k, v in (overrides or {}).items() if v is not None}))
    merged: dict[str, Any] = {"root": root}
    for source, values in layers:
        for key, value in values.items():
            if key not in _FIELDS:
                raise ConfigError(
                    f"unknown setting {key!r} in {source}", hint=f"Valid settings are: {', '.join(_FIELDS)}."
                )
            merged[key] = value
        try:
            Settings.model_validate(merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else "?"
            raise ConfigError(
                f"invalid value {merged.get(key)!r} for setting {key!r} from {source}: {err['msg']}",
                hint="Valid profiles are: local, emulators, cloud." if key == "profile" else None,
            ) from exc
    return Settings.model_validate(merged)
