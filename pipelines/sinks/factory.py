"""The warehouse a run writes to, chosen by `settings.warehouse`: DuckDB (local) or BigQuery (GCP).

Both implement the same interface (`apply_changes`, `unseen`, `append`, `replace`, `read`, `count`,
`exists`); this module also names their tables for lineage and run summaries. The BigQuery client is
built here, from settings, unless one is passed in (tests hand in clients pointed at an emulator).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from meshkit.config import Settings
from meshkit.errors import ConfigError
from monitoring.lineage.naming import DatasetName, bigquery_dataset, warehouse_dataset

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud import bigquery

    from pipelines.sinks.bigquery import BigQueryWarehouse
    from pipelines.sinks.warehouse import DuckDBWarehouse, MergeResult, WarehouseTables

# google-cloud-bigquery's own emulator variable: the client sends requests there. The emulator has no
# authentication, so the client gets anonymous credentials instead of searching for Google ones.
EMULATOR_VARIABLE = "BIGQUERY_EMULATOR_HOST"


class Warehouse(Protocol):
    """What the pipeline's sinks, the refined pipeline and the quality measures need of a warehouse."""

    def apply_changes(self, t: WarehouseTables, events: pa.Table) -> MergeResult: ...
    def unseen(self, t: WarehouseTables, events: pa.Table) -> pa.Table: ...
    def append(self, t: WarehouseTables, kind: str, rows: pa.Table) -> int: ...
    def replace(self, t: WarehouseTables, kind: str, rows: pa.Table) -> int: ...
    def read(self, t: WarehouseTables, kind: str) -> pa.Table: ...
    def count(self, t: WarehouseTables, kind: str) -> int: ...
    def exists(self, t: WarehouseTables, kind: str) -> bool: ...


def _project(settings: Settings) -> str:
    if not settings.gcp_project:
        raise ConfigError(
            "setting 'warehouse' is 'bigquery' but 'gcp_project' is not set",
            hint="Set gcp_project in meshkit.yaml or MESHKIT_GCP_PROJECT, or use warehouse: duckdb.",
        )
    return settings.gcp_project


def bigquery_location(settings: Settings) -> str:
    return settings.bigquery_location or settings.gcp_location


def bigquery_client(settings: Settings) -> bigquery.Client:
    """A client for the settings' project: on `BIGQUERY_EMULATOR_HOST` when that is set (anonymous),
    else with Application Default Credentials (workload identity, a service account, gcloud)."""
    from google.cloud import bigquery

    project = _project(settings)
    emulator = os.environ.get(EMULATOR_VARIABLE)
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        endpoint = emulator if "://" in emulator else f"http://{emulator}"
        return bigquery.Client(
            project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
        )
    return bigquery.Client(project=project, location=bigquery_location(settings))


def warehouse_for(settings: Settings, client: bigquery.Client | None = None) -> DuckDBWarehouse | BigQueryWarehouse:
    """The configured warehouse; `client` overrides the BigQuery client built from settings."""
    if settings.warehouse == "bigquery":
        from pipelines.sinks.bigquery import BigQueryWarehouse

        return BigQueryWarehouse(client or bigquery_client(settings), location=bigquery_location(settings))
    from pipelines.sinks.warehouse import DuckDBWarehouse

    return DuckDBWarehouse(settings.warehouse_path)


def warehouse_table(settings: Settings, tables: WarehouseTables, kind: str) -> tuple[DatasetName, str]:
    """A product table's lineage dataset and its location as a run summary shows it."""
    table = f"{tables.table}_{kind}"
    if settings.warehouse == "bigquery":
        project = _project(settings)
        return bigquery_dataset(project, tables.schema, table), f"bigquery://{project}.{tables.schema}.{table}"
    path = settings.warehouse_path
    return warehouse_dataset(path, tables.schema, table), f"{path}::{tables.schema}.{table}"
