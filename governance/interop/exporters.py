"""A contract as other tools read it: JSON Schema, Avro, BigQuery DDL and dbt sources.

Pure functions of the contract. Avro and DDL delegate to `meshkit.contracts.avro` and
`meshkit.contracts.bigquery` (one mapping per target); JSON Schema and dbt are written here from the
same `Column` model, the dbt column types from the BigQuery schema of the pipeline's tables.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from open_data_contract_standard.model import SchemaProperty

from meshkit.contracts.avro import avro_schema
from meshkit.contracts.bigquery import TableKind, bigquery_ddl, bigquery_schema, field_type, table_id
from meshkit.contracts.model import Column, Contract
from meshkit.contracts.types import column_type
from meshkit.errors import ContractError

JsonShape = Literal["document", "row"]
JSON_SHAPES: tuple[JsonShape, ...] = ("document", "row")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# ODCS logicalTypeOptions that mean the same in JSON Schema
_STRING_OPTIONS = ("minLength", "maxLength", "pattern")
_NUMBER_OPTIONS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_ARRAY_OPTIONS = ("minItems", "maxItems", "uniqueItems")
_NAIVE_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_TIME = r"^\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_DBT_KINDS: tuple[TableKind, ...] = ("current", "changelog")


# ---- JSON Schema -------------------------------------------------------------------------------------


def _json_type(column: Column) -> dict[str, Any]:
    """The JSON Schema of one column's non-null value."""
    bq = column_type(column)
    options = column.options
    if bq.repeated and column.items is not None:
        out: dict[str, Any] = {"type": "array", "items": _json_type(column.items)}
        out |= {k: options[k] for k in _ARRAY_OPTIONS if k in options}
        return out
    if bq.name == "RECORD":
        return _object(column.fields, names=lambda c: c.name, closed=False)
    if bq.name == "JSON":
        return {"type": ["object", "array"]} if column.logical_type in ("object", "array") else {}
    simple: dict[str, dict[str, Any]] = {
        "INT64": {"type": "integer"},
        "FLOAT64": {"type": "number"},
        "NUMERIC": {"type": "number"},
        "BIGNUMERIC": {"type": "number"},
        "BOOL": {"type": "boolean"},
        "DATE": {"type": "string", "format": "date"},
        "TIMESTAMP": {"type": "string", "format": "date-time"},
        "DATETIME": {"type": "string", "pattern": _NAIVE_DATETIME},
        "TIME": {"type": "string", "pattern": _TIME},
        "BYTES": {"type": "string", "contentEncoding": "base64"},
        "STRING": {"type": "string"},
    }
    out = dict(simple[bq.name])
    if out["type"] == "string" and bq.name == "STRING":
        fmt = options.get("format")
        if fmt:
            out["format"] = str(fmt)
        out |= {k: options[k] for k in _STRING_OPTIONS if k in options}
    if out["type"] in ("integer", "number"):
        out |= {k: options[k] for k in _NUMBER_OPTIONS if k in options}
    if column.valid_values is not None:
        out["enum"] = list(column.valid_values)
    return out


def _property(column: Column) -> dict[str, Any]:
    schema = _json_type(column)
    if column.description or column.business_name:
        schema = {"description": column.description or column.business_name, **schema}
    if column.required:
        return schema
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    elif isinstance(schema.get("type"), list):
        schema["type"] = [*schema["type"], "null"]
    return schema


def _object(columns: tuple[Column, ...], *, names: Any, closed: bool) -> dict[str, Any]:
    properties = {names(c): _property(c) for c in columns}
    required = [names(c) for c in columns if c.required]
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = not closed
    return out


def to_json_schema(contract: Contract, shape: JsonShape = "document") -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the product's records. `document`: what the source writes (source
    field names, derived columns left out, other fields such as Cosmos DB system properties allowed);
    `row`: a row of the product's table (column names, every column, nothing else)."""
    if shape not in JSON_SHAPES:
        raise ContractError(f"unknown JSON Schema shape {shape!r}", hint=f"Valid values are: {', '.join(JSON_SHAPES)}.")
    document = shape == "document"
    columns = contract.source_columns if document else contract.columns
    body = _object(columns, names=(lambda c: c.source_field) if document else (lambda c: c.name), closed=not document)
    what = "source document" if document else "row"
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{contract.id}:{shape}",
        "title": f"{contract.table_name} ({what})",
        "description": contract.table.description or contract.name,
        "$comment": f"Generated by meshkit from contract {contract.id} version {contract.version}.",
        **body,
    }


# ---- Avro and BigQuery DDL -------------------------------------------------------------------------------


def to_avro(contract: Contract) -> dict[str, Any]:
    """The product's table record (`meshkit.contracts.avro.avro_schema`)."""
    return avro_schema(contract)


def lake_dataset(contract: Contract) -> tuple[str | None, str]:
    """(project, dataset) of the contract's BigQuery server; the domain as dataset when there is none."""
    lake = contract.server("bigquery")
    if lake is not None and lake.dataset:
        return lake.project, lake.dataset
    return None, contract.domain.replace("-", "_")


def to_bigquery_ddl(contract: Contract, dataset: str | None = None, kind: TableKind = "contract") -> str:
    """`CREATE TABLE` (`meshkit.contracts.bigquery.bigquery_ddl`) in `dataset` (default: the lake server's)."""
    if dataset is None:
        project, name = lake_dataset(contract)
        dataset = f"{project}.{name}" if project else name
    return bigquery_ddl(contract, dataset, kind)


# ---- dbt sources -------------------------------------------------------------------------------------


def _owner(contract: Contract) -> str | None:
    team = contract.odcs.team
    members = getattr(team, "members", None) or []
    return next((m.username for m in members if (m.role or "").lower() == "owner" and m.username), None)


def _freshness(contract: Contract) -> dict[str, Any] | None:
    """dbt freshness from the latency SLA: warn at half of it, error when it is broken."""
    from monitoring.slo.derive import duration_seconds

    latency = contract.sla.get("latency")
    if latency is None:
        return None
    try:
        seconds = duration_seconds(latency.value, latency.unit)
    except ValueError:  # the validator reports an unusable SLA; dbt just gets no freshness block
        return None
    minutes = max(1, math.ceil(seconds / 60))
    return {
        "warn_after": {"count": max(1, minutes // 2), "period": "minute"},
        "error_after": {"count": minutes, "period": "minute"},
    }


def _column_meta(column: Column) -> dict[str, Any]:
    meta: dict[str, Any] = {"classification": column.classification or "unclassified"}
    if column.personal:
        meta |= {"personal_data": True, "masking": column.masking}
    return meta


def _tests(
    column: Column | None, field: dict[str, Any], prop: SchemaProperty | None, kind: TableKind, *, sole_key: bool
) -> list[Any]:
    tests: list[Any] = []
    if field.get("mode") == "REQUIRED":
        tests.append("not_null")
    if column is None:  # a pipeline column
        if kind == "current" and field["name"] == "_key":
            tests.append("unique")
        return tests
    keeps_values = column.masking in ("none", "hash")  # an HMAC keeps distinct values distinct
    unique = bool(prop and prop.unique) or (column.primary_key and sole_key)
    if kind == "current" and keeps_values and unique:
        tests.append("unique")
    if column.valid_values is not None and column.masking == "none":
        tests.append({"accepted_values": {"values": list(column.valid_values)}})
    return tests


def _dbt_table(contract: Contract, kind: TableKind, freshness: dict[str, Any] | None) -> dict[str, Any]:
    columns = {c.name: c for c in contract.columns}
    props = {p.name: p for p in contract.table.properties or ()}
    sole_key = len(contract.primary_key) == 1
    out_columns = []
    for field in bigquery_schema(contract, policy_taxonomy=None, kind=kind):
        column = columns.get(field["name"])
        prop = props.get(field["name"]) if column is not None else None
        entry: dict[str, Any] = {"name": field["name"], "data_type": field_type(field).sql}
        if field.get("description"):
            entry["description"] = field["description"]
        if column is not None:
            entry["meta"] = _column_meta(column)
        tests = _tests(column, field, prop, kind, sole_key=sole_key)
        if tests:
            entry["tests"] = tests
        out_columns.append(entry)
    what = "current state, one row per key" if kind == "current" else "every change, one row per key and LSN"
    table: dict[str, Any] = {
        "name": table_id(contract, kind),
        "description": f"{(contract.table.description or contract.name).rstrip('.')} ({what}).",
    }
    if freshness:
        table |= {"loaded_at_field": "_ingested_at", "freshness": freshness}
    return {**table, "columns": out_columns}


def to_dbt_sources(contract: Contract) -> dict[str, Any]:
    """dbt `sources.yml`: the product's current-state and changelog tables in its BigQuery dataset, with
    column types, descriptions, tests (not_null, unique, accepted_values), freshness from the latency SLA."""
    project, dataset = lake_dataset(contract)
    freshness = _freshness(contract)
    meta: dict[str, Any] = {"contract_id": contract.id, "contract_version": contract.version}
    meta |= {"domain": contract.domain, "data_product": contract.odcs.dataProduct or contract.name}
    owner = _owner(contract)
    if owner:
        meta["owner"] = owner
    source: dict[str, Any] = {"name": dataset}
    if project:
        source["database"] = project
    source["schema"] = dataset
    purpose = contract.odcs.description.purpose if contract.odcs.description else None
    if purpose:
        source["description"] = purpose.strip()
    source |= {"meta": meta, "tables": [_dbt_table(contract, kind, freshness) for kind in _DBT_KINDS]}
    return {"version": 2, "sources": [source]}
