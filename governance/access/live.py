"""Live IAM read from exports: GCP (`gcloud ... get-iam-policy --format=json` of a project, or Cloud
Asset Inventory `gcloud asset search-all-iam-policies --format=json`) and Azure (`az role assignment
list --all -o json`, optionally with `az cosmosdb sql role assignment list` and `az identity list`
output so managed identities match by name). Resources are normalised to the names bindings use."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshkit.errors import ConfigError, Location

COSMOS_BUILT_IN = {
    "00000000-0000-0000-0000-000000000001": "Cosmos DB Built-in Data Reader",
    "00000000-0000-0000-0000-000000000002": "Cosmos DB Built-in Data Contributor",
}
_AZURE_KINDS = {"group": "group", "user": "user", "serviceprincipal": "servicePrincipal", "foreigngroup": "group"}
_SCOPES = (
    (re.compile(r"/providers/Microsoft\.EventHub/namespaces/[^/]+/eventhubs/([^/]+)$", re.I), "eventhub:{0}"),
    (
        re.compile(r"/providers/Microsoft\.DocumentDB/databaseAccounts/([^/]+)/dbs/([^/]+)/colls/([^/]+)$", re.I),
        "cosmos:{0}/dbs/{1}/colls/{2}",
    ),
    (
        re.compile(
            r"/providers/Microsoft\.Storage/storageAccounts/[^/]+/blobServices/default/containers/([^/]+)$", re.I
        ),
        "blob:{0}",
    ),
)


@dataclass(frozen=True)
class LiveGrant:
    """One role held by one principal on one resource, as the cloud reports it."""

    cloud: str
    principal: str
    role: str
    resource_name: str
    condition: str | None
    source: str


def _load(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist", hint="Export it first (see docs/access.md, drift report).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON: {exc.msg}",
            location=Location(str(path), exc.lineno),
            hint="Export with --format=json (gcloud) or -o json (az).",
        ) from exc


def _policy_grants(resource: str, policy: dict[str, Any], source: str) -> list[LiveGrant]:
    grants = []
    for binding in policy.get("bindings") or []:
        condition = (binding.get("condition") or {}).get("expression")
        for member in binding.get("members") or []:
            grants.append(LiveGrant("gcp", member, str(binding.get("role")), resource, condition, source))
    return grants


def load_gcp(path: Path) -> list[LiveGrant]:
    """A project policy (`bindings` at the top) or Cloud Asset Inventory results (`resource` + `policy`)."""
    data = _load(path)
    source = str(path)
    if isinstance(data, dict) and "bindings" in data:
        return _policy_grants("project", data, source)
    results = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(results, list) or not all(isinstance(r, dict) and "policy" in r for r in results):
        raise ConfigError(
            "neither an IAM policy (`bindings`) nor Cloud Asset Inventory results (`resource`, `policy`)",
            location=Location(source),
            hint="Use `gcloud projects get-iam-policy P --format=json` or "
            "`gcloud asset search-all-iam-policies --scope=projects/P --format=json`.",
        )
    grants = []
    for result in results:
        resource = str(result.get("resource", ""))
        if resource.startswith("//cloudresourcemanager.googleapis.com/projects/"):
            resource = "project"
        grants += _policy_grants(resource, result["policy"], source)
    return grants


def _scope(scope: str) -> str:
    for pattern, form in _SCOPES:
        match = pattern.search(scope)
        if match:
            return form.format(*match.groups())
    return scope


def _azure_items(data: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    if isinstance(data, dict):
        items = [*data.get("roleAssignments", []), *data.get("cosmosRoleAssignments", [])]
        identities = data.get("identities", [])
    elif isinstance(data, list):
        identities = [i for i in data if isinstance(i, dict) and "clientId" in i and "principalId" in i]
        items = [i for i in data if isinstance(i, dict) and i not in identities]
    else:
        items, identities = [], []
    names = {str(i["principalId"]).lower(): str(i["name"]) for i in identities if i.get("name")}
    return [i for i in items if isinstance(i, dict)], names


def load_azure(path: Path) -> list[LiveGrant]:
    """Role assignments (ARM and Cosmos DB SQL), principals named as access.yaml names them."""
    items, names = _azure_items(_load(path))
    grants = []
    for item in items:
        principal_id = str(item.get("principalId", "")).lower()
        if not principal_id:
            continue
        if "roleDefinitionName" in item:
            role = str(item["roleDefinitionName"])
        else:
            definition = str(item.get("roleDefinitionId", ""))
            role = COSMOS_BUILT_IN.get(definition.rsplit("/", 1)[-1], definition)
        if principal_id in names:
            principal = f"managedIdentity:{names[principal_id]}"
        else:
            kind = _AZURE_KINDS.get(str(item.get("principalType", "")).lower(), "servicePrincipal")
            principal = f"{kind}:{principal_id}"
        grants.append(LiveGrant("azure", principal, role, _scope(str(item.get("scope", ""))), None, str(path)))
    return grants
