"""The ODCS v3.1 document every importer returns: the skeleton, one property, names and privacy flags.

Importers describe what they found (columns with types, a source server); this module turns it into
a complete contract that passes the official schema and meshkit's semantic checks. What an importer
cannot know is marked for review rather than guessed: a column whose name looks personal gets
`classification: TODO`, so `meshkit validate` warns about it until someone decides.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from governance.validation.contract_semantics import looks_personal
from meshkit.contracts.types import BIGQUERY_TYPES, physical_base
from meshkit.errors import ContractError, NameError_
from meshkit.names import parse_product_ref, sql_identifier
from meshkit.scaffold import ProductScaffold

TODO = "TODO"
DEFAULT_CLASSIFICATION = "internal"
# words that make a column worth a privacy review (the validator's own list, plus bare names)
_REVIEW_WORDS = ("name", "first_name", "last_name", "surname", "birth", "dob", "mobile", "zip", "cep")


def snake_case(text: str) -> str:
    """`customerId` -> `customer_id`, `Birth Date` -> `birth_date`: a column name from a source field."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    name = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_") or "field"
    return f"_{name}" if name[0].isdigit() else name


def kebab_case(text: str) -> str:
    """A product or domain name guessed from a source name (`customer_orders` -> `customer-orders`)."""
    return snake_case(text).strip("_").replace("_", "-")


def needs_privacy_review(name: str) -> bool:
    """True when the name suggests personal data (cpf, email, phone, name, birth, ...)."""
    padded = f"_{snake_case(name)}_"
    return looks_personal(name) or any(f"_{word}_" in padded for word in _REVIEW_WORDS)


def product_ref(ref: str | None, domain_hint: str, product_hint: str) -> tuple[str, str]:
    """The validated `<domain>/<product>` given, or one guessed from the source's names."""
    if ref:
        return parse_product_ref(ref)
    guess = f"{kebab_case(domain_hint)}/{kebab_case(product_hint)}"
    try:
        return parse_product_ref(guess)
    except NameError_ as exc:
        raise NameError_(
            f"cannot name the product after the source ({guess!r}): {exc.reason}",
            hint="Pass the product explicitly, e.g. `--product payments/refunds`.",
        ) from None


def bigquery_logical(name: str) -> str:
    """The logicalType whose table entry gives BigQuery type `name` (the inverse of `BIGQUERY_TYPES`)."""
    upper = name.upper()
    upper = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}.get(upper, upper)
    found = next((lt for (lt, physical) in BIGQUERY_TYPES if physical == upper), None)
    if found is None:
        raise ContractError(
            f"no contract type for the BigQuery type {name!r}",
            hint="Supported: " + ", ".join(sorted({p for (_lt, p) in BIGQUERY_TYPES if p})) + ".",
        )
    return found


def typed(bigquery: str, *, precision: int | None = None, scale: int | None = None) -> dict[str, Any]:
    """`logicalType`, `physicalType` and `logicalTypeOptions` of a column of BigQuery type `bigquery`."""
    upper = bigquery.upper()
    logical = bigquery_logical(upper)
    physical = physical_base(upper)
    physical = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}.get(physical, physical)
    out: dict[str, Any] = {"logicalType": logical, "physicalType": physical}
    if physical in ("NUMERIC", "BIGNUMERIC", "DECIMAL", "BIGDECIMAL") and precision is not None:
        out["physicalType"] = f"{physical}({precision},{scale or 0})"
    if logical == "timestamp":
        out["logicalTypeOptions"] = {"timezone": physical == "TIMESTAMP"}
    return out


def column(
    name: str,
    types: dict[str, Any],
    *,
    required: bool,
    description: str | None = None,
    source_field: str | None = None,
    nested: bool = False,
) -> dict[str, Any]:
    """One ODCS property. Top-level columns get a classification (TODO when the name looks personal)
    and `sourceField` when the source spells the field differently."""
    scalar = {k: v for k, v in types.items() if k not in ("properties", "items")}
    prop: dict[str, Any] = {"name": name, **scalar, "required": required}
    if types.get("logicalTypeOptions") == {}:
        del prop["logicalTypeOptions"]
    if description:
        prop["description"] = description
    prop |= {k: types[k] for k in ("properties", "items") if k in types}  # nested shape last, for readers
    if not nested:
        prop["classification"] = TODO if needs_privacy_review(name) else DEFAULT_CLASSIFICATION
    if source_field is not None and source_field != name and not nested:
        prop.setdefault("customProperties", []).append({"property": "sourceField", "value": source_field})
    return prop


def valid_values_rule(name: str, values: list[Any]) -> dict[str, Any]:
    """The quality rule meshkit reads valid values from (`invalidValues` with `validValues`)."""
    return {
        "name": f"{name}_is_known",
        "metric": "invalidValues",
        "arguments": {"validValues": values},
        "mustBe": 0,
        "dimension": "conformity",
    }


def lake_server(domain: str, product: str, *, project: str | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The BigQuery server the product lands in (scaffold defaults unless the source says otherwise)."""
    context = ProductScaffold(domain, product, f"{domain}-data-owners@example.com", date.today()).context()
    return {
        "server": "lake",
        "type": "bigquery",
        "environment": "dev",
        "project": project or context["gcp_project"],
        "dataset": dataset or context["dataset"],
    }


def contract_document(
    ref: tuple[str, str],
    *,
    table: str | None,
    description: str,
    properties: list[dict[str, Any]],
    servers: list[dict[str, Any]],
    imported_from: str,
    table_description: str | None = None,
) -> dict[str, Any]:
    """A complete ODCS v3.1 draft contract (version 0.1.0) for the product `ref`."""
    domain, product = ref
    name = table or sql_identifier(product)
    schema_object: dict[str, Any] = {"name": name, "physicalName": name, "physicalType": "table"}
    if table_description:
        schema_object["description"] = table_description
    schema_object["properties"] = properties
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"urn:meshkit:contract:{domain}:{product}",
        "name": product,
        "version": "0.1.0",
        "status": "draft",
        "domain": domain,
        "dataProduct": product,
        "description": {
            "purpose": description,
            "limitations": f"Imported from {imported_from} on {date.today().isoformat()}: review types, "
            "required flags and classifications (TODO) before publishing.",
        },
        "tags": [domain, "imported"],
        "servers": servers,
        "schema": [schema_object],
        "contractCreatedTs": f"{date.today().isoformat()}T00:00:00Z",
    }
