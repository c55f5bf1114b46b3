"""What the ODCS JSON Schema cannot express: meshkit's rules over a parsed contract.

Each rule has its own id (`contract.<rule>`) and points at the file, line and field path it is about.
`meshkit validate` runs these after `schema_checks` passes; references and SLAs live in
`contract_references`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from open_data_contract_standard.model import CustomProperty, Role, SchemaProperty

from governance.validation.contract_references import PropertyAt, reference_checks, sla_checks, walk_properties
from meshkit.checks import Check, Severity, Status
from meshkit.contracts.model import MASKING_STRATEGIES, Contract, custom_properties
from meshkit.contracts.types import LOGICAL_TYPES, PHYSICAL_FAMILIES, decimal_params, fits, physical_base

# Stricter than the pipeline's masking trigger (which also accepts pii/sensitive): policy wants these two.
PERSONAL_DATA_CLASSIFICATIONS = ("confidential", "restricted")
PERSONAL_NAME_WORDS = (
    "cpf", "cnpj", "email", "e_mail", "phone", "telefone", "celular", "full_name", "nome", "birth",
    "nascimento", "address", "endereco", "rg", "passport", "ssn", "tax_id",
)  # fmt: skip
# `readwrite` and `admin` cover owners and operators; ODCS leaves the list open, we keep it closed.
ROLE_ACCESS = ("read", "write", "readwrite", "admin")
CHANGE_FEED_MODES = ("latestVersion", "allVersionsAndDeletes")


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in {"true", "yes", "1"})


def _snake(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def looks_personal(name: str) -> bool:
    """True when a word of the column name is one that usually names personal data (`customer_cpf`)."""
    padded = f"_{_snake(name)}_"
    return any(f"_{word}_" in padded for word in PERSONAL_NAME_WORDS)


def custom_property_path(path: str, items: list[CustomProperty] | None, name: str) -> str:
    """The field path of the value of custom property `name` (the last one wins, as in the model)."""
    index = max((i for i, cp in enumerate(items or ()) if cp.property == name), default=None)
    return path if index is None else f"{path}.customProperties[{index}].value"


@dataclass(frozen=True)
class ContractCheck:
    """Builds checks located in one contract."""

    contract: Contract

    def __call__(self, rule: str, reason: str, field: str, hint: str, *, warning: bool = False) -> Check:
        return Check(
            f"contract.{rule}",
            Status.WARNING if warning else Status.FAILED,
            reason,
            file=str(self.contract.path),
            line=self.contract.document.line_of(field),
            field=field,
            hint=hint,
            severity=Severity.WARNING if warning else Severity.ERROR,
        )


def physical_mismatch(logical: str, physical: str, *, legacy_dates: bool = False) -> bool:
    """True when `physical` is known and does not fit `logical`. Integer types fit `number` (every
    integer is a number, as in JSON Schema); before ODCS v3.1 `date` was also the logical type of
    timestamps and times (v3.1 added `timestamp` and `time`), so `legacy_dates` accepts those."""
    if fits(logical, physical) is not False:
        return False
    if logical == "number" and fits("integer", physical):
        return False
    return not (legacy_dates and logical == "date" and (fits("timestamp", physical) or fits("time", physical)))


def _type_checks(at: PropertyAt, check: ContractCheck, legacy_dates: bool) -> Iterator[Check]:
    logical, physical = at.prop.logicalType, at.prop.physicalType
    if logical is not None and logical not in LOGICAL_TYPES:
        yield check(
            "logical-type",
            f"unknown logicalType {logical!r}; valid values are: {', '.join(LOGICAL_TYPES)}",
            f"{at.path}.logicalType",
            "Use one of the ODCS logical types; put engine-specific types in `physicalType`.",
        )
    elif logical is not None and physical and physical_mismatch(logical, physical, legacy_dates=legacy_dates):
        base = physical_base(physical)
        owner = next((lt for lt, fam in PHYSICAL_FAMILIES.items() if base in fam), "?")
        yield check(
            "physical-type",
            f"physicalType {physical!r} does not fit logicalType {logical!r} (it is a {owner} type)",
            f"{at.path}.physicalType",
            f"Use a {logical} physical type ({', '.join(sorted(PHYSICAL_FAMILIES[logical]))}) "
            f"or set logicalType: {owner}.",
        )
    params = decimal_params(physical)
    if params and params[1] > params[0]:
        yield check(
            "decimal-scale",
            f"physicalType {physical!r} has scale {params[1]} greater than precision {params[0]}",
            f"{at.path}.physicalType",
            "Write DECIMAL(precision, scale) with scale <= precision, e.g. NUMERIC(18,2).",
        )


def _privacy_checks(at: PropertyAt, check: ContractCheck) -> Iterator[Check]:
    prop, path = at.prop, at.path
    props = custom_properties(prop.customProperties)
    classification = (prop.classification or "").strip().lower()
    personal = truthy(props.get("personalData"))
    name = prop.name or ""
    if personal and classification not in PERSONAL_DATA_CLASSIFICATIONS:
        yield check(
            "personal-classification",
            f"column {name!r} holds personal data but is classified {prop.classification or 'nowhere'!r}",
            f"{path}.classification" if prop.classification else path,
            "Set `classification: restricted` (or confidential) on personal data.",
        )
    elif not personal and classification not in PERSONAL_DATA_CLASSIFICATIONS and looks_personal(name):
        yield check(
            "personal-name",
            f"column {name!r} looks like personal data but is neither personalData nor restricted/confidential",
            path,
            "If it is personal data add customProperty `personalData: true`, `classification: restricted` "
            "and a masking strategy; otherwise classify it restricted/confidential or rename it.",
            warning=True,
        )
    if "masking" in props:
        masking = str(props["masking"]).strip().lower()
        masking_path = custom_property_path(path, prop.customProperties, "masking")
        if masking not in MASKING_STRATEGIES:
            yield check(
                "masking",
                f"unknown masking strategy {props['masking']!r}; valid values are: {', '.join(MASKING_STRATEGIES)}",
                masking_path,
                "Use hash for join keys, redact or partial for display-only values, none to keep it clear.",
            )
        elif prop.primaryKey and masking in ("redact", "partial"):
            yield check(
                "masking-primary-key",
                f"primary key column {name!r} is masked with {masking!r}: distinct keys would collide "
                "and the current-state MERGE would join the wrong rows",
                masking_path,
                "Mask a primary key with `hash` (a keyed HMAC keeps it unique and joinable), or `none`.",
            )
    if prop.primaryKey and truthy(props.get("derived")):
        yield check(
            "derived-primary-key",
            f"column {name!r} is derived by the domain transform and cannot be the primary key",
            custom_property_path(path, prop.customProperties, "derived"),
            "The pipeline orders and merges on the key before the transform runs: key on a source field.",
        )


def _primary_key_checks(contract: Contract, check: ContractCheck) -> Iterator[Check]:
    for i, table in enumerate(contract.odcs.schema_ or ()):
        keyed = [(j, p) for j, p in enumerate(table.properties or ()) if p.primaryKey]
        if not keyed and i == 0 and contract.source is not None:
            yield check(
                "primary-key",
                f"table {table.name!r} has no primary key, but its source server feeds the change pipeline",
                f"schema[{i}].properties" if table.properties else f"schema[{i}]",
                "Mark the key column with `primaryKey: true` and `primaryKeyPosition: 1`: the pipeline "
                "orders, de-duplicates and merges changes on it.",
            )
        if not keyed:
            continue
        seen: dict[int, str] = {}
        positioned = any((p.primaryKeyPosition or 0) >= 1 for _, p in keyed)
        for j, prop in keyed:
            path, position = f"schema[{i}].properties[{j}]", prop.primaryKeyPosition
            if position is None or position < 1:
                # without any positions the key follows document order; with some, the rest is a guess
                if positioned:
                    yield check(
                        "primary-key-position",
                        f"key column {prop.name!r} has no primaryKeyPosition while other key columns have one",
                        path,
                        f"Number all {len(keyed)} key columns with primaryKeyPosition 1..{len(keyed)}.",
                    )
                continue
            where = f"{path}.primaryKeyPosition"
            if position in seen:
                yield check(
                    "primary-key-position",
                    f"primaryKeyPosition {position} of {prop.name!r} is also used by {seen[position]!r}",
                    where,
                    f"Give each key column its own position 1..{len(keyed)}.",
                )
            elif position > len(keyed):
                yield check(
                    "primary-key-position",
                    f"primaryKeyPosition {position} of {prop.name!r} leaves a gap: "
                    f"the table has {len(keyed)} key column(s)",
                    where,
                    f"Number the key columns 1..{len(keyed)} without gaps.",
                )
            seen.setdefault(position, prop.name or "")


def _duplicate_name_checks(contract: Contract, check: ContractCheck) -> Iterator[Check]:
    tables = [(f"schema[{i}].name", t.name) for i, t in enumerate(contract.odcs.schema_ or ())]
    yield from _duplicates(tables, "schema object", check)
    for i, table in enumerate(contract.odcs.schema_ or ()):
        yield from _duplicate_props(f"schema[{i}]", table.properties, check)


def _duplicate_props(path: str, props: list[SchemaProperty] | None, check: ContractCheck) -> Iterator[Check]:
    named = [(f"{path}.properties[{j}].name", p.name) for j, p in enumerate(props or ())]
    yield from _duplicates(named, "property", check)
    for j, prop in enumerate(props or ()):
        yield from _duplicate_props(f"{path}.properties[{j}]", prop.properties, check)


def _duplicates(
    named: list[tuple[str, str | None]],
    what: str,
    check: ContractCheck,
    rule: str = "duplicate-name",
    hint: str = "Rename one of them: warehouses treat table and column names case-insensitively.",
) -> Iterator[Check]:
    """(field, name) pairs whose names repeat, compared case-insensitively; reported at the repeat."""
    seen: dict[str, str] = {}
    for field, name in named:
        if not name:
            continue
        first = seen.setdefault(name.lower(), field)
        if first != field:
            yield check(rule, f"{what} name {name!r} is used twice (first at {first})", field, hint)


def _role_checks(contract: Contract, check: ContractCheck) -> Iterator[Check]:
    lists: list[tuple[str, list[Role]]] = [("roles", contract.odcs.roles or [])]
    lists += [(f"servers[{i}].roles", s.roles or []) for i, s in enumerate(contract.odcs.servers or ())]
    for prefix, roles in lists:
        named = [(f"{prefix}[{k}].role", r.role) for k, r in enumerate(roles)]
        hint = "Merge the two entries or rename one: access.yaml binds principals to roles by name."
        yield from _duplicates(named, "role", check, "role-duplicate", hint)
        for k, role in enumerate(roles):
            access = (role.access or "").strip().lower()
            if access not in ROLE_ACCESS:
                got = f"has access {role.access!r}" if role.access else "has no `access`"
                yield check(
                    "role-access",
                    f"role {role.role!r} {got}; valid values are: {', '.join(ROLE_ACCESS)}",
                    f"{prefix}[{k}].access" if role.access else f"{prefix}[{k}]",
                    "Say what the role may do: read for consumers, write for the pipeline identity, "
                    "readwrite or admin for operators.",
                )


def _source_server_checks(contract: Contract, check: ContractCheck) -> Iterator[Check]:
    chosen = custom_properties(contract.odcs.customProperties).get("sourceServer")
    if chosen is not None and str(chosen) not in contract.sources:
        yield check(
            "source-server",
            f"sourceServer {chosen!r} names no server with a sourceKind",
            custom_property_path("", contract.odcs.customProperties, "sourceServer").lstrip("."),
            f"Source servers: {', '.join(contract.sources) or 'none'}. Name one of them, or add the server "
            "with customProperty sourceKind (cosmosdb or postgres).",
        )
    tables = contract.odcs.schema_ or []
    fields = {
        str(custom_properties(p.customProperties).get("sourceField") or p.name)
        for p in (tables[0].properties or () if tables else ())
    }
    for i, server in enumerate(contract.odcs.servers or ()):
        props = custom_properties(server.customProperties)
        if not props.get("sourceKind"):
            continue
        path = f"servers[{i}]"
        mode = props.get("changeFeedMode")
        if mode is not None and mode not in CHANGE_FEED_MODES:
            yield check(
                "source-server",
                f"unknown changeFeedMode {mode!r}; valid values are: {', '.join(CHANGE_FEED_MODES)}",
                custom_property_path(path, server.customProperties, "changeFeedMode"),
                "latestVersion reads the current document; allVersionsAndDeletes also sees deletes "
                "and intermediate versions (the container needs continuous backup).",
            )
        key_path = props.get("partitionKeyPath")
        if key_path is None:
            continue
        key_field = custom_property_path(path, server.customProperties, "partitionKeyPath")
        text = str(key_path)
        first = text.lstrip("/").split("/", 1)[0]
        if not text.startswith("/"):
            yield check(
                "source-server",
                f"partitionKeyPath {text!r} must start with '/'",
                key_field,
                f"Write it as Cosmos DB does, e.g. /{first or 'id'}.",
            )
        elif first not in fields:
            yield check(
                "source-server",
                f"partitionKeyPath {text!r} names {first!r}, which is the source field of no column",
                key_field,
                f"Source fields of the table's columns: {', '.join(sorted(fields)) or 'none'}. Add the "
                "column (with customProperty sourceField) or fix the path.",
            )


def semantic_checks(contract: Contract) -> list[Check]:
    """All meshkit rules over one parsed contract; [] when it satisfies every one."""
    check = ContractCheck(contract)
    checks: list[Check] = []
    legacy_dates = (contract.odcs.apiVersion or "").startswith(("v2.", "v3.0."))
    for at in walk_properties(contract):
        checks.extend(_type_checks(at, check, legacy_dates))
        checks.extend(_privacy_checks(at, check))
    checks.extend(_primary_key_checks(contract, check))
    checks.extend(_duplicate_name_checks(contract, check))
    checks.extend(reference_checks(contract, check))
    checks.extend(sla_checks(contract, check))
    checks.extend(_role_checks(contract, check))
    checks.extend(_source_server_checks(contract, check))
    return sorted(checks, key=lambda c: (c.line or 0, c.rule))
