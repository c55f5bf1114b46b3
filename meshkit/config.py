"""Typed, layered settings: defaults < meshkit.yaml < environment (MESHKIT_*) < command-line flags.

Secrets never come from files in the repository: the masking key is read from the environment
(`MESHKIT_MASKING_KEY`) or, on the local profile only, from a generated key file in the workspace.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from meshkit.errors import ConfigError, Location
from meshkit.yamlio import load_yaml

Profile = Literal["local", "emulators", "cloud"]
Bus = Literal["local", "kafka", "eventhubs"]
CheckpointStore = Literal["file", "blob"]
CONFIG_FILE = "meshkit.yaml"
ENV_PREFIX = "MESHKIT_"


class Settings(BaseModel):
    """Where each component runs and where the local profile keeps its state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = "local"
    root: Path = Path()
    workspace: Path = Path(".meshkit")
    environment: str = "dev"
    lineage_namespace: str | None = None  # default: meshkit-<environment>, one namespace per environment
    lake_bucket_prefix: str = "meshkit-lake"
    gcp_project: str | None = None  # cloud profile: where run metrics, dashboards and alerts live
    gcp_location: str = "southamerica-east1"
    eventlog_partitions: int = 8
    batch_size: int = 5000
    # the event bus: the local log, Event Hubs' Kafka surface (or any Kafka broker), or Event Hubs over AMQP
    bus: Bus = "local"
    kafka_bootstrap: str | None = None  # host:port; Event Hubs: <namespace>.servicebus.windows.net:9093
    kafka_security: Literal["plaintext", "eventhubs"] = "plaintext"  # eventhubs = SASL_SSL as Event Hubs needs
    # find a partition's true end by reading past the reported high watermark (brokers that misreport it)
    kafka_probe_end_offsets: bool = False
    eventhubs_namespace: str | None = None  # fully qualified: <namespace>.servicebus.windows.net
    # what change events look like on the bus: JSON, or Avro with the schema id in each event (docs/avro.md)
    bus_format: Literal["json", "avro"] = "json"
    # the schema registry for bus_format avro: a Confluent REST URL (Kafka surface), or an Azure Schema
    # Registry group https://<namespace>.servicebus.windows.net/$schemagroups/<group>; default: local files
    registry_url: str | None = None
    # the relay: Cosmos DB account, where continuation tokens and leases live, lease length
    cosmos_endpoint: str | None = None  # https://<account>.documents.azure.com:443/
    cosmos_database: str | None = None
    checkpoint_store: CheckpointStore = "file"  # file: the workspace; blob: Azure Blob (Azurite in emulators)
    blob_account_url: str | None = None  # https://<account>.blob.core.windows.net
    checkpoint_container: str = "meshkit-checkpoints"
    relay_lease_seconds: float = 30.0
    # PostgreSQL CDC: WAL the relay's replication slot may hold back before the relay warns (1 GiB)
    postgres_max_slot_lag_bytes: int = 1 << 30
    # GCP landing: where the lake and the warehouse live (local folder + DuckDB, or gs:// + BigQuery)
    lake_uri: str | None = None  # e.g. gs://  (buckets <lake_bucket_prefix>-<zone> under it); default: workspace/lake
    warehouse: Literal["duckdb", "bigquery"] = "duckdb"
    bigquery_location: str | None = None  # default: gcp_location
    policy_tag_taxonomy: str | None = None  # projects/<p>/locations/<l>/taxonomies/<id>: tags per classification
    # Dataflow (meshkit run --runner dataflow, meshkit infra): the scale-out engine in the cloud profile
    dataflow_region: str | None = None  # default: gcp_location
    dataflow_service_account: str | None = None
    dataflow_subnetwork: str | None = None  # regions/<region>/subnetworks/<name> or a full URL
    dataflow_max_workers: int = 10
    dataflow_temp_location: str | None = None  # gs://...; default: gs://<lake_bucket_prefix>-dataflow/temp
    dataflow_staging_location: str | None = None
    dataflow_image: str | None = None  # the Flex Template's container image (Artifact Registry)
    # cloud: the masking key in Secret Manager (projects/<p>/secrets/<name>/versions/<v>), read by every
    # process that masks (Dataflow workers too) with its own identity; MESHKIT_MASKING_KEY still wins
    masking_key_secret: str | None = None

    @property
    def lineage_job_namespace(self) -> str:
        return self.lineage_namespace or f"meshkit-{self.environment}"

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
    def checkpoint_dir(self) -> Path:
        return self.workspace_dir / "checkpoints"

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
_VALID_SETTINGS = f"Valid settings are: {', '.join(_FIELDS)}."


def _env_name(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()}"


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    return {name: environ[_env_name(name)] for name in _FIELDS if _env_name(name) in environ}


@dataclass(frozen=True)
class _Layer:
    """One source of settings and, for error messages, where each of its keys was written."""

    source: str
    values: dict[str, Any]
    lines: Mapping[str, int] = field(default_factory=dict)  # meshkit.yaml: key -> line

    def origin(self, key: str) -> str:
        if self.source.startswith("environment"):
            return f"environment variable {_env_name(key)}"
        return f"{self.source}:{self.lines[key]}" if key in self.lines else self.source

    def location(self, key: str) -> Location | None:
        if key not in self.lines:
            return None
        return Location(self.source, self.lines[key], key)


def _file_layer(config_file: Path) -> _Layer:
    doc = load_yaml(config_file)
    data = doc.data or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{CONFIG_FILE} must be a mapping of settings",
            location=Location(str(config_file), 1),
            hint=f"Write one `setting: value` per line, e.g. `profile: local`. {_VALID_SETTINGS}",
        )
    return _Layer(str(config_file), data, {k: doc.lines[k] for k in data if isinstance(k, str) and k in doc.lines})


def _unknown_key_hint(key: object) -> str:
    close = difflib.get_close_matches(str(key), _FIELDS, n=1)
    guess = f"Did you mean {close[0]!r}? " if close else ""
    return f"{guess}{_VALID_SETTINGS}"


def _invalid_value_hint(key: str, layer: _Layer) -> str:
    valid = "Valid profiles are: local, emulators, cloud. " if key == "profile" else ""
    if layer.source.startswith("environment"):
        return f"{valid}Correct or unset {_env_name(key)}."
    if layer.source == "command line":
        return f"{valid}Correct the command-line value."
    return f"{valid}Correct {key!r} in {layer.source} or remove it."


def load_settings(
    root: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings in the documented order; an invalid key names its source and valid values."""
    root = (root or Path.cwd()).resolve()
    environ = os.environ if environ is None else environ
    layers: list[_Layer] = []
    config_file = root / CONFIG_FILE
    if config_file.exists():
        layers.append(_file_layer(config_file))
    layers.append(_Layer(f"environment ({ENV_PREFIX}*)", _from_env(environ)))
    layers.append(_Layer("command line", {k: v for k, v in (overrides or {}).items() if v is not None}))
    merged: dict[str, Any] = {"root": root}
    for layer in layers:
        for key, value in layer.values.items():
            if key not in _FIELDS:
                where = "" if layer.location(key) else f" in {layer.source}"
                raise ConfigError(
                    f"unknown setting {key!r}{where}", location=layer.location(key), hint=_unknown_key_hint(key)
                )
            merged[key] = value
        try:
            Settings.model_validate(merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else "?"
            raise ConfigError(
                f"invalid value {merged.get(key)!r} for setting {key!r} from {layer.origin(key)}: {err['msg']}",
                hint=_invalid_value_hint(key, layer),
            ) from exc
    return Settings.model_validate(merged)
