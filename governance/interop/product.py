"""What `meshkit import` and `meshkit export` do with product folders: open the source named on the
command line, write the imported contract (and a descriptor for a new product), render exports.

Sources are opened from settings and the environment the way the relay and the sinks open them:
BigQuery through `pipelines.sinks.factory.bigquery_client`, Cosmos DB through
`pipelines.sources.cosmos.feed.open_container`, PostgreSQL from `MESHKIT_POSTGRES_DSN`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import yaml

from governance.interop.document import product_ref
from meshkit.checks import Check
from meshkit.config import Settings
from meshkit.contracts.model import Contract
from meshkit.errors import ConfigError, ContractError, Location, TerminalError, TransientError
from meshkit.products.model import CONTRACT_FILE, DESCRIPTOR_FILE
from meshkit.scaffold import ProductScaffold

IMPORT_KINDS = ("bigquery", "cosmos", "postgres", "avro")
EXPORT_FORMATS = ("jsonschema", "avro", "bigquery-ddl", "dbt")
SOURCE_FORMS = {
    "bigquery": "project.dataset.table (or dataset.table in the settings' gcp_project)",
    "cosmos": "<database>/<container>",
    "postgres": "<schema>.<table>",
    "avro": "a path to an .avsc file",
}


@dataclass(frozen=True)
class ImportResult:
    """The files written and the validation checks of the imported contract (warnings are expected)."""

    written: tuple[Path, ...]
    checks: tuple[Check, ...]


def _parts(kind: str, source: str, separator: str, count: tuple[int, ...]) -> list[str]:
    parts = source.strip().split(separator)
    if len(parts) not in count or not all(parts):
        raise TerminalError(
            f"{kind} source {source!r} is not of the form {SOURCE_FORMS[kind]}",
            hint=f"Write it as {SOURCE_FORMS[kind]}.",
        )
    return parts


def _from_bigquery(settings: Settings, source: str, ref: str) -> dict[str, Any]:
    from governance.interop.importers import from_bigquery
    from pipelines.sinks.factory import bigquery_client

    parts = _parts("bigquery", source, ".", (2, 3))
    project = parts[0] if len(parts) == 3 else settings.gcp_project
    if not project:
        raise ConfigError(
            f"BigQuery source {source!r} names no project and setting 'gcp_project' is not set",
            hint="Write project.dataset.table, or set gcp_project in meshkit.yaml or MESHKIT_GCP_PROJECT.",
        )
    client = bigquery_client(settings.model_copy(update={"gcp_project": settings.gcp_project or project}))
    from google.api_core import exceptions

    table_id = ".".join([project, *parts[-2:]])
    try:
        return from_bigquery(client, table_id, product=ref)
    except exceptions.NotFound:
        raise TerminalError(
            f"BigQuery table {table_id} does not exist", hint="Check the project, dataset and table names."
        ) from None
    except exceptions.GoogleAPICallError as exc:
        raise TransientError(f"BigQuery refused to describe {table_id}: {exc.message}") from None
    except (exceptions.RetryError, OSError) as exc:  # requests' ConnectionError is an OSError
        where = os.environ.get("BIGQUERY_EMULATOR_HOST") or "the BigQuery API"
        raise TransientError(
            f"cannot reach {where} to describe {table_id} ({type(exc).__name__})",
            hint="Check the network path and credentials (Application Default Credentials), or BIGQUERY_EMULATOR_HOST.",
        ) from None


def _from_cosmos(settings: Settings, source: str, ref: str, sample_size: int) -> dict[str, Any]:
    from azure.cosmos import exceptions

    from governance.interop.importers import from_cosmos_sample
    from meshkit.contracts.model import SourceSpec
    from pipelines.sources.cosmos.feed import open_container

    database, name = _parts("cosmos", source, "/", (2,))
    spec = SourceSpec("cosmosdb", None, database, name, None, "latestVersion", None)
    container = open_container(settings.model_copy(update={"cosmos_database": database}), spec)
    try:
        return from_cosmos_sample(container, sample_size, product=ref)
    except exceptions.CosmosResourceNotFoundError:
        raise TerminalError(
            f"Cosmos DB container {database}/{name} does not exist at {settings.cosmos_endpoint}",
            hint="Check the database and container names (`<database>/<container>`).",
        ) from None


def _from_postgres(source: str, ref: str) -> dict[str, Any]:
    import psycopg2

    from governance.interop.importers import from_postgres
    from meshkit.secrets import POSTGRES_DSN_ENV

    schema, table = _parts("postgres", source, ".", (2,))
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        raise ConfigError(
            f"{POSTGRES_DSN_ENV} is not set",
            hint=f"Set {POSTGRES_DSN_ENV} to a libpq connection string of the database holding {schema}.{table}.",
        )
    try:
        conn = psycopg2.connect(dsn, application_name="meshkit-import")
    except psycopg2.Error as exc:  # the driver's message never includes the password, but may the DSN: first line only
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TransientError(
            f"cannot connect to PostgreSQL ({POSTGRES_DSN_ENV}): {first}",
            hint="Check the server is reachable and the credentials in the DSN.",
        ) from None
    try:
        return from_postgres(conn, schema, table, product=ref)
    finally:
        conn.close()


def _from_avro(source: str, ref: str) -> dict[str, Any]:
    from governance.interop.importers import from_avro

    path = Path(source)
    if not path.is_file():
        raise TerminalError(f"no Avro schema file {source}", location=Location(source), hint="Pass an .avsc file.")
    try:
        return from_avro(path.read_text(encoding="utf-8"), product=ref)
    except ContractError as exc:
        raise ContractError(exc.reason, location=Location(str(path)), hint=exc.hint) from None


def _descriptor(ref: tuple[str, str], imported_from: str) -> str:
    """The scaffold's `dataproduct.yaml`, its input port describing where the contract came from."""
    text = ProductScaffold(ref[0], ref[1], f"{ref[0]}-data-owners@example.com", date.today()).render()[DESCRIPTOR_FILE]
    data = yaml.safe_load(text)
    for port in data.get("inputPorts") or ():
        port["description"] = f"Imported from {imported_from}."
    return plain_yaml(data)


class _PlainDumper(yaml.SafeDumper):
    """Safe YAML without anchors and aliases: a repeated block (dbt freshness) is written out each time."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def plain_yaml(document: Any) -> str:
    """`document` as block-style YAML in its own key order."""
    return yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=110)


def import_product(
    settings: Settings,
    kind: str,
    source: str,
    ref: str,
    *,
    out: Path | None = None,
    force: bool = False,
    sample_size: int = 500,
) -> ImportResult:
    """Import `source` of `kind` into `<out or domains>/<domain>/<product>/`, then validate the contract."""
    from governance.validation.products import contract_checks

    domain, product = product_ref(ref, "", "")
    directory = (out or settings.domains_dir) / domain / product
    contract_path = directory / CONTRACT_FILE
    if contract_path.exists() and not force:
        raise TerminalError(
            f"product {domain}/{product} already has a contract",
            location=Location(str(contract_path)),
            hint="Import into another product, or pass --force to replace the contract.",
        )
    openers: dict[str, Callable[[], dict[str, Any]]] = {
        "bigquery": lambda: _from_bigquery(settings, source, ref),
        "cosmos": lambda: _from_cosmos(settings, source, ref, sample_size),
        "postgres": lambda: _from_postgres(source, ref),
        "avro": lambda: _from_avro(source, ref),
    }
    if kind not in openers:
        raise TerminalError(f"unknown import source {kind!r}", hint=f"Valid values are: {', '.join(IMPORT_KINDS)}.")
    document = openers[kind]()
    files = {CONTRACT_FILE: plain_yaml(document)}
    if not (directory / DESCRIPTOR_FILE).exists():
        files[DESCRIPTOR_FILE] = _descriptor((domain, product), f"{kind} {source}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    _, checks = contract_checks(contract_path)
    return ImportResult(tuple(written), tuple(checks))


def export_text(contract: Contract, fmt: str, *, dataset: str | None = None, shape: str = "document") -> str:
    """The contract in `fmt` as text (JSON, SQL or YAML)."""
    from governance.interop import exporters

    if fmt == "jsonschema":
        if shape not in exporters.JSON_SHAPES:
            raise TerminalError(
                f"unknown JSON Schema shape {shape!r}", hint=f"Valid values are: {', '.join(exporters.JSON_SHAPES)}."
            )
        schema = exporters.to_json_schema(contract, cast("exporters.JsonShape", shape))
        return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if fmt == "avro":
        return json.dumps(exporters.to_avro(contract), indent=2, ensure_ascii=False) + "\n"
    if fmt == "bigquery-ddl":
        return exporters.to_bigquery_ddl(contract, dataset)
    if fmt == "dbt":
        return plain_yaml(exporters.to_dbt_sources(contract))
    raise TerminalError(f"unknown export format {fmt!r}", hint=f"Valid values are: {', '.join(EXPORT_FORMATS)}.")
