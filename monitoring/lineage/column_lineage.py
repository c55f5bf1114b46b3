"""The ColumnLineageDatasetFacet of each output: which input fields every column is computed from, and how.

Pure functions of the contract (`sourceField`, masking, `transformSourceObjects`, `transformDescription`)
and the run's input datasets; a transform's code (`transformLogic`) never reaches an event.
"""

from __future__ import annotations

from collections.abc import Mapping

from openlineage.client.facet_v2 import column_lineage_dataset

from meshkit.contracts.model import Contract
from monitoring.lineage.facets import PRODUCER
from monitoring.lineage.naming import DatasetName

MASKING_DESCRIPTIONS = {"hash": "HASHED (HMAC-SHA256)", "partial": "MASKED (partial)", "redact": "REDACTED"}
Transformation = column_lineage_dataset.Transformation


def _transformation(subtype: str, description: str | None = None, masking: bool = False) -> Transformation:
    return Transformation(type="DIRECT", subtype=subtype, description=description, masking=masking)


def _field(dataset: DatasetName, name: str, *transformations: Transformation) -> column_lineage_dataset.InputField:
    return column_lineage_dataset.InputField(
        namespace=dataset.namespace, name=dataset.name, field=name, transformations=list(transformations)
    )


def _sources(contract: Contract) -> dict[str, tuple[tuple[str | None, str], ...]]:
    """`transformSourceObjects` per column as (table or None, field); `a.b.c` reads as table `b`, field `c`."""
    out: dict[str, tuple[tuple[str | None, str], ...]] = {}
    for prop in contract.table.properties or ():
        refs = []
        for ref in prop.transformSourceObjects or ():
            parts = str(ref).split(".")
            refs.append((parts[-2] if len(parts) > 1 else None, parts[-1]))
        if prop.name and refs:
            out[prop.name] = tuple(refs)
    return out


def identity_lineage(contract: Contract, source: DatasetName) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """A copy of the source documents (bus, raw zone): every source field from the same field, unchanged."""
    fields = {
        c.source_field: column_lineage_dataset.Fields(
            inputFields=[_field(source, c.source_field, _transformation("IDENTITY"))]
        )
        for c in contract.source_columns
    }
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def change_feed_lineage(contract: Contract, source: DatasetName) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Each contract column from its source field (`sourceField`), masked per the contract; derived
    columns from their `transformSourceObjects` (columns of the product's own table)."""
    fields: dict[str, column_lineage_dataset.Fields] = {}
    sources, own = _sources(contract), {c.name for c in contract.columns}
    for column in contract.columns:
        if column.derived:
            description = _derived_description(contract, column.name)
            inputs = [
                _field(source, contract.column(name).source_field, _transformation("TRANSFORMATION", description))
                for table, name in sources.get(column.name, ())
                if table in (None, contract.table_name, contract.table.name) and name in own
            ]
        elif column.masking != "none":
            masked = _transformation("TRANSFORMATION", MASKING_DESCRIPTIONS[column.masking], masking=True)
            inputs = [_field(source, column.source_field, masked)]
        else:
            inputs = [_field(source, column.source_field, _transformation("IDENTITY"))]
        if inputs:
            fields[column.name] = column_lineage_dataset.Fields(inputFields=inputs)
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def refined_lineage(
    contract: Contract, inputs: Mapping[str, DatasetName], upstream: Mapping[str, Contract]
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Columns of a refined product from its input products' columns (`transformSourceObjects`).

    A source table whose primary key feeds the output's primary key is at the output's grain: its
    columns are copied (IDENTITY, or TRANSFORMATION when renamed); any other table is aggregated
    (AGGREGATION). The key columns also shape the whole dataset: JOIN across tables, GROUP_BY on the
    aggregated ones.
    """
    port_of = {up.table_name: port for port, up in upstream.items()} | {port: port for port in upstream}
    sources = _sources(contract)

    def resolve(table: str | None) -> str | None:
        return port_of.get(table or "") if table else (next(iter(upstream)) if len(upstream) == 1 else None)

    grain: set[str] = set()
    for key in contract.primary_key:
        for table, name in sources.get(key, ()):
            port = resolve(table)
            if port and name in upstream[port].primary_key:
                grain.add(port)
    fields: dict[str, column_lineage_dataset.Fields] = {}
    for column in contract.columns:
        refs = []
        for table, name in sources.get(column.name, ()):
            port = resolve(table)
            if port is None or port not in inputs:
                continue  # an unknown reference is reported by validation, not here
            if column.primary_key:
                subtype = "IDENTITY"
            elif port in grain:
                subtype = "IDENTITY" if name == column.name else "TRANSFORMATION"
            else:
                subtype = "AGGREGATION"
            description = _derived_description(contract, column.name)
            refs.append(_field(inputs[port], name, _transformation(subtype, description)))
        if refs:
            fields[column.name] = column_lineage_dataset.Fields(inputFields=refs)
    dataset = []
    key_refs = [(resolve(t), n) for k in contract.primary_key for t, n in sources.get(k, ())]
    for port, name in key_refs:
        if port is None or port not in inputs:
            continue
        shaping = [Transformation(type="INDIRECT", subtype="JOIN")] if len(key_refs) > 1 else []
        if port not in grain:
            shaping.append(Transformation(type="INDIRECT", subtype="GROUP_BY"))
        if shaping:
            dataset.append(_field(inputs[port], name, *shaping))
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, dataset=dataset, producer=PRODUCER)


def _derived_description(contract: Contract, column: str) -> str | None:
    """The contract's prose `transformDescription`; `transformLogic` stays out (code may carry literals)."""
    prop = next((p for p in contract.table.properties or () if p.name == column), None)
    return prop.transformDescription.strip() if prop is not None and prop.transformDescription else None
