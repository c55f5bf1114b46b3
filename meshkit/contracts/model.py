"""A loaded contract: the ODCS pydantic model plus what the platform derives from it.

The contract is the single source of truth; every other artefact is a pure function of `Contract`.
Our own conventions live in ODCS `customProperties` (documented in docs/contracts.md):
property level `personalData`, `masking` (hash|redact|partial|none), `sourceField`, `derived`,
`clusterKeyPosition` (BigQuery clustering order, like ODCS `partitionKeyPosition` for partitioning);
source server level `sourceKind`, `container`, `partitionKeyPath`, `changeFeedMode`,
`expectedChangesPerDay`; for `sourceKind: postgres` also `table`, `publication`, `slot` (docs/postgres.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from open_data_contract_standard.model import (
    CustomProperty,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
    Server,
)
from pydantic import ValidationError

from meshkit.errors import ContractError
from meshkit.yamlio import YamlDocument, load_yaml

MaskingStrategy = Literal["hash", "redact", "partial", "none"]
MASKING_STRATEGIES: tuple[str, ...] = ("hash", "redact", "partial", "none")
PERSONAL_CLASSIFICATIONS = frozenset({"confidential", "restricted", "pii", "sensitive"})


def custom_properties(items: Iterable[CustomProperty] | None) -> dict[str, Any]:
    """ODCS custom properties as a plain mapping (later entries win)."""
    return {cp.property: cp.value for cp in items or () if cp.property}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in {"true", "yes", "1"})


@dataclass(frozen=True)
class Column:
    """One top-level property of the product's table, with everything the pipeline needs."""

    name: str
    logical_type: str
    physical_type: str | None
    required: bool
    primary_key: bool
    primary_key_position: int | None
    classification: str | None
    personal: bool
    masking: MaskingStrategy
    source_field: str
    derived: bool
    options: dict[str, Any]
    valid_values: tuple[Any, ...] | None
    description: str | None
    index: int
    business_name: str | None = None
    partitioned: bool = False
    partition_key_position: int | None = None
    cluster_key_position: int | None = None
    fields: tuple[Column, ...] = ()  # nested `properties` of an object column, in contract order
    items: Column | None = None  # the element of an array column (`items`)

    @property
    def field_path(self) -> str:
        """Where this column sits in the contract document, for error locations."""
        return f"schema[0].properties[{self.index}]"


@dataclass(frozen=True)
class SourceSpec:
    """Where the product's change events come from (the contract's source server)."""

    kind: str
    account: str | None
    database: str | None
    container: str | None
    partition_key_path: str | None
    change_feed_mode: str
    expected_changes_per_day: int | None
    # PostgreSQL (sourceKind: postgres): the ODCS server's host/port/schema plus customProperties
    # `table`, optional `publication` and `slot` (default names derive from the product)
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    table: str | None = None
    publication: str | None = None
    slot: str | None = None


def _valid_values(prop: SchemaProperty) -> tuple[Any, ...] | None:
    for rule in prop.quality or ():
        args = rule.arguments or {}
        if rule.metric == "invalidValues" and isinstance(args.get("validValues"), list):
            return tuple(args["validValues"])
    return None


def _position(value: Any) -> int | None:
    """ODCS positions start at 1; its default -1 (and anything unparsable) means none."""
    try:
        position = int(value)
    except (TypeError, ValueError):
        return None
    return position if position >= 1 else None


def _column(prop: SchemaProperty, index: int) -> Column:
    props = custom_properties(prop.customProperties)
    classification = (prop.classification or "").strip().lower() or None
    personal = _truthy(props.get("personalData"))
    masking = str(props.get("masking") or ("hash" if personal else "none")).lower()
    return Column(
        name=prop.name or "",
        logical_type=(prop.logicalType or "string").lower(),
        physical_type=prop.physicalType,
        required=bool(prop.required),
        primary_key=bool(prop.primaryKey),
        primary_key_position=prop.primaryKeyPosition,
        classification=classification,
        personal=personal,
        masking=masking if masking in MASKING_STRATEGIES else "hash",  # type: ignore[arg-type]
        source_field=str(props.get("sourceField") or prop.name or ""),
        derived=_truthy(props.get("derived")),
        options=dict(prop.logicalTypeOptions or {}),
        valid_values=_valid_values(prop),
        description=prop.description,
        index=index,
        business_name=prop.businessName,
        partitioned=bool(prop.partitioned),
        partition_key_position=_position(prop.partitionKeyPosition),
        cluster_key_position=_position(props.get("clusterKeyPosition")),
        fields=tuple(_column(p, i) for i, p in enumerate(prop.properties or ())),
        items=_column(prop.items, 0) if prop.items is not None else None,
    )


@dataclass(frozen=True)
class Contract:
    """An ODCS contract loaded from a file, with the derived views the platform uses."""

    path: Path
    document: YamlDocument
    odcs: OpenDataContractStandard

    @property
    def id(self) -> str:
        return self.odcs.id or ""

    @property
    def version(self) -> str:
        return self.odcs.version or "0.0.0"

    @property
    def name(self) -> str:
        return self.odcs.name or ""

    @property
    def domain(self) -> str:
        return self.odcs.domain or ""

    @property
    def table(self) -> SchemaObject:
        """The product's one table (meshkit pipelines carry one schema object per product)."""
        if not self.odcs.schema_:
            raise ContractError(
                "the contract has no schema",
                location=self.document.location("schema"),
                hint="Add a `schema:` list with one object and its `properties`.",
            )
        return self.odcs.schema_[0]

    @property
    def table_name(self) -> str:
        return self.table.physicalName or self.table.name or self.name

    @cached_property
    def columns(self) -> tuple[Column, ...]:
        return tuple(_column(p, i) for i, p in enumerate(self.table.properties or ()))

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @cached_property
    def primary_key(self) -> tuple[str, ...]:
        keyed = [c for c in self.columns if c.primary_key]
        keyed.sort(key=lambda c: (c.primary_key_position or 0, c.index))
        return tuple(c.name for c in keyed)

    @property
    def personal_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.personal)

    @property
    def source_columns(self) -> tuple[Column, ...]:
        """Columns read from source events (derived columns are produced by the domain transform)."""
        return tuple(c for c in self.columns if not c.derived)

    @cached_property
    def sources(self) -> dict[str, SourceSpec]:
        """Every source server (one with `sourceKind`), by server name, in contract order."""
        found: dict[str, SourceSpec] = {}
        for server in self.odcs.servers or ():
            props = custom_properties(server.customProperties)
            if props.get("sourceKind"):
                found[server.server or f"server-{len(found)}"] = _source_spec(server, props)
        return found

    @cached_property
    def source(self) -> SourceSpec | None:
        """The product's source: the server the contract's `sourceServer` custom property names (switch
        it to move a product, e.g. from Cosmos DB to PostgreSQL), else the first source server."""
        chosen = custom_properties(self.odcs.customProperties).get("sourceServer")
        if chosen is not None:
            return self.sources.get(str(chosen))
        return next(iter(self.sources.values()), None)

    @property
    def sla(self) -> dict[str, Any]:
        return {p.property: p for p in self.odcs.slaProperties or () if p.property}

    def server(self, server_type: str) -> Server | None:
        return next((s for s in self.odcs.servers or () if s.type == server_type), None)


def _source_spec(server: Server, props: dict[str, Any]) -> SourceSpec:
    expected = props.get("expectedChangesPerDay")
    return SourceSpec(
        kind=str(props["sourceKind"]),
        account=server.account,
        database=server.database,
        container=props.get("container"),
        partition_key_path=props.get("partitionKeyPath"),
        change_feed_mode=str(props.get("changeFeedMode") or "latestVersion"),
        expected_changes_per_day=int(expected) if expected is not None else None,
        host=server.host,
        port=int(server.port) if server.port is not None else None,
        schema=server.schema_,
        table=str(props["table"]) if props.get("table") is not None else None,
        publication=str(props["publication"]) if props.get("publication") is not None else None,
        slot=str(props["slot"]) if props.get("slot") is not None else None,
    )


def parse_contract(document: YamlDocument) -> Contract:
    """Build the typed model; pydantic errors become one `ContractError` naming file, line and field."""
    if not isinstance(document.data, dict):
        raise ContractError(
            "a contract must be a YAML mapping",
            location=document.location(""),
            hint="Start from `meshkit new <domain>/<product>` or an example in domains/.",
        )
    try:
        odcs = OpenDataContractStandard.model_validate(document.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        raise ContractError(
            f"{err['msg']}",
            location=document.location(field),
            hint="See the ODCS v3.1 reference for this field.",
        ) from exc
    return Contract(path=document.path, document=document, odcs=odcs)


def load_contract(path: Path) -> Contract:
    """Load a contract file (safe YAML) into the typed model, without semantic validation."""
    return parse_contract(load_yaml(path))
