"""Dataset names per the OpenLineage naming spec: one (namespace, name) pair per place data lives.

Pure functions with no SDK import, so the review, the CLI and the pipelines can all name datasets
the same way. Local profile: lake folders, the event log and plain files are `file` + absolute path
(URI `file:///<path>`); the DuckDB warehouse is `duckdb://<file name>` + `<schema>.<table>`. Cloud
names follow https://openlineage.io/docs/spec/naming (Cosmos DB, Event Hubs through its Kafka
surface, GCS, BigQuery); docs/lineage.md has the table and the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from meshkit.errors import ConfigError

FILE_NAMESPACE = "file"
BIGQUERY_NAMESPACE = "bigquery"
EVENTHUBS_KAFKA_PORT = 9093


@dataclass(frozen=True)
class DatasetName:
    """Where a dataset lives (`namespace`) and what it is called there (`name`)."""

    namespace: str
    name: str

    @property
    def uri(self) -> str:
        """Namespace and name as one URI, the way the naming spec combines them (`scheme:[//authority]path`)."""
        if self.namespace == FILE_NAMESPACE:
            return PurePosixPath(self.name).as_uri()
        if self.namespace == BIGQUERY_NAMESPACE:
            return f"{BIGQUERY_NAMESPACE}:{self.name}"
        return f"{self.namespace.rstrip('/')}/{quote(self.name.lstrip('/'), safe='/:.@-_~')}"


def _require(value: str, what: str) -> str:
    if not value or not value.strip():
        raise ConfigError(
            f"a lineage dataset name needs a non-empty {what}",
            hint="Set it in the contract's server entry or in meshkit.yaml.",
        )
    return value.strip()


# --- local profile -------------------------------------------------------------------------------


def file_dataset(path: Path) -> DatasetName:
    """A local file or folder: namespace `file`, name the absolute POSIX path."""
    return DatasetName(FILE_NAMESPACE, path.resolve().as_posix())


def lake_zone_dataset(lake_dir: Path, bucket: str, domain: str, product: str) -> DatasetName:
    """A product folder in a local lake zone, laid out like its bucket: `<lake>/<bucket>/<domain>/<product>`.

    `bucket` is `Settings.bucket(zone)`, so the same product maps to `gs://<bucket>/<domain>/<product>`
    in the cloud (see `gcs_dataset`).
    """
    return file_dataset(lake_dir / _require(bucket, "bucket") / _require(domain, "domain") / product)


def warehouse_dataset(warehouse_path: Path, schema: str, table: str) -> DatasetName:
    """A table of the local DuckDB warehouse: `duckdb://<file name>` + `<schema>.<table>`."""
    return DatasetName(
        f"duckdb://{_require(warehouse_path.name, 'warehouse file name')}",
        f"{_require(schema, 'schema')}.{_require(table, 'table')}",
    )


def eventlog_dataset(eventlog_dir: Path, topic: str) -> DatasetName:
    """One topic of the durable local event log (the local stand-in for an Event Hub)."""
    return file_dataset(eventlog_dir / _require(topic, "topic"))


def dead_letter_dataset(lake_dir: Path, raw_bucket: str, domain: str, product: str) -> DatasetName:
    """Where a product's rejected events are kept with their reasons: `_dead_letters` in its raw zone."""
    zone = lake_zone_dataset(lake_dir, raw_bucket, domain, product)
    return DatasetName(zone.namespace, f"{zone.name}/_dead_letters")


# --- cloud (naming only; no client is created here) ----------------------------------------------


def cosmos_dataset(account: str, database: str, container: str) -> DatasetName:
    """An Azure Cosmos DB container: `azurecosmos://<account>.documents.azure.com/dbs/<db>` + `colls/<c>`."""
    host = f"{_require(account, 'account')}.documents.azure.com"
    return DatasetName(
        f"azurecosmos://{host}/dbs/{_require(database, 'database')}",
        f"colls/{_require(container, 'container')}",
    )


def eventhubs_dataset(namespace: str, hub: str) -> DatasetName:
    """An Event Hub seen through its Kafka surface: `kafka://<ns>.servicebus.windows.net:9093` + hub."""
    host = f"{_require(namespace, 'Event Hubs namespace')}.servicebus.windows.net"
    return DatasetName(f"kafka://{host}:{EVENTHUBS_KAFKA_PORT}", _require(hub, "event hub"))


def gcs_dataset(bucket: str, path: str) -> DatasetName:
    """A GCS object or prefix: `gs://<bucket>` + path without the leading slash."""
    return DatasetName(f"gs://{_require(bucket, 'bucket')}", _require(path, "path").strip("/"))


def bigquery_dataset(project: str, dataset: str, table: str) -> DatasetName:
    """A BigQuery table: namespace `bigquery`, name `project.dataset.table`."""
    parts = (_require(project, "project"), _require(dataset, "dataset"), _require(table, "table"))
    return DatasetName(BIGQUERY_NAMESPACE, ".".join(parts))
