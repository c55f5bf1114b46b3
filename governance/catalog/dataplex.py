"""Export the catalog to Dataplex Catalog: one entry per product, in an entry group per domain.

Each entry has the `meshkit-data-product` entry type and two aspects: `meshkit-data-product` (owner,
domain, lifecycle, ports, SLO, quality, classification summary, access roles, neighbours) and the
system `schema` aspect (the columns). `plan_export` is a pure function of the catalog: the requests in
the REST JSON form of the API (what `--dry-run` prints); `export_catalog` sends them through
google-cloud-dataplex: the aspect type, entry type and entry groups are created once (looked up first),
then every entry is upserted with `UpdateEntry(allow_missing=true)` and an update mask naming the
aspects and the entry source. Cloud profile only; the process's Google identity, never a key file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.catalog.model import Catalog, CatalogColumn, ProductEntry
from meshkit.config import Settings
from meshkit.errors import ConfigError, TerminalError

TEMPLATE_FILE = Path(__file__).parent / "templates" / "dataplex" / "data-product.aspect-type.json"
TYPE_ID = "meshkit-data-product"  # the entry type and the aspect type share the id
GROUP_PREFIX = "meshkit-"  # entry group per domain: meshkit-<domain>
SYSTEM = "meshkit"
SCHEMA_ASPECT_KEY = "dataplex-types.global.schema"  # Dataplex's system schema aspect type
UPDATE_MASK = "aspects,entrySource"
OPERATION_TIMEOUT_SECONDS = 300.0
_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")
_ID_BAD = re.compile(r"[^a-z0-9-]+")
MAX_DISPLAY_NAME, MAX_DESCRIPTION = 500, 2000  # EntrySource limits
# contract logical type -> metadataType of the schema aspect (the one mapping to Dataplex's type system)
METADATA_TYPES = {
    "string": "STRING",
    "integer": "NUMBER",
    "number": "NUMBER",
    "boolean": "BOOLEAN",
    "date": "DATETIME",
    "time": "DATETIME",
    "timestamp": "TIMESTAMP",
    "object": "STRUCT",
}


def _label(value: str) -> str:
    """A Dataplex label value: lower case letters, digits, `_` and `-`, at most 63 characters."""
    return _LABEL_BAD.sub("-", value.lower()).strip("-")[:63]


def resource_id(value: str) -> str:
    """A Dataplex resource id: lower case letters, digits and hyphens, starting with a letter, ≤ 63."""
    text = _ID_BAD.sub("-", value.lower()).strip("-")
    return (text if text[:1].isalpha() else f"x-{text}")[:63]


@dataclass(frozen=True)
class DataplexTarget:
    """Where the catalog goes: a project and a location."""

    project: str
    location: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def aspect_type(self) -> str:
        return f"{self.parent}/aspectTypes/{TYPE_ID}"

    @property
    def entry_type(self) -> str:
        return f"{self.parent}/entryTypes/{TYPE_ID}"

    @property
    def aspect_key(self) -> str:
        """The map key of the product aspect in an entry: `<project>.<location>.<aspect type id>`."""
        return f"{self.project}.{self.location}.{TYPE_ID}"

    def entry_group(self, domain: str) -> str:
        return f"{self.parent}/entryGroups/{GROUP_PREFIX}{resource_id(domain)}"

    def entry(self, product: ProductEntry) -> str:
        return f"{self.entry_group(product.domain)}/entries/{resource_id(product.name)}"


@dataclass(frozen=True)
class ExportPlan:
    """Every request of one export, in the API's JSON form (camelCase), in the order they are sent."""

    target: DataplexTarget
    aspect_type: dict[str, Any]  # CreateAspectTypeRequest
    entry_type: dict[str, Any]  # CreateEntryTypeRequest
    entry_groups: tuple[dict[str, Any], ...]  # CreateEntryGroupRequest per domain
    entries: tuple[dict[str, Any], ...]  # UpdateEntryRequest per product

    def to_dict(self) -> dict[str, Any]:
        return {
            "createAspectType": self.aspect_type,
            "createEntryType": self.entry_type,
            "createEntryGroups": list(self.entry_groups),
            "updateEntries": list(self.entries),
        }


@dataclass(frozen=True)
class ExportResult:
    entries: tuple[str, ...]  # entry names written
    created: tuple[str, ...]  # aspect type, entry type and entry groups that did not exist yet


def target_of(settings: Settings) -> DataplexTarget:
    if not settings.gcp_project:
        raise ConfigError(
            "setting 'gcp_project' is not set (Dataplex export)",
            hint="Set MESHKIT_GCP_PROJECT or gcp_project in meshkit.yaml to the project that holds the catalog.",
        )
    return DataplexTarget(settings.gcp_project, settings.gcp_location)


def plan_export(catalog: Catalog, settings: Settings) -> ExportPlan:
    """The requests that put `catalog` into Dataplex (products that cannot load are left out)."""
    target = target_of(settings)
    products = [p for p in catalog.products if p.load_error is None]
    template = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    aspect_type = {
        "parent": target.parent,
        "aspectTypeId": TYPE_ID,
        "aspectType": {
            "displayName": "meshkit data product",
            "description": "A data product of the mesh: owner, domain, lifecycle, ports, SLOs, quality, "
            "classification and access roles, from its contract and descriptor.",
            "labels": {"managed-by": SYSTEM},
            "metadataTemplate": template,
        },
    }
    entry_type = {
        "parent": target.parent,
        "entryTypeId": TYPE_ID,
        "entryType": {
            "displayName": "Data product",
            "description": "A meshkit data product (ODCS contract + ODPS descriptor).",
            "labels": {"managed-by": SYSTEM},
            "platform": "meshkit",
            "system": SYSTEM,
            "typeAliases": ["DATA_PRODUCT"],
            "requiredAspects": [{"type": target.aspect_type}],
        },
    }
    groups = tuple(
        {
            "parent": target.parent,
            "entryGroupId": target.entry_group(domain).rsplit("/", 1)[-1],
            "entryGroup": {
                "displayName": f"{domain} data products",
                "description": f"Data products of the {domain} domain, exported by meshkit.",
                "labels": {"managed-by": SYSTEM, "domain": _label(domain)},
            },
        }
        for domain in sorted({p.domain for p in products})
    )
    entries = tuple(_update_entry(target, p, catalog.judged_at) for p in products)
    return ExportPlan(target, aspect_type, entry_type, groups, entries)


def _update_entry(target: DataplexTarget, product: ProductEntry, judged_at: str) -> dict[str, Any]:
    source: dict[str, Any] = {
        "resource": product.contract_id or product.ref,
        "system": SYSTEM,
        "platform": "GCP",
        "displayName": product.title[:MAX_DISPLAY_NAME],
        "labels": {"managed-by": SYSTEM, "domain": _label(product.domain), "lifecycle": _label(product.status or "")},
    }
    if product.description:
        source["description"] = product.description[:MAX_DESCRIPTION]
    source["labels"] = {k: v for k, v in source["labels"].items() if v}
    return {
        "entry": {
            "name": target.entry(product),
            "entryType": target.entry_type,
            "entrySource": source,
            "aspects": {
                target.aspect_key: {"data": product_aspect(product, judged_at)},
                SCHEMA_ASPECT_KEY: {"data": {"fields": schema_fields(product.columns)}},
            },
        },
        "updateMask": UPDATE_MASK,
        "allowMissing": True,
        "aspectKeys": [target.aspect_key, SCHEMA_ASPECT_KEY],
    }


def _compact(value: Any) -> Any:
    """Drop None and empty values: an aspect carries only what is known."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def product_aspect(p: ProductEntry, judged_at: str) -> dict[str, Any]:
    """The `meshkit-data-product` aspect's data, shaped by templates/dataplex/data-product.aspect-type.json."""
    slos = p.slos
    counts = p.classification_counts
    data = {
        "product": p.ref,
        "domain": p.domain,
        "title": p.title,
        "description": p.description,
        "owner": p.owner,
        "team": p.team,
        "status": p.status,
        "version": p.version,
        "contractId": p.contract_id,
        "contractVersion": p.contract_version,
        "contractFile": p.contract_file,
        "tags": list(p.tags),
        "ports": [
            {
                "direction": port.direction,
                "name": port.name,
                "version": port.version,
                "type": port.type,
                "product": port.product,
                "port": port.port,
                "contractId": port.contract_id,
            }
            for port in p.ports
        ],
        "slo": {
            "state": slos.state if slos else "no-data",
            "judgedAt": judged_at,
            "objectives": [
                {
                    "objective": s.objective.name,
                    "kind": s.objective.kind,
                    "target": s.objective.target,
                    "sli": None if s.sli is None else round(s.sli, 9),
                    "remainingBudget": None if s.remaining_budget is None else round(s.remaining_budget, 9),
                    "state": s.state,
                }
                for s in (slos.statuses if slos else ())
            ],
        },
        "quality": {
            "state": p.quality_state,
            "rules": len(p.quality),
            "failed": sum(r.state == "failed" for r in p.quality),
        },
        "classification": {
            "levels": [{"level": level, "columns": counts[level]} for level in p.classifications],
            "personalColumns": [
                {"name": c.name, "classification": c.classification, "masking": c.masking} for c in p.personal_columns
            ],
        },
        "accessRoles": [{"role": r.role, "access": r.access, "description": r.description} for r in p.roles],
        "upstream": list(p.neighbours.upstream),
        "downstream": list(p.neighbours.downstream),
    }
    compact: dict[str, Any] = _compact(data)
    return compact


def schema_fields(columns: Sequence[CatalogColumn]) -> list[dict[str, Any]]:
    """The system schema aspect's `fields`, nested again from the catalog's `parent.child` names."""
    top: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    for c in columns:
        parent_name, _, own = c.name.rpartition(".")
        array = c.type == "array"
        field: dict[str, Any] = {
            "name": own.removesuffix("[]") if parent_name else c.name,
            "dataType": (c.physical_type or c.type).upper(),
            "metadataType": METADATA_TYPES.get(c.type, "OTHER"),
            "mode": "REPEATED" if array else "REQUIRED" if c.required else "NULLABLE",
        }
        if c.description:
            field["description"] = c.description
        by_name[c.name] = field
        by_name[f"{c.name}[]"] = field  # elements of an array column hang under the column itself
        siblings = by_name[parent_name].setdefault("fields", []) if parent_name in by_name else top
        siblings.append(field)
    return top


def _ensure(get: Callable[..., Any], create: Callable[..., Any], name: str, request: Any, created: list[str]) -> None:
    """Create a resource once: look it up, create it only when it is not found (waits for the operation)."""
    from google.api_core import exceptions

    try:
        get(name=name)
    except exceptions.NotFound:
        create(request=request).result(timeout=OPERATION_TIMEOUT_SECONDS)
        created.append(name)


def export_catalog(plan: ExportPlan, client: Any | None = None) -> ExportResult:
    """Send the plan through `client` (a `dataplex_v1.CatalogServiceClient`; default: one with the
    process's credentials). Every call is idempotent, so the client's default retries stay on."""
    from google.api_core import exceptions
    from google.cloud import dataplex_v1

    if client is None:
        client = dataplex_v1.CatalogServiceClient()  # dataplex.googleapis.com serves every location
    target, created = plan.target, list[str]()
    try:
        _ensure(
            client.get_aspect_type,
            client.create_aspect_type,
            target.aspect_type,
            dataplex_v1.CreateAspectTypeRequest.from_json(json.dumps(plan.aspect_type)),
            created,
        )
        _ensure(
            client.get_entry_type,
            client.create_entry_type,
            target.entry_type,
            dataplex_v1.CreateEntryTypeRequest.from_json(json.dumps(plan.entry_type)),
            created,
        )
        for group in plan.entry_groups:
            _ensure(
                client.get_entry_group,
                client.create_entry_group,
                f"{group['parent']}/entryGroups/{group['entryGroupId']}",
                dataplex_v1.CreateEntryGroupRequest.from_json(json.dumps(group)),
                created,
            )
        names = [
            client.update_entry(request=dataplex_v1.UpdateEntryRequest.from_json(json.dumps(entry))).name
            for entry in plan.entries
        ]
    except exceptions.GoogleAPICallError as exc:
        raise TerminalError(
            f"Dataplex Catalog refused a request: {exc.message}",
            hint="Check that the Dataplex API is enabled in the project and that this identity has "
            "roles/dataplex.catalogAdmin (entry groups, types) and roles/dataplex.catalogEditor (entries).",
        ) from exc
    return ExportResult(tuple(names), tuple(created))
