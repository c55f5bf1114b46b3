"""Where a product's data lives, as something SQL can be sent to: one `DataTarget` per server.

- `local` + source `lake` (default): DuckDB over the product's Parquet in its lake zone (curated, or
  refined for refined products), `read_parquet(..., hive_partitioning, union_by_name)`. The zone keeps
  every change, so the checks see the current state: the newest version per `_key` by `_lsn`, deletes
  dropped (uniqueness of a key across history would be meaningless). Reference targets are all keys
  the referenced product ever published.
- `local` + source `warehouse`: the DuckDB warehouse's `<schema>.<table>_current` table.
- `local` + `path`: any Parquet file or glob, read as it is (the bench's 1,000,000-row file).
- `gcs`: the same SQL over `gs://` Parquet through DuckDB's httpfs extension (cloud only: the
  extension cannot be downloaded offline, and the GCS emulator speaks no S3/HMAC interop).
- `bigquery`: `governance.testing.bigquery_target` (GoogleSQL on the product's current table).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from typing import Any, Protocol

import duckdb

from governance.testing.sql import DUCKDB, SqlDialect
from meshkit.config import Settings
from meshkit.errors import ConfigError, ContractError, MeshkitError
from meshkit.products.model import DataProduct
from pipelines.sinks.warehouse import WarehouseTables

_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SERVERS = ("local", "gcs", "bigquery")
SOURCES = ("lake", "warehouse")


class DataTarget(Protocol):
    """A product's table in one engine: its SQL dialect, a FROM-able relation and a way to query it."""

    dialect: SqlDialect
    relation: str
    dataset: str  # what was read, for people and lineage (a URI or a table name)
    masked: bool  # personal columns hold masked values (curated zone, warehouse)

    def columns(self) -> dict[str, str]: ...  # column name -> engine type
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...
    def reference(self, product: DataProduct) -> str | None: ...  # FROM-able relation of another product
    def close(self) -> None: ...


def table_identifier(product: DataProduct) -> str:
    """The contract's table name, accepted only as a plain identifier (it names a view and fills
    `{model}` in custom SQL rules)."""
    name = product.contract.table_name
    if not _PLAIN_NAME.match(name):
        raise ContractError(
            f"table name {name!r} is not a plain SQL identifier",
            location=product.contract.document.location("schema[0].physicalName"),
            hint="Use letters, digits and underscores, starting with a letter (e.g. `customer_exposure`).",
        )
    return name


def zone_of(product: DataProduct) -> str:
    return "refined" if product.is_refined else "curated"


def lake_folder(settings: Settings, product: DataProduct) -> str:
    """The product's folder in its zone: `<lake>/<prefix>-<zone>/<domain>/<product>` (or gs://...)."""
    bucket = settings.bucket(zone_of(product))
    if settings.lake_uri:
        base = settings.lake_uri if settings.lake_uri.endswith("://") else settings.lake_uri.rstrip("/") + "/"
        return f"{base}{bucket}/{product.domain}/{product.name}"
    return str(settings.lake_dir / bucket / product.domain / product.name)


def _parquet(source: str) -> str:
    return f"read_parquet({DUCKDB.literal(source)}, hive_partitioning = true, union_by_name = true)"


class DuckDBTarget:
    """DuckDB over Parquet (local or gs://) or over the local warehouse file."""

    dialect = DUCKDB

    def __init__(self, settings: Settings, product: DataProduct, *, source: str = "lake", path: str | None = None,
                 masked: bool | None = None, server: str = "local") -> None:  # fmt: skip
        self.settings, self.product, self.server = settings, product, server
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self._views = 0
        name = table_identifier(product)
        self.relation = DUCKDB.ident(name)
        if server == "gcs":
            self._load_httpfs()
        if path is not None:
            files = path if server == "gcs" else self._files(path)
            self.dataset = path
            self.con.execute(f"CREATE TEMP VIEW {self.relation} AS SELECT * FROM {_parquet(files)}")
            self.masked = bool(masked)
        elif source == "warehouse":
            warehouse = settings.warehouse_path
            if not warehouse.exists():
                raise ConfigError(f"no warehouse at {warehouse}", hint="Run the product first: `meshkit run`.")
            self.con.execute(f"ATTACH {DUCKDB.literal(str(warehouse))} AS wh (READ_ONLY)")
            table = self._warehouse_table(product, "current")
            tables = WarehouseTables.of(product.domain, product.contract.table_name)
            self.dataset = f"{warehouse}::{tables.schema}.{tables.table}_current"
            self.con.execute(f"CREATE TEMP VIEW {self.relation} AS SELECT * FROM {table}")
            self.masked = True if masked is None else masked
        else:
            folder = lake_folder(settings, product)
            self.dataset = folder
            self._latest_view(self.relation, folder)
            self.masked = True if masked is None else masked

    def _load_httpfs(self) -> None:
        try:
            self.con.execute("LOAD httpfs")
        except duckdb.Error as exc:
            raise ConfigError(
                "server 'gcs' needs DuckDB's httpfs extension, which is not installed",
                hint="In the cloud: `INSTALL httpfs` once, and a GCS HMAC key as a DuckDB secret. Offline, "
                "test the curated files with --server local, or the warehouse with --server bigquery.",
            ) from exc

    def _files(self, pattern: str) -> str:
        if not _has_files(pattern):
            raise ConfigError(f"no Parquet file matches {pattern}", hint="Check the path, or run the product first.")
        return pattern

    def _source(self, folder: str) -> str:
        pattern = f"{folder}/**/*.parquet"
        if not folder.startswith("gs://"):
            self._files_or_fail(pattern, folder)
        return _parquet(pattern)

    def _files_or_fail(self, pattern: str, folder: str) -> None:
        if not _has_files(pattern):
            raise ConfigError(
                f"product {self.product.ref} has no Parquet files in {folder}",
                hint=f"Run it first (`meshkit run {self.product.ref}` or `meshkit demo`), or pass --source warehouse.",
            )

    def _latest_view(self, view: str, folder: str) -> None:
        """The current state from the zone's change history (see the module notes)."""
        source = self._source(folder)
        names = {row[0] for row in self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        if {"_key", "_lsn"} <= names:
            latest = f"SELECT * FROM {source} QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC) = 1"
            live = " WHERE _op IS DISTINCT FROM 'delete'" if "_op" in names else ""
            sql = f"SELECT * FROM ({latest}){live}"
        else:
            sql = f"SELECT * FROM {source}"
        self.con.execute(f"CREATE TEMP VIEW {view} AS {sql}")

    def _warehouse_table(self, product: DataProduct, kind: str) -> str:
        tables = WarehouseTables.of(product.domain, product.contract.table_name)
        return f"wh.{DUCKDB.ident(tables.schema)}.{DUCKDB.ident(f'{tables.table}_{kind}')}"

    def columns(self) -> dict[str, str]:
        return {str(r[0]): str(r[1]) for r in self.con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.con.execute(sql).fetchall()]

    def reference(self, product: DataProduct) -> str | None:
        """All keys another product ever published (lake), or its current table (warehouse)."""
        self._views += 1
        view = DUCKDB.ident(f"ref_{self._views}_{table_identifier(product)}")
        if self.dataset.startswith(str(self.settings.warehouse_path)):
            self.con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {self._warehouse_table(product, 'current')}")
            return view
        folder = lake_folder(self.settings, product)
        if not folder.startswith("gs://") and not _has_files(f"{folder}/**/*.parquet"):
            return None
        self.con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {self._source(folder)}")
        return view

    def close(self) -> None:
        self.con.close()


def open_target(
    settings: Settings,
    product: DataProduct,
    *,
    server: str = "local",
    source: str = "lake",
    path: str | None = None,
    masked: bool | None = None,
    client: Any = None,
) -> DataTarget:
    """The product's data on `server` (see the module notes); `client` is a BigQuery client for tests."""
    if server not in SERVERS:
        raise ConfigError(f"unknown server {server!r}", hint=f"Valid values are: {', '.join(SERVERS)}.")
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}", hint=f"Valid values are: {', '.join(SOURCES)}.")
    if server == "bigquery":
        from governance.testing.bigquery_target import BigQueryTarget

        return BigQueryTarget(settings, product, client=client, masked=masked)
    if server == "gcs" and path is None and not (settings.lake_uri or "").startswith("gs://"):
        raise ConfigError(
            "server 'gcs' needs setting 'lake_uri' to be gs://",
            hint="Set lake_uri: gs:// in meshkit.yaml (or MESHKIT_LAKE_URI), or test --server local.",
        )
    return DuckDBTarget(settings, product, source=source, path=path, masked=masked, server=server)


def product_tables(products: Sequence[DataProduct]) -> dict[str, str]:
    """Table name (physical and logical) -> product ref, for foreign keys such as `users.user_id`."""
    found: dict[str, str] = {}
    for p in products:
        for name in _table_names(p):
            found.setdefault(name, p.ref)
    return found


def _table_names(product: DataProduct) -> tuple[str, ...]:
    try:
        table = product.contract.table
    except MeshkitError:
        return ()  # a contract without schema is validation's finding, not a test's
    return tuple(n for n in (table.name, table.physicalName) if n)


def _has_files(pattern: str) -> bool:
    """Whether a local glob (`**` recursive) matches a file, as DuckDB's read_parquet will."""
    return bool(glob.glob(pattern, recursive=True))  # noqa: PTH207 - a user's glob, not a folder walk
