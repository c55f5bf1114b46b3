"""The product's Terraform stack: the product modules called with the bindings of its access plan.

Every binding is an entry of a module input keyed by a stable key, with its purpose and expiry in
a comment above it; entries, keys and files are sorted so the same inputs give the same bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.iam.azure import COSMOS_DATA_READER
from governance.iam.model import Binding, ProductAccess
from governance.iam.resources import ProductResources
from governance.infra.dataflow import dataflow_context
from governance.infra.hcl import Commented, Expr, block
from meshkit.contracts.model import Contract
from meshkit.errors import ContractError
from meshkit.products.model import ACCESS_FILE, CONTRACT_FILE
from meshkit.templating import report_environment

if TYPE_CHECKING:
    import pyarrow as pa

TEMPLATES = Path(__file__).parent / "templates"
STACK_FILES = ("main.tf", "variables.tf", "versions.tf", "dataflow.tf")


@dataclass(frozen=True)
class Stack:
    """The generated files of one product, by file name."""

    ref: str
    files: dict[str, str]

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in sorted(self.files):
            path = out / name
            path.write_text(self.files[name], encoding="utf-8")
            written.append(path)
        return written


def _tables(contract: Contract, r: ProductResources) -> dict[str, list[dict[str, Any]]]:
    """Each table the pipeline writes, column by column, from the same definitions the pipeline uses:
    the contract through `meshkit.contracts.bigquery` (one type mapping) and the audit tables' Arrow
    schemas. The dead-letter table holds reasons and origins only; bodies stay in the raw zone."""
    import pyarrow as pa

    from meshkit.contracts.bigquery import bigquery_schema
    from meshkit.contracts.types import bigquery_of_arrow
    from pipelines.transforms.decode import DEAD_LETTER_SCHEMA
    from pipelines.transforms.order import DUPLICATE_SCHEMA

    tag_of = {name: cls for cls, names in r.tagged.items() for name in names}

    def column(f: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": f["name"],
            "type": f["type"],
            "mode": f["mode"],
            "description": f.get("description", ""),
            "policy_tag": tag_of.get(f["name"]),
        }

    def audit(schema: pa.Schema, description: str) -> list[dict[str, Any]]:
        fields = [f for f in schema if f.name != "body"] + [pa.field("run_id", pa.string(), nullable=False)]
        return [
            {
                "name": f.name,
                "type": bigquery_of_arrow(f.type).name,
                "mode": "NULLABLE" if f.nullable else "REQUIRED",
                "description": description,
                "policy_tag": None,
            }
            for f in fields
        ]

    return {
        "changelog": [column(f) for f in bigquery_schema(contract, policy_taxonomy=None, kind="changelog")],
        "current": [column(f) for f in bigquery_schema(contract, policy_taxonomy=None, kind="current")],
        "dead_letters": audit(DEAD_LETTER_SCHEMA, "Why an event was refused and where it came from (no body)."),
        "duplicates": audit(DUPLICATE_SCHEMA, "A duplicate delivery dropped by de-duplication."),
    }


def _entries(bindings: list[Binding], make: Any) -> dict[str, Commented]:
    return {b.key: Commented(make(b), (b.note,)) for b in sorted(bindings, key=lambda b: b.key)}


def _writer_account(access: ProductAccess) -> str | None:
    writers = sorted(
        g.name for g in access.grants.generated if g.cloud == "gcp" and g.writes and g.kind == "serviceAccount"
    )
    return writers[0] if writers else None


def _gcp_module(access: ProductAccess, contract: Contract, source: str) -> str:
    r = access.resources
    gcp = list(access.on("gcp"))
    kind = {k: [b for b in gcp if b.resource_kind == k] for k in ("table", "view", "bucket", "policy-tag")}
    writer = _writer_account(access)
    items: list[tuple[str, Any]] = [
        ("source", f"{source}/product"),
        ("project_id", r.project),
        ("domain", r.domain),
        ("product", r.name),
        ("dataset_id", r.dataset),
        ("masked_dataset_id", r.masked_dataset if r.tagged else None),
        ("table_prefix", r.table),
        ("classification", r.classification),
        ("kms_key_name", Expr("var.kms_key_name")),
        ("raw_bucket", r.bucket("raw")),
        ("curated_bucket", r.bucket("curated")),
        ("object_prefix", r.object_prefix),
        ("policy_taxonomy_id", Expr("var.policy_taxonomy_id")),
        ("classification_policy_tags", Expr("var.classification_policy_tags")),
        ("tables", _tables(contract, r)),
        ("view_columns", list(r.view_columns) if r.tagged else []),
        (
            "table_readers",
            _entries(
                kind["table"], lambda b: {"table": b.resource.rsplit(".", 1)[1], "role": b.role, "member": b.principal}
            ),
        ),
        (
            "view_readers",
            _entries(
                kind["view"], lambda b: {"view": b.resource.rsplit(".", 1)[1], "role": b.role, "member": b.principal}
            ),
        ),
        (
            "bucket_grants",
            _entries(
                kind["bucket"],
                lambda b: {
                    "bucket": b.resource.split("/")[2],
                    "role": b.role,
                    "member": b.principal,
                    "condition": b.condition,
                },
            ),
        ),
        (
            "policy_tag_readers",
            _entries(
                kind["policy-tag"], lambda b: {"classification": b.resource.rsplit("-", 1)[1], "member": b.principal}
            ),
        ),
        ("pipeline_service_account", writer),
        ("region", Expr("var.region")),
        ("notification_channels", Expr("var.notification_channels")),
    ]
    return block('module "product"', items)


def _azure_module(access: ProductAccess, source: str) -> str | None:
    r = access.resources
    azure = list(access.on("azure"))
    if not r.has_azure_source:
        return None
    for b in azure:
        if b.principal.startswith("user:") and "@" in b.principal:
            raise ContractError(
                f"Azure principal {b.principal!r} of role {b.contract_role!r} is a user name; "
                "Azure RBAC needs an object id",
                hint="Write it as user:<object-id> (az ad user show --id <upn> --query id).",
            )
    cosmos = [b for b in azure if b.role == COSMOS_DATA_READER]
    others = [b for b in azure if b.role != COSMOS_DATA_READER]
    scope = {"event-hub": "event-hub", "blob-container": "checkpoints"}
    writer = _writer_account(access)
    items: list[tuple[str, Any]] = [
        ("source", f"{source}/product/azure"),
        ("domain", r.domain),
        ("product", r.name),
        ("resource_group_name", Expr("var.azure_resource_group_name")),
        ("location", Expr("var.azure_location")),
        ("cosmos_account_id", Expr("var.cosmos_account_id")),
        ("cosmos_database", r.cosmos_database),
        ("cosmos_container", r.cosmos_container),
        ("eventhub_namespace_id", Expr("var.eventhub_namespace_id")),
        ("event_hub", r.event_hub),
        ("checkpoint_storage_account_id", Expr("var.checkpoint_storage_account_id")),
        ("checkpoint_container", r.checkpoint_container),
        ("identity_principal_ids", Expr("var.azure_identity_principal_ids")),
        ("cosmos_data_readers", _entries(cosmos, lambda b: {"principal": b.principal})),
        (
            "role_assignments",
            _entries(others, lambda b: {"scope": scope[b.resource_kind], "role": b.role, "principal": b.principal}),
        ),
        (
            "pipeline_federation",
            {
                "identity_name": r.pipeline_identity,
                "gcp_service_account": writer,
                "gcp_service_account_unique_id": Expr("var.pipeline_service_account_unique_id"),
            }
            if writer
            else None,
        ),
    ]
    return block('module "product_azure"', items)


def _modules_source(out: Path, modules_dir: Path) -> str:
    return Path(os.path.relpath(modules_dir.resolve(), out.resolve())).as_posix()


def product_stack(
    access: ProductAccess,
    *,
    out: Path,
    modules_dir: Path,
    today: str,
    grace_days: int,
    modules_source: str | None = None,
) -> Stack:
    """The stack's files; `modules_source` overrides the relative path from `out` to terraform/modules."""
    product = access.grants.product
    contract = product.contract
    source = modules_source or _modules_source(out, modules_dir)
    azure_module = _azure_module(access, source)
    env = report_environment(TEMPLATES)
    # the Dataflow launch (dataflow.tf): streaming job or scheduled micro-batch, from dataproduct.yaml
    dataflow = dataflow_context(access, _writer_account(access))
    context = {
        "ref": product.ref,
        "contract_file": f"domains/{product.ref}/{CONTRACT_FILE}",
        "access_file": f"domains/{product.ref}/{ACCESS_FILE}",
        "contract_id": contract.id,
        "contract_version": contract.version,
        "today": today,
        "grace_days": grace_days,
        "dropped": [f"{g.principal} ({g.cloud}) — {g.note}" for g in access.grants.dropped],
        "notes": [c.reason.split(": ", 1)[1] for c in access.checks if c.rule == "access.azure-no-binding"],
        "gcp_module": _gcp_module(access, contract, source),
        "azure_module": azure_module,
        "azure": azure_module is not None,
        "project": access.resources.project,
        "classification": access.resources.classification,
        "cmek": access.resources.needs_cmek,
        "dataflow": dataflow,
    }
    files = {name: env.get_template(f"{name}.j2").render(**context) for name in STACK_FILES if name != "dataflow.tf"}
    files["dataflow.tf"] = env.get_template("dataflow.tf.j2").render(**dataflow)
    return Stack(product.ref, files)
