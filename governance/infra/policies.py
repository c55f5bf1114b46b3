"""The project's own checks of any Terraform folder: what checkov misses or what meshkit promises.

Each policy has an id, a severity and a fix hint (the vocabulary of governance.policies) and looks at
resources, data sources and module calls alike, so a generated stack that passes its grants to the
product module as inputs is checked as closely as hand-written IAM resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from governance.iam.gcp import PLATFORM_PROJECT_ROLES as NO_DATA_ROLES
from governance.infra.folder import TerraformBlock, TerraformFolder
from governance.policies.model import Finding
from meshkit.checks import Check, Severity, Status

PUBLIC_MEMBERS = frozenset({"allusers", "allauthenticatedusers"})
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
CMEK_CLASSIFICATIONS = frozenset({"confidential", "restricted", "pii", "sensitive"})
AZURE_PRIVILEGED = frozenset(
    {"owner", "contributor", "user access administrator", "role based access control administrator"}
)
_WIDE_SCOPE = re.compile(r"^/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?/?$", re.IGNORECASE)
_WIDE_SCOPE_REF = re.compile(
    r"(azurerm_subscription|azurerm_resource_group|azurerm_management_group)\.[\w-]+\.id", re.IGNORECASE
)
_SECRET_ATTRIBUTE = re.compile(
    r"\.(primary_key|secondary_key|primary_master_key|secondary_master_key|primary_readonly_master_key|"
    r"primary_access_key|secondary_access_key|primary_connection_string|secondary_connection_string|"
    r"primary_sql_connection_string|connection_strings|primary_blob_connection_string|private_key)\b"
)
WIDE_GCP_IAM = (
    "google_project_iam_member",
    "google_project_iam_binding",
    "google_project_iam_policy",
    "google_folder_iam_member",
    "google_folder_iam_binding",
    "google_organization_iam_member",
    "google_organization_iam_binding",
)
KEY_RESOURCES = ("google_service_account_key", "google_apikeys_key", "google_storage_hmac_key")
AZURE_KEY_RESOURCES = (
    "azurerm_eventhub_authorization_rule",
    "azurerm_eventhub_namespace_authorization_rule",
    "azurerm_servicebus_namespace_authorization_rule",
)
AZURE_KEY_DATA = ("azurerm_storage_account_sas", "azurerm_storage_account_blob_container_sas", "azurerm_eventhub_sas")


@dataclass(frozen=True)
class InfraPolicy:
    """A rule over a Terraform folder; `check` yields one finding per violation."""

    id: str
    title: str
    severity: Severity
    hint: str
    check: Callable[[TerraformFolder], Iterable[Finding]]


POLICIES: list[InfraPolicy] = []


def infra_policy(*, id: str, title: str, severity: str, hint: str) -> Callable[..., InfraPolicy]:
    def decorate(check: Callable[[TerraformFolder], Iterable[Finding]]) -> InfraPolicy:
        rule = InfraPolicy(id, title, Severity(severity), hint, check)
        POLICIES.append(rule)
        return rule

    return decorate


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every attribute, however deep (objects, lists, nested blocks)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key), inner
            yield from _walk(inner, sub)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def _blocks(folder: TerraformFolder) -> Iterator[TerraformBlock]:
    return (b for b in folder.blocks if b.kind in ("resource", "data", "module"))


def _finding(block: TerraformBlock, reason: str, field: str | None = None) -> Finding:
    where = field if field is None or field.startswith(block.address) else f"{block.address}.{field}"
    return Finding(f"{block.address}: {reason}", file=block.file, line=block.line, field=where or block.address)


def _first(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else value


@infra_policy(
    id="iam-public-member",
    title="No IAM grant to allUsers or allAuthenticatedUsers",
    severity="error",
    hint="Data products are never public: grant the role to a group or a service identity instead.",
)
def public_member(folder: TerraformFolder) -> Iterator[Finding]:
    for block in _blocks(folder):
        for path, key, value in _walk(block.body, ""):
            if key in ("member", "members", "principal", "principals") or key.endswith("_member"):
                for text in _strings(value):
                    bare = text.split(":", 1)[-1].strip().lower()
                    if text.strip().lower() in PUBLIC_MEMBERS or bare in PUBLIC_MEMBERS:
                        yield _finding(block, f"grants access to the public member {text!r}", path)


@infra_policy(
    id="iam-basic-role",
    title="No basic roles (owner, editor, viewer)",
    severity="error",
    hint="Basic roles reach every resource of the project: use the predefined data role on the product's "
    "table, view or bucket prefix (meshkit iam <product> shows which).",
)
def basic_role(folder: TerraformFolder) -> Iterator[Finding]:
    for block in _blocks(folder):
        for path, key, value in _walk(block.body, ""):
            if key in ("role", "roles"):
                for text in _strings(value):
                    if text.strip() in BASIC_ROLES:
                        yield _finding(block, f"uses the basic role {text!r}", path)


@infra_policy(
    id="iam-service-account-key",
    title="No service-account keys, API keys or HMAC keys",
    severity="error",
    hint="Use the workload's own identity or workload identity federation (terraform/modules/gcp-platform); "
    "a key is a long-lived secret that leaks.",
)
def service_account_key(folder: TerraformFolder) -> Iterator[Finding]:
    for block in folder.blocks:
        if block.kind in ("resource", "data") and block.type in KEY_RESOURCES:
            yield _finding(block, f"creates or reads a key ({block.type})")


@infra_policy(
    id="azure-shared-key",
    title="No Azure shared keys, SAS tokens or connection strings",
    severity="error",
    hint="Give the identity a data-plane role (Event Hubs Data Sender/Receiver, Cosmos DB Built-in Data "
    "Reader, Storage Blob Data Contributor) and sign in with a managed identity.",
)
def azure_shared_key(folder: TerraformFolder) -> Iterator[Finding]:
    for block in folder.blocks:
        if (block.kind == "resource" and block.type in AZURE_KEY_RESOURCES) or (
            block.kind == "data" and block.type in AZURE_KEY_DATA
        ):
            yield _finding(block, f"creates or reads a shared key ({block.type})")
            continue
        for path, _key, value in _walk(block.body, ""):
            for text in _strings(value):
                match = _SECRET_ATTRIBUTE.search(text)
                if match and "${" in text:
                    yield _finding(block, f"references the secret attribute {match.group(1)!r}", path)


@infra_policy(
    id="iam-scope-wider-than-product",
    title="Data roles are granted on the product's tables, views and prefixes, not on the project or dataset",
    severity="error",
    hint="Grant on the product's table (google_bigquery_table_iam_member), authorized view or bucket prefix "
    "(google_storage_bucket_iam_member with a resource.name.startsWith condition); project-level "
    f"grants are kept for roles that read no data ({', '.join(sorted(NO_DATA_ROLES))}).",
)
def scope_wider_than_product(folder: TerraformFolder) -> Iterator[Finding]:
    for block in folder.of("resource", *WIDE_GCP_IAM):
        for text in _strings(block.body.get("role")):
            if text not in NO_DATA_ROLES and "${" not in text:  # an expression is checked where it is defined
                yield _finding(block, f"grants {text!r} on a whole {block.type.split('_')[1]}", f"{block.address}.role")
    for block in folder.of("resource", "google_bigquery_dataset_iam_member", "google_bigquery_dataset_iam_binding"):
        for text in _strings(block.body.get("role")):
            yield _finding(
                block, f"grants {text!r} on a whole dataset, shared by the domain's products", f"{block.address}.role"
            )
    for block in folder.of("resource", "google_storage_bucket_iam_member", "google_storage_bucket_iam_binding"):
        condition = _first(block.body, "condition")
        expression = str(condition.get("expression", "")) if isinstance(condition, dict) else ""
        if "resource.name.startsWith" not in expression and not expression.startswith("${"):
            yield _finding(
                block, "grants a role on a whole bucket without a prefix condition", f"{block.address}.condition"
            )


@infra_policy(
    id="azure-role-scope",
    title="Azure roles are data-plane roles on the product's resource, never Owner/Contributor or a subscription",
    severity="error",
    hint="Scope the assignment to the event hub, Cosmos DB container or blob container and use a data-plane "
    "role (Azure Event Hubs Data Sender/Receiver, Storage Blob Data Contributor).",
)
def azure_role_scope(folder: TerraformFolder) -> Iterator[Finding]:
    for block in folder.of("resource", "azurerm_role_assignment"):
        role = str(block.body.get("role_definition_name") or "")
        if role.strip().lower() in AZURE_PRIVILEGED:
            yield _finding(block, f"assigns the privileged role {role!r}", f"{block.address}.role_definition_name")
        scope = str(block.body.get("scope") or "")
        if _WIDE_SCOPE.match(scope) or _WIDE_SCOPE_REF.search(scope):
            yield _finding(
                block, f"is scoped to a whole subscription or resource group ({scope})", f"{block.address}.scope"
            )


def _null_variable(folder: TerraformFolder, block: TerraformBlock, value: Any) -> bool:
    """True when `value` is missing, null, or a variable that defaults to null."""
    if value is None or value in {"null", "${null}"}:
        return True
    match = re.fullmatch(r"\$\{var\.([\w-]+)\}", str(value))
    if not match:
        return False
    variable = folder.variable(match.group(1), block.file)
    return variable is not None and "default" in variable.body and variable.body["default"] in (None, "null", "${null}")


def _classification(block: TerraformBlock) -> str:
    labels = block.body.get("labels") or block.body.get("user_labels") or {}
    value = labels.get("classification") if isinstance(labels, dict) else None
    return str(value or block.body.get("classification") or "").lower()


@infra_policy(
    id="cmek-required",
    title="Confidential and restricted data is encrypted with a customer-managed key",
    severity="error",
    hint="Set the Cloud KMS key (kms_key_name, default_encryption_configuration, encryption_configuration or "
    "encryption.default_kms_key_name); gcp-platform outputs kms_key_name.",
)
def cmek_required(folder: TerraformFolder) -> Iterator[Finding]:
    keys = {
        "google_bigquery_dataset": ("default_encryption_configuration", "kms_key_name"),
        "google_bigquery_table": ("encryption_configuration", "kms_key_name"),
        "google_storage_bucket": ("encryption", "default_kms_key_name"),
    }
    for block in folder.blocks:
        classification = _classification(block)
        if classification not in CMEK_CLASSIFICATIONS:
            continue
        if block.kind == "module":
            if _null_variable(folder, block, block.body.get("kms_key_name")):
                yield _finding(
                    block, f"holds {classification} data without kms_key_name", f"{block.address}.kms_key_name"
                )
        elif block.kind == "resource" and block.type in keys:
            nested, attr = keys[block.type]
            config = _first(block.body, nested)
            has_dynamic = any(nested in d for d in block.body.get("dynamic", []) if isinstance(d, dict))
            if not has_dynamic and (not isinstance(config, dict) or _null_variable(folder, block, config.get(attr))):
                yield _finding(
                    block, f"holds {classification} data without a customer-managed key", f"{block.address}.{nested}"
                )


def _flag(block: TerraformBlock, attr: str, wanted: bool) -> bool:
    value = block.body.get(attr)
    return value is wanted or str(value).lower() == str(wanted).lower()


@infra_policy(
    id="azure-local-auth",
    title="Cosmos DB, Event Hubs and Storage accept Entra ID only (key-based auth disabled)",
    severity="error",
    hint="Set local_authentication_disabled = true (Cosmos DB), local_authentication_enabled = false (Event "
    "Hubs) or shared_access_key_enabled = false (Storage); identities get data-plane roles instead.",
)
def azure_local_auth(folder: TerraformFolder) -> Iterator[Finding]:
    rules = {
        "azurerm_cosmosdb_account": ("local_authentication_disabled", True),
        "azurerm_eventhub_namespace": ("local_authentication_enabled", False),
        "azurerm_storage_account": ("shared_access_key_enabled", False),
    }
    for block in folder.of("resource", *rules):
        attr, wanted = rules[block.type]
        if not _flag(block, attr, wanted):
            yield _finding(
                block,
                f"{attr} is not {str(wanted).lower()}: keys can still read and write the data",
                f"{block.address}.{attr}",
            )


@infra_policy(
    id="gcs-public-access-prevention",
    title="Lake buckets enforce public access prevention and uniform bucket-level access",
    severity="error",
    hint='Set public_access_prevention = "enforced" and uniform_bucket_level_access = true.',
)
def gcs_public_access(folder: TerraformFolder) -> Iterator[Finding]:
    for block in folder.of("resource", "google_storage_bucket"):
        if block.body.get("public_access_prevention") != "enforced" or not _flag(
            block, "uniform_bucket_level_access", True
        ):
            yield _finding(block, "may be made public (public access prevention or uniform access is off)")


def run_policies(folder: TerraformFolder, policies: Iterable[InfraPolicy] | None = None) -> list[Check]:
    """One check per finding, or one passed check per policy that holds."""
    checks: list[Check] = list(folder.problems)
    for rule in policies if policies is not None else POLICIES:
        findings = list(rule.check(folder))
        status = Status.FAILED if rule.severity is Severity.ERROR else Status.WARNING
        if not findings:
            checks.append(
                Check(f"infra.{rule.id}", Status.PASSED, rule.title, file=str(folder.root), severity=rule.severity)
            )
        checks += [
            Check(
                f"infra.{rule.id}",
                status,
                f.reason,
                file=f.file,
                line=f.line,
                field=f.field,
                hint=rule.hint,
                severity=rule.severity,
            )
            for f in findings
        ]
    return checks
