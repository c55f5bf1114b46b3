"""Avro schemas derived from a contract: the product's table record and the change envelope on the bus.

The Avro type of a column is the BigQuery decision of `meshkit.contracts.types.column_type` seen
through `AVRO_OF_BIGQUERY` (as Arrow is through `ARROW_OF_BIGQUERY`), so a NUMERIC(18,2) column is a
decimal(18,2) in BigQuery, Arrow and Avro alike and no second mapping exists. Two records per contract:

- the *table record* (`avro_schema`): every column under its contract name, nullable exactly when the
  column is optional. It is the product's consumer-facing shape and what `meshkit diff` checks for
  compatibility.
- the *value record* (`value_schema`): what a producer writes on the bus: the source columns (derived
  ones are the domain transform's output) under their source field names, so a decoded event is the
  same document the JSON path carries. Only key columns are non-null: a delete image carries the key
  alone (Debezium `before` with REPLICA IDENTITY DEFAULT), an unchanged TOASTed value is absent from a
  PostgreSQL update, and `required` stays a per-event rule that the pipeline dead-letters with its
  reason instead of the producer refusing the event.

Valid values are plain strings, not Avro enums: an enum symbol must be an Avro name (`1`, `A-B` or
`pix key` are not), adding a symbol breaks every reader that lacks it (forward compatibility), and the
pipeline already checks the contract's valid values per event with a precise dead-letter reason. They
are kept in the field as the attribute `validValues` for readers and code generators.

`envelope_schema` wraps the value record in what the bus carries for the product's source kind
(Cosmos DB latest version, Cosmos DB all versions and deletes, Debezium); see docs/avro.md.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from meshkit.contracts.model import Column, Contract, custom_properties
from meshkit.contracts.types import BigQueryType, column_type, physical_base
from meshkit.errors import ContractError

EnvelopeKind = Literal["cosmos-latest", "cosmos-all-versions", "debezium"]
ENVELOPE_KINDS: tuple[EnvelopeKind, ...] = ("cosmos-latest", "cosmos-all-versions", "debezium")
JSON_ATTRIBUTE = "meshkit.json"  # a string field holding canonical JSON text (an object without declared properties)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# BigQuery type -> Avro type (precision and scale for decimals): the Avro half of the one mapping.
AVRO_OF_BIGQUERY: dict[str, Any] = {
    "STRING": "string",
    "BYTES": "bytes",
    "INT64": "long",
    "FLOAT64": "double",
    "BOOL": "boolean",
    "NUMERIC": {"type": "bytes", "logicalType": "decimal"},
    "BIGNUMERIC": {"type": "bytes", "logicalType": "decimal"},
    "DATE": {"type": "int", "logicalType": "date"},
    "TIMESTAMP": {"type": "long", "logicalType": "timestamp-micros"},  # an instant (UTC)
    "DATETIME": {"type": "long", "logicalType": "local-timestamp-micros"},  # a wall-clock time, no zone
    "TIME": {"type": "long", "logicalType": "time-micros"},
    "JSON": {"type": "string", JSON_ATTRIBUTE: True},
}


def avro_name(text: str) -> str:
    """`customer-exposure` -> `customer_exposure`: a valid Avro name part."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "_"
    return f"_{name}" if name[0].isdigit() else name


def namespace_of(contract: Contract) -> str:
    """`meshkit.<domain>`: the namespace of a product's table record."""
    return f"meshkit.{avro_name(contract.domain or 'default')}"


def _is_uuid(column: Column) -> bool:
    fmt = str(column.options.get("format") or "").lower()
    return column.logical_type == "string" and (
        fmt == "uuid" or (column.physical_type is not None and physical_base(column.physical_type) == "UUID")
    )


def _avro_of(bq: BigQueryType, column: Column, scope: str, *, wire: bool) -> Any:
    if bq.repeated:
        return {"type": "array", "items": _avro_of(bq.element(), column.items or column, scope, wire=wire)}
    if bq.name == "RECORD":
        return _record(column.name, scope, column.fields, wire=wire, nested=True)
    if bq.name == "STRING" and _is_uuid(column):
        return {"type": "string", "logicalType": "uuid"}
    if wire and bq.name == "BYTES":  # on the bus, binary travels in the document's own text form (hex, base64)
        return "string"
    avro = AVRO_OF_BIGQUERY[bq.name]
    if isinstance(avro, dict) and avro.get("logicalType") == "decimal":
        return {**avro, "precision": bq.precision, "scale": bq.scale or 0}
    return dict(avro) if isinstance(avro, dict) else avro


def _field_name(column: Column, *, wire: bool) -> str:
    name = column.source_field if wire else column.name
    if not _NAME.match(name):
        what = "source field" if wire else "column name"
        raise ContractError(
            f"{what} {name!r} of column `{column.name}` is not a valid Avro field name",
            hint="Avro names match [A-Za-z_][A-Za-z0-9_]*; rename it or set `sourceField` to such a name.",
        )
    return name


def _field(column: Column, scope: str, *, wire: bool, nested: bool) -> dict[str, Any]:
    avro = _avro_of(column_type(column), column, scope, wire=wire)
    if column.valid_values is not None and avro == "string":
        avro = {"type": "string", "validValues": [str(v) for v in column.valid_values]}
    elif column.valid_values is not None and isinstance(avro, dict) and avro["type"] == "string":
        avro = {**avro, "validValues": [str(v) for v in column.valid_values]}
    field: dict[str, Any] = {"name": _field_name(column, wire=wire and not nested), "type": avro}
    if column.description or column.business_name:
        field["doc"] = column.description or column.business_name
    nullable = not column.primary_key if wire and not nested else not column.required
    if nullable:
        field["type"] = ["null", avro]
        field["default"] = None
    return field


def _record(name: str, scope: str, columns: tuple[Column, ...], *, wire: bool, nested: bool) -> dict[str, Any]:
    full = f"{scope}_{avro_name(name)}" if nested else avro_name(name)
    return {
        "type": "record",
        "name": full,
        "fields": [_field(c, full, wire=wire, nested=nested) for c in columns],
    }


def avro_schema(contract: Contract) -> dict[str, Any]:
    """The table record: every column under its contract name; optional columns are `["null", T]`."""
    record = _record(contract.table_name, "", contract.columns, wire=False, nested=False)
    doc = contract.table.description
    return {
        **record,
        "namespace": namespace_of(contract),
        **({"doc": doc} if doc else {}),
        "meshkit.contract": contract.id,
        "meshkit.version": contract.version,
    }


def value_schema(contract: Contract) -> dict[str, Any]:
    """The value record on the bus, non-key columns nullable: a document source's fields under their
    source field names (`sourceField`); a relational source's row under the contract's column names."""
    record = _record("Value", "", contract.source_columns, wire=True, nested=False)
    if envelope_kind(contract) == "debezium":
        names = {c.source_field: c.name for c in contract.source_columns}
        record["fields"] = [{**f, "name": names.get(f["name"], f["name"])} for f in record["fields"]]
    return {**record, "namespace": envelope_namespace(contract)}


def envelope_namespace(contract: Contract) -> str:
    """`meshkit.<domain>.<table>`: the namespace of a product's bus schemas."""
    return f"{namespace_of(contract)}.{avro_name(contract.table_name)}"


def envelope_kind(contract: Contract) -> EnvelopeKind:
    """What the product's source publishes: Cosmos DB in its change-feed mode, else Debezium (relational CDC)."""
    source = contract.source
    if source is None or source.kind.lower() in {"cosmosdb", "cosmos"}:
        mode = source.change_feed_mode if source else "latestVersion"
        return "cosmos-all-versions" if mode == "allVersionsAndDeletes" else "cosmos-latest"
    return "debezium"


def _optional(avro: Any) -> dict[str, Any]:
    return {"type": ["null", avro], "default": None}


def envelope_schema(contract: Contract, kind: EnvelopeKind | None = None) -> dict[str, Any]:
    """The change event the bus carries for the product (`kind` defaults to the contract's source)."""
    kind = kind or envelope_kind(contract)
    value = value_schema(contract)
    ns = envelope_namespace(contract)
    if kind == "cosmos-latest":  # the document itself plus the system properties the pipeline reads
        system = [
            {"name": "_lsn", "type": "long", "doc": "Logical sequence number of this version."},
            {"name": "_ts", "type": "long", "doc": "Last modification, epoch seconds."},
            {"name": "_etag", **_optional("string")},
            {"name": "_rid", **_optional("string")},
        ]
        return {**value, "name": "Document", "fields": [*value["fields"], *system]}
    if kind == "cosmos-all-versions":
        metadata = {
            "type": "record",
            "name": "Metadata",
            "fields": [
                {"name": "operationType", "type": "string", "doc": "create | replace | delete"},
                {"name": "lsn", "type": "long"},
                {"name": "crts", "type": "long", "doc": "Conflict-resolution time stamp, epoch seconds."},
                {"name": "previousImageLSN", **_optional("long")},
                {"name": "id", **_optional("string"), "doc": "The deleted document's id (deletes only)."},
                {
                    "name": "partitionKey",
                    **_optional({"type": "map", "values": ["null", "boolean", "long", "double", "string"]}),
                },
                {"name": "timeToLiveExpired", **_optional("boolean")},
            ],
        }
        fields = [
            {"name": "current", **_optional(value), "doc": "The new version; null for a delete."},
            {"name": "previous", **_optional(f"{ns}.Value")},
            {"name": "metadata", "type": metadata},
        ]
        return {"type": "record", "name": "Change", "namespace": ns, "fields": fields}
    if kind == "debezium":
        source = {
            "type": "record",
            "name": "Source",
            "fields": [
                {"name": "lsn", "type": "long", "doc": "Log sequence number of the change (PostgreSQL WAL position)."},
                {"name": "ts_ms", "type": "long", "doc": "Commit time, epoch milliseconds."},
                {"name": "version", **_optional("string")},
                {"name": "connector", **_optional("string")},
                {"name": "name", **_optional("string")},
                {"name": "db", **_optional("string")},
                {"name": "schema", **_optional("string")},
                {"name": "table", **_optional("string")},
                {"name": "txId", **_optional("long")},
                {"name": "snapshot", **_optional("string")},
            ],
        }
        fields = [
            {"name": "before", **_optional(value)},
            {"name": "after", **_optional(f"{ns}.Value")},
            {"name": "op", "type": "string", "doc": "c | u | d | r (snapshot read) | t (truncate)"},
            {"name": "source", "type": source},
            {"name": "ts_ms", **_optional("long")},
        ]
        return {"type": "record", "name": "Envelope", "namespace": ns, "fields": fields}
    raise ContractError(f"unknown envelope kind {kind!r}", hint=f"Valid values are: {', '.join(ENVELOPE_KINDS)}.")


CompatibilityMode = Literal["backward", "forward", "full", "none"]
COMPATIBILITY_MODES: tuple[CompatibilityMode, ...] = ("backward", "forward", "full", "none")


def compatibility_mode(contract: Contract) -> CompatibilityMode:
    """The contract's `schemaCompatibility` custom property (default backward, as Confluent's)."""
    value = str(custom_properties(contract.odcs.customProperties).get("schemaCompatibility") or "backward")
    mode = value.strip().lower()
    if mode not in COMPATIBILITY_MODES:
        raise ContractError(
            f"schemaCompatibility {value!r} is not a compatibility mode",
            location=contract.document.location("customProperties"),
            hint=f"Valid values are: {', '.join(COMPATIBILITY_MODES)}.",
        )
    return mode
