"""Contracts from what teams already have: a BigQuery table, a Cosmos DB container, a PostgreSQL table,
an Avro schema. Each importer returns a complete ODCS v3.1 draft (a plain dict, ready for YAML).

Clients and connections are passed in (tests hand in ones pointed at emulators). Types go through the
one mapping of `meshkit.contracts.types` (BigQuery type -> logical/physical type in `document.typed`);
Avro types through the inverse of `meshkit.contracts.avro.AVRO_OF_BIGQUERY` (`avro_reader`);
PostgreSQL types by the type OIDs the relay converts (`pipelines.sources.postgres.values.CONVERTERS`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from governance.interop.avro_reader import AvroSchemaReader
from governance.interop.document import (
    column,
    contract_document,
    lake_server,
    product_ref,
    typed,
    valid_values_rule,
)
from governance.interop.inference import profile_documents, properties_of
from meshkit.contracts.model import PERSONAL_CLASSIFICATIONS
from meshkit.errors import ContractError

# ---- BigQuery ----------------------------------------------------------------------------------------

METADATA_DEADLINE_SECONDS = 20.0


def _policy_classification(field: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(classification, policy tag) of a field: meshkit names tags after classifications (`.../pii`)."""
    names = (field.get("policyTags") or {}).get("names") or []
    if not names:
        return None, None
    tag = str(names[0])
    last = tag.rsplit("/", 1)[-1].lower()
    if last == "pii":
        return "restricted", tag
    return (last if last in PERSONAL_CLASSIFICATIONS else "restricted"), tag


def _bigquery_types(field: Mapping[str, Any]) -> dict[str, Any]:
    name = str(field.get("type", "STRING")).upper()
    precision, scale = field.get("precision"), field.get("scale")
    types = typed(name, precision=int(precision) if precision else None, scale=int(scale) if scale else None)
    if types["logicalType"] == "object" and types["physicalType"] == "RECORD":
        types["properties"] = [_bigquery_property(f, nested=True) for f in field.get("fields") or ()]
    return types


def _bigquery_property(field: Mapping[str, Any], *, nested: bool = False) -> dict[str, Any]:
    mode = str(field.get("mode") or "NULLABLE").upper()
    types = _bigquery_types(field)
    if mode == "REPEATED":
        types = {"logicalType": "array", "physicalType": "ARRAY", "items": types}
    prop = column(
        str(field["name"]),
        types,
        required=mode == "REQUIRED",
        description=field.get("description"),
        nested=nested,
    )
    classification, tag = _policy_classification(field)
    if classification and not nested:
        prop["classification"] = classification
        prop.setdefault("customProperties", []).append({"property": "policyTag", "value": tag})
        if tag and tag.lower().endswith("/pii"):
            prop["customProperties"] += [
                {"property": "personalData", "value": True},
                {"property": "masking", "value": "hash"},
            ]
    return prop


def from_bigquery(client: Any, table_id: str, *, product: str | None = None) -> dict[str, Any]:
    """A contract from a BigQuery table (`project.dataset.table`): schema with RECORD/REPEATED fields,
    NUMERIC precision and scale, descriptions, REQUIRED modes, policy tags, partitioning, clustering,
    and the (unenforced) primary key when the table declares one."""
    from google.cloud.bigquery import DEFAULT_RETRY

    # a metadata read: retried briefly, then the caller says the service cannot be reached
    table = client.get_table(table_id, retry=DEFAULT_RETRY.with_deadline(METADATA_DEADLINE_SECONDS), timeout=10)
    properties = [_bigquery_property(f.to_api_repr()) for f in table.schema]
    by_name = {p["name"]: p for p in properties}
    partitioning = table.time_partitioning
    if partitioning is not None and partitioning.field in by_name:
        by_name[partitioning.field].update(partitioned=True, partitionKeyPosition=1)
    for position, name in enumerate(table.clustering_fields or (), start=1):
        if name in by_name:
            by_name[name].setdefault("customProperties", []).append(
                {"property": "clusterKeyPosition", "value": position}
            )
    constraints = getattr(table, "table_constraints", None)
    key = getattr(getattr(constraints, "primary_key", None), "columns", None) or ()
    for position, name in enumerate(key, start=1):
        if name in by_name:
            by_name[name].update(primaryKey=True, primaryKeyPosition=position, required=True)
    ref = product_ref(product, table.dataset_id, table.table_id)
    server = lake_server(*ref, project=table.project, dataset=table.dataset_id)
    return contract_document(
        ref,
        table=table.table_id,
        description=table.description or f"The BigQuery table {table.project}.{table.dataset_id}.{table.table_id}.",
        table_description=table.description,
        properties=properties,
        servers=[server],
        imported_from=f"BigQuery table {table.project}.{table.dataset_id}.{table.table_id}",
    )


# ---- Cosmos DB ---------------------------------------------------------------------------------------


def _database_of(container: Any) -> str:
    link = str(getattr(container, "container_link", "") or getattr(container, "database_link", ""))
    match = re.match(r"^/?dbs/([^/]+)", link)
    return match.group(1) if match else "app"


def from_cosmos_sample(container: Any, sample_size: int = 500, *, product: str | None = None) -> dict[str, Any]:
    """A contract from the newest `sample_size` documents of a Cosmos DB container: fields and types
    inferred, required when present in every sampled document, `id` the key, the partition key path
    recorded."""
    if sample_size < 1:
        raise ContractError(f"sample size {sample_size} is not positive", hint="Sample at least one document.")
    query = "SELECT TOP @n * FROM c ORDER BY c._ts DESC"  # the newest documents: today's shape
    items = container.query_items(
        query, parameters=[{"name": "@n", "value": sample_size}], enable_cross_partition_query=True
    )
    documents = [doc for _, doc in zip(range(sample_size), items, strict=False)]
    database, name = _database_of(container), str(container.id)
    if not documents:
        raise ContractError(
            f"the Cosmos DB container {database}/{name} holds no documents to infer a schema from",
            hint="Import once the container has representative documents, or start with `meshkit new`.",
        )
    profiles, count = profile_documents(documents)
    properties = properties_of(profiles, count)
    for prop in properties:
        if prop["name"] == "id":
            prop.update(required=True, unique=True, primaryKey=True, primaryKeyPosition=1)
            prop["description"] = "Cosmos DB document id. " + str(prop.get("description", ""))
    key_paths = (container.read().get("partitionKey") or {}).get("paths") or ["/id"]
    ref = product_ref(product, database, name)
    source = {
        "server": "app-cosmos",
        "type": "custom",
        "environment": "dev",
        "description": "Operational store of the app (Azure Cosmos DB, NoSQL API).",
        "database": database,
        "customProperties": [
            {"property": "sourceKind", "value": "cosmosdb"},
            {"property": "container", "value": name},
            {"property": "partitionKeyPath", "value": str(key_paths[0])},
            {"property": "changeFeedMode", "value": "latestVersion"},
        ],
    }
    return contract_document(
        ref,
        table=None,
        description=f"One row per document of the Cosmos DB container {database}/{name}.",
        table_description=f"One row per document (inferred from {count} sampled documents).",
        properties=properties,
        servers=[source, lake_server(*ref)],
        imported_from=f"a sample of {count} documents of the Cosmos DB container {database}/{name}",
    )


# ---- PostgreSQL --------------------------------------------------------------------------------------

# Type OID -> BigQuery type: every OID the relay converts (`values.CONVERTERS`, a unit test checks it),
# plus the text-kept types whose text form BigQuery still reads as a typed value.
BIGQUERY_OF_POSTGRES: dict[int, str] = {
    16: "BOOL",
    20: "INT64",
    21: "INT64",
    23: "INT64",
    26: "INT64",
    700: "FLOAT64",
    701: "FLOAT64",
    1700: "NUMERIC",
    1082: "DATE",
    1114: "DATETIME",  # timestamp without time zone: a wall-clock time
    1184: "TIMESTAMP",
    114: "JSON",
    3802: "JSON",
    1083: "TIME",
    17: "BYTES",
    # uuid (2950), text, varchar, bpchar, enums, arrays, intervals: STRING, as the relay keeps their text
}
UUID_OID = 2950

_COLUMNS_SQL = """
SELECT c.column_name, c.is_nullable = 'NO', c.character_maximum_length, c.numeric_precision, c.numeric_scale,
       format('%%I.%%I', c.udt_schema, c.udt_name)::regtype::oid, t.typtype,
       col_description(format('%%I.%%I', c.table_schema, c.table_name)::regclass, c.ordinal_position::int)
FROM information_schema.columns c
JOIN pg_type t ON t.oid = format('%%I.%%I', c.udt_schema, c.udt_name)::regtype::oid
WHERE c.table_schema = %s AND c.table_name = %s
ORDER BY c.ordinal_position
"""
_KEY_SQL = """
SELECT a.attname, i.indisprimary, i.indexrelid
FROM pg_index i
JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = format('%%I.%%I', %s, %s)::regclass AND (i.indisprimary OR (i.indisunique AND i.indpred IS NULL))
ORDER BY i.indisprimary DESC, i.indexrelid, k.position
"""


def _postgres_types(oid: int, typtype: str, length: int | None, precision: int | None, scale: int | None) -> Any:
    bigquery = BIGQUERY_OF_POSTGRES.get(oid, "STRING")
    if bigquery == "NUMERIC" and precision is None:  # numeric without a typmod holds any scale: widest type
        types = typed("BIGNUMERIC")
    else:
        types = typed(bigquery, precision=precision, scale=scale)
    if oid == UUID_OID:
        types["logicalTypeOptions"] = {"format": "uuid"}
    elif length and bigquery == "STRING":
        types["logicalTypeOptions"] = {"maxLength": int(length)}
    return types


def _primary_key(cursor: Any, schema: str, table: str) -> list[str]:
    """The primary key, else the first unique index without a predicate: what replication identifies rows by."""
    cursor.execute(_KEY_SQL, (schema, table))
    rows = cursor.fetchall()
    if not rows:
        return []
    first = rows[0][2]  # the primary key's index when there is one (rows are ordered by it first)
    return [name for name, _primary, index in rows if index == first]


def from_postgres(conn: Any, schema: str, table: str, *, product: str | None = None) -> dict[str, Any]:
    """A contract from a PostgreSQL table: columns, types (by OID, as the relay converts values), NOT NULL
    as required, comments as descriptions, enum labels as valid values, the primary key."""
    with conn.cursor() as cursor:
        cursor.execute(_COLUMNS_SQL, (schema, table))
        rows = cursor.fetchall()
        if not rows:
            raise ContractError(
                f"no table {schema}.{table} in the PostgreSQL database (or it has no columns)",
                hint="Check the schema and table names (`<schema>.<table>`) and that the role may read them.",
            )
        key = _primary_key(cursor, schema, table)
        enums: dict[int, list[str]] = {}
        for _name, _nn, _len, _prec, _scale, oid, typtype, _doc in rows:
            if typtype == "e" and oid not in enums:
                cursor.execute("SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder", (oid,))
                enums[oid] = [label for (label,) in cursor.fetchall()]
        cursor.execute("SELECT obj_description(format('%%I.%%I', %s, %s)::regclass, 'pg_class')", (schema, table))
        table_comment = cursor.fetchone()[0]
    if not key:
        raise ContractError(
            f"PostgreSQL table {schema}.{table} has no primary key or unique index",
            hint="The pipeline orders and merges changes by key: add a primary key to the table, then import again.",
        )
    properties = []
    for name, not_null, length, precision, scale, oid, typtype, comment in rows:
        prop = column(
            re.sub(r"[^a-z0-9_]", "_", str(name).lower()),
            _postgres_types(int(oid), str(typtype), length, precision, scale),
            required=bool(not_null) or name in key,
            description=comment,
            source_field=str(name),
        )
        if name in key:
            prop.update(primaryKey=True, primaryKeyPosition=key.index(name) + 1)
            if len(key) == 1:
                prop["unique"] = True
        if oid in enums:
            prop["quality"] = [valid_values_rule(prop["name"], enums[oid])]
        properties.append(prop)
    info = conn.get_dsn_parameters()
    ref = product_ref(product, schema if schema != "public" else info.get("dbname", schema), table)
    source = {
        "server": "app-postgres",
        "type": "postgres",
        "environment": "dev",
        "description": f"The {table} table in PostgreSQL, read by logical replication (docs/postgres.md).",
        "host": info.get("host") or "localhost",
        "port": int(info.get("port") or 5432),
        "database": info.get("dbname") or "postgres",
        "schema": schema,
        "customProperties": [
            {"property": "sourceKind", "value": "postgres"},
            {"property": "table", "value": table},
        ],
    }
    return contract_document(
        ref,
        table=None,
        description=table_comment or f"One row per row of the PostgreSQL table {schema}.{table}.",
        table_description=table_comment,
        properties=properties,
        servers=[source, lake_server(*ref)],
        imported_from=f"PostgreSQL table {schema}.{table}",
    )


# ---- Avro --------------------------------------------------------------------------------------------


def from_avro(schema: str | Mapping[str, Any], *, product: str | None = None) -> dict[str, Any]:
    """A contract from an Avro record schema (JSON text or parsed): optional fields are unions with null;
    logical types decimal, timestamp-micros, local-timestamp-micros, date, time-micros and uuid."""
    try:
        parsed = json.loads(schema) if isinstance(schema, str) else schema
    except json.JSONDecodeError as exc:
        raise ContractError(
            f"the Avro schema is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="Pass an .avsc file (Avro's JSON schema), not a binary Avro file.",
        ) from None
    if not isinstance(parsed, Mapping) or parsed.get("type") != "record":
        raise ContractError(
            "the Avro schema is not a record",
            hint="A contract describes a table: import an Avro schema of `type: record` with `fields`.",
        )
    reader = AvroSchemaReader()
    name, namespace = str(parsed.get("name", "imported")), str(parsed.get("namespace") or "")
    properties = reader.properties(parsed, "", nested=False)
    ref = product_ref(product, namespace.rsplit(".", 1)[-1] or name, name)
    full_name = f"{namespace}.{name}" if namespace else name
    return contract_document(
        ref,
        table=re.sub(r"[^A-Za-z0-9_]", "_", name),
        description=str(
            parsed.get("doc") or f"Records of the Avro schema {namespace + '.' if namespace else ''}{name}."
        ),
        table_description=parsed.get("doc"),
        properties=properties,
        servers=[lake_server(*ref)],
        imported_from=f"the Avro schema {full_name}",
    )
