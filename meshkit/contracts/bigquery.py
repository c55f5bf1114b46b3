"""A contract as BigQuery tables: schema (REST `TableFieldSchema` JSON), partitioning, clustering, DDL.

Pure functions of the contract (no Google import): the BigQuery sink, `meshkit schema`, the docs and the
evolution check all read these. Types come from the one mapping in `meshkit.contracts.types`.

Three kinds of table per product:

- `contract`: the product's table as the contract declares it (contract types, REQUIRED as declared);
- `changelog` (`<table>_changelog`): every change once per (key, LSN) as the pipeline writes it: masked
  columns (hash, partial) are STRING, every non-key column is NULLABLE (a delete carries its key only),
  then the pipeline's columns (`_key`, `_lsn`, `_op`, ...). Partitioned by ingestion date
  (`_ingested_at`, DAY), clustered by `_key`, `_lsn`: replays and per-key history read few blocks;
- `current` (`<table>_current`): one row per live key, kept by MERGE on `_key`: masked columns STRING,
  REQUIRED as declared (redacted columns NULLABLE). Partitioned by the contract's partition column when
  it declares one (a MERGE rewrites rows in place, so ingestion time would say nothing), clustered by
  `_key` then the declared clustering (or the primary key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from meshkit.contracts.model import PERSONAL_CLASSIFICATIONS, Column, Contract
from meshkit.contracts.types import BigQueryType, column_type
from meshkit.errors import ContractError

if TYPE_CHECKING:
    import pyarrow as pa

TableKind = Literal["contract", "changelog", "current"]
TABLE_KINDS: tuple[str, ...] = ("contract", "changelog", "current")

# The columns the pipeline adds (pipelines/events.py META_FIELDS, then pipelines/sinks/stages.py):
# name -> (BigQuery type, mode, description). tests/unit/test_bigquery_schema.py checks they agree.
PIPELINE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "_key": ("STRING", "REQUIRED", "Primary key of the row as one string (masked when a key column is)."),
    "_lsn": ("INT64", "REQUIRED", "Source log sequence number of the change: orders the changes of a key."),
    "_op": ("STRING", "REQUIRED", "create, update, delete or upsert."),
    "_source_ts": ("TIMESTAMP", "NULLABLE", "When the change happened in the source."),
    "_partition": ("INT64", "REQUIRED", "Event bus partition the change was read from."),
    "_offset": ("INT64", "REQUIRED", "Offset of the change in its bus partition."),
    "_ingested_at": ("TIMESTAMP", "REQUIRED", "When the pipeline wrote the change."),
    "_run_id": ("STRING", "REQUIRED", "The pipeline run that wrote the change."),
}
CHANGELOG_META = ("_key", "_lsn", "_op", "_source_ts", "_partition", "_offset", "_ingested_at", "_run_id")
CURRENT_META = ("_key", "_lsn", "_source_ts", "_ingested_at")  # what the MERGE keeps (see warehouse.py)

PARTITION_TYPES = frozenset({"DATE", "TIMESTAMP", "DATETIME"})
CLUSTER_TYPES = frozenset({"STRING", "INT64", "NUMERIC", "BIGNUMERIC", "BOOL", "DATE", "DATETIME", "TIMESTAMP"})
MAX_CLUSTER_COLUMNS = 4
_MASK_NOTES = {"hash": "masked: HMAC-SHA256 hex digest", "partial": "masked: partial", "redact": "redacted: null"}


@dataclass(frozen=True)
class TableOptions:
    """Partitioning and clustering of one table. `partition_field` None with `partition_type` set means
    ingestion-time partitioning (`_PARTITIONTIME`); both None: not partitioned."""

    table: str
    partition_field: str | None
    partition_type: str | None
    clustering: tuple[str, ...]
    description: str

    def to_api(self) -> dict[str, Any]:
        """`timePartitioning` and `clustering` of the REST `Table` resource."""
        out: dict[str, Any] = {}
        if self.partition_type:
            out["timePartitioning"] = {"type": self.partition_type}
            if self.partition_field:
                out["timePartitioning"]["field"] = self.partition_field
        if self.clustering:
            out["clustering"] = {"fields": list(self.clustering)}
        return out


def table_id(contract: Contract, kind: TableKind) -> str:
    return contract.table_name if kind == "contract" else f"{contract.table_name}_{kind}"


def policy_tag(column: Column) -> str | None:
    """The policy tag a column carries: its classification when that is one of the personal-data
    classifications (confidential, restricted, pii, sensitive), else `pii` when the column holds
    personal data (customProperty `personalData`), else none."""
    if column.classification in PERSONAL_CLASSIFICATIONS:
        return column.classification
    return "pii" if column.personal else None


def stored_type(column: Column, kind: TableKind) -> BigQueryType:
    """The column's type in a table of `kind`: hashed and partially masked columns hold text outside
    the contract table (pipelines/transforms/mask.py MaskingPlan makes the same decision)."""
    if kind != "contract" and column.masking in ("hash", "partial"):
        return BigQueryType("STRING")
    return column_type(column)


def _mode(column: Column, kind: TableKind, bq: BigQueryType) -> str:
    if bq.repeated:
        return "REPEATED"
    if column.primary_key:
        return "REQUIRED"
    if kind == "changelog" or (kind == "current" and column.masking == "redact"):
        return "NULLABLE"
    return "REQUIRED" if column.required else "NULLABLE"


def _description(column: Column, kind: TableKind) -> str:
    text = column.description or column.business_name or ""
    note = _MASK_NOTES.get(column.masking) if kind != "contract" else None
    return f"{text} ({note})" if text and note else note or text


def _field(column: Column, kind: TableKind, taxonomy: str | None, bq: BigQueryType) -> dict[str, Any]:
    field: dict[str, Any] = {"name": column.name, "type": bq.name, "mode": _mode(column, kind, bq)}
    description = _description(column, kind)
    if description:
        field["description"] = description
    if bq.precision is not None:
        field["precision"] = str(bq.precision)  # the REST API spells int64 values as strings
        field["scale"] = str(bq.scale or 0)
    nested = column.items.fields if column.items is not None else column.fields
    if bq.name == "RECORD":
        # nested fields keep their declared modes: a record is written whole, deletes carry none
        field["fields"] = [_field(c, "contract", taxonomy, column_type(c)) for c in nested]
    tag = policy_tag(column)
    if tag and taxonomy and bq.name != "RECORD":  # BigQuery tags leaf fields, never a RECORD itself
        field["policyTags"] = {"names": [f"{taxonomy}/policyTags/{tag}"]}
    return field


def _meta_field(name: str) -> dict[str, Any]:
    bq_type, mode, description = PIPELINE_COLUMNS[name]
    return {"name": name, "type": bq_type, "mode": mode, "description": description}


def bigquery_schema(
    contract: Contract, *, policy_taxonomy: str | None, kind: TableKind = "contract"
) -> list[dict[str, Any]]:
    """The table's schema as BigQuery REST `TableFieldSchema` dicts (`SchemaField.from_api_repr` reads
    them). `policy_taxonomy` (settings `policy_tag_taxonomy`, `projects/<p>/locations/<l>/taxonomies/<id>`)
    None leaves out policy tags: callers that need column-level security must pass it."""
    fields = [_field(c, kind, policy_taxonomy, stored_type(c, kind)) for c in contract.columns]
    meta = {"contract": (), "changelog": CHANGELOG_META, "current": CURRENT_META}[kind]
    return fields + [_meta_field(name) for name in meta]


def _field_types(contract: Contract, kind: TableKind) -> dict[str, str]:
    return {
        f["name"]: str((f["mode"] == "REPEATED" and "REPEATED") or f["type"])
        for f in bigquery_schema(contract, policy_taxonomy=None, kind=kind)
    }


def _declared_partitioning(contract: Contract, kind: TableKind) -> list[Column]:
    declared = sorted(
        (c for c in contract.columns if c.partitioned), key=lambda c: (c.partition_key_position or 99, c.index)
    )
    types = _field_types(contract, kind)
    for column in declared[:1]:
        if types[column.name] not in PARTITION_TYPES:
            raise ContractError(
                f"column `{column.name}` is partitioned but BigQuery partitions by DAY only on DATE, TIMESTAMP "
                f"or DATETIME columns; in the {kind} table it is {types[column.name]}",
                location=contract.document.location(f"{column.field_path}.partitioned"),
                hint="Partition by a date or timestamp column that is not masked, or remove `partitioned`.",
            )
    return declared


def _clusterable(contract: Contract, kind: TableKind, names: list[str], *, declared: bool) -> list[str]:
    types = _field_types(contract, kind)
    out = []
    for name in names:
        if types.get(name) in CLUSTER_TYPES:
            out.append(name)
        elif declared:
            column = contract.column(name)
            raise ContractError(
                f"column `{name}` cannot cluster a BigQuery table: it is {types.get(name)} in the {kind} table "
                f"(valid: {', '.join(sorted(CLUSTER_TYPES))}, top level, not repeated)",
                location=contract.document.location(f"{column.field_path}.customProperties"),
                hint="Remove its `clusterKeyPosition` or cluster by another column.",
            )
    return list(dict.fromkeys(out))


def table_options(contract: Contract, kind: TableKind = "contract") -> TableOptions:
    """Partitioning and clustering (rules in the module docstring). Declared: ODCS `partitioned` +
    `partitionKeyPosition` (the first is the DAY partition column, the others lead the clustering) and
    customProperty `clusterKeyPosition`; clustering falls back to the primary key; at most 4 columns."""
    description = contract.table.description or contract.table.businessName or ""
    partitions = _declared_partitioning(contract, kind)
    declared = [
        c.name
        for c in sorted(
            (c for c in contract.columns if c.cluster_key_position),
            key=lambda c: (c.cluster_key_position or 0, c.index),
        )
    ]
    extra = [c.name for c in partitions[1:]]
    if kind == "changelog":
        return TableOptions(table_id(contract, kind), "_ingested_at", "DAY", ("_key", "_lsn"), description)
    wanted = [*extra, *(declared or contract.primary_key)]
    clustering = _clusterable(contract, kind, wanted, declared=bool(declared))
    if kind == "current":
        clustering = ["_key", *clustering]
    field = partitions[0].name if partitions else None
    partition_type = "DAY" if field or kind == "contract" else None
    return TableOptions(
        table_id(contract, kind), field, partition_type, tuple(clustering[:MAX_CLUSTER_COLUMNS]), description
    )


def _sql_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a valid GoogleSQL double-quoted literal


def _ddl_column(field: dict[str, Any], indent: str) -> str:
    bq = field_type(field)
    not_null = " NOT NULL" if field.get("mode") == "REQUIRED" else ""
    options = f" OPTIONS(description={_sql_string(field['description'])})" if field.get("description") else ""
    return f"{indent}`{field['name']}` {bq.sql}{not_null}{options}"


def field_type(field: Mapping[str, Any]) -> BigQueryType:
    """A REST `TableFieldSchema` dict (or `SchemaField.to_api_repr()`) back as a `BigQueryType`."""
    name = str(field.get("type", "STRING")).upper()
    name = {
        "STRUCT": "RECORD",
        "INTEGER": "INT64",
        "FLOAT": "FLOAT64",
        "BOOLEAN": "BOOL",
        "DECIMAL": "NUMERIC",
        "BIGDECIMAL": "BIGNUMERIC",
    }.get(name, name)
    precision = field.get("precision")
    scale = field.get("scale")
    if name in ("NUMERIC", "BIGNUMERIC") and precision is None:
        precision, scale = (38, 9) if name == "NUMERIC" else (76, 38)
    nested = tuple((str(f["name"]), field_type(f), f.get("mode") == "REQUIRED") for f in field.get("fields") or ())
    return BigQueryType(
        name,
        int(precision) if precision is not None else None,
        int(scale or 0) if precision is not None else None,
        nested,
        repeated=str(field.get("mode", "")).upper() == "REPEATED",
    )


def bigquery_ddl(contract: Contract, dataset: str, kind: TableKind = "contract") -> str:
    """`CREATE TABLE` for docs and export. Policy tags cannot be set in DDL: apply the schema JSON."""
    options = table_options(contract, kind)
    columns = ",\n".join(_ddl_column(f, "  ") for f in bigquery_schema(contract, policy_taxonomy=None, kind=kind))
    lines = [f"CREATE TABLE IF NOT EXISTS `{dataset}.{options.table}` (", columns, ")"]
    if options.partition_field:
        typed = _field_types(contract, kind)[options.partition_field]
        expr = f"`{options.partition_field}`" if typed == "DATE" else f"DATE(`{options.partition_field}`)"
        lines.append(f"PARTITION BY {expr}")
    elif options.partition_type:
        lines.append("PARTITION BY _PARTITIONDATE")
    if options.clustering:
        lines.append("CLUSTER BY " + ", ".join(f"`{c}`" for c in options.clustering))
    if options.description:
        lines.append(f"OPTIONS(description={_sql_string(options.description)})")
    return "\n".join(lines) + ";\n"


def arrow_schema(contract: Contract, kind: TableKind = "contract") -> pa.Schema:
    """The Arrow schema of a table of `kind` (curated Parquet, DuckDB), from the same fields."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(f["name"], field_type(f).arrow(), nullable=f.get("mode") != "REQUIRED")
            for f in bigquery_schema(contract, policy_taxonomy=None, kind=kind)
        ]
    )
