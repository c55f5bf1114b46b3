"""The product's current-state table in BigQuery as a test target: the same checks in GoogleSQL,
run through google-cloud-bigquery (a client from settings, or one handed in by tests: the emulator)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.testing.sql import BIGQUERY
from governance.testing.targets import table_identifier
from meshkit.config import Settings
from meshkit.errors import ConfigError
from meshkit.products.model import DataProduct
from pipelines.sinks.warehouse import WarehouseTables

if TYPE_CHECKING:
    from google.cloud import bigquery


def table_path(project: str, product: DataProduct, kind: str = "current") -> str:
    """`project.dataset.table_current` as the warehouse names it (dataset = the domain)."""
    tables = WarehouseTables.of(product.domain, table_identifier(product))
    return f"{project}.{tables.schema}.{tables.table}_{kind}"


class BigQueryTarget:
    """GoogleSQL on `<project>.<domain>.<table>_current`; personal columns there are masked."""

    dialect = BIGQUERY

    def __init__(
        self, settings: Settings, product: DataProduct, *, client: bigquery.Client | None = None,
        masked: bool | None = None,
    ) -> None:  # fmt: skip
        if client is None:
            from pipelines.sinks.factory import bigquery_client

            client = bigquery_client(settings)
        self.client = client
        self.location = settings.bigquery_location or settings.gcp_location
        self.project = str(client.project)
        self.table_id = table_path(self.project, product)
        self.relation = BIGQUERY.ident(self.table_id)
        self.dataset = f"bigquery://{self.table_id}"
        self.masked = True if masked is None else masked

    def columns(self) -> dict[str, str]:
        from google.api_core.exceptions import NotFound

        try:
            table = self.client.get_table(self.table_id)
        except NotFound as exc:
            raise ConfigError(
                f"BigQuery table {self.table_id} does not exist",
                hint="Run the product with warehouse: bigquery first, or check gcp_project.",
            ) from exc
        return {f.name: str(f.field_type) for f in table.schema}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        rows = self.client.query(sql, location=self.location).result()
        return [tuple(row.values()) for row in rows]

    def reference(self, product: DataProduct) -> str | None:
        return BIGQUERY.ident(table_path(self.project, product))

    def close(self) -> None:
        return None
