"""GCP IAM from grants: table-level BigQuery roles, bucket roles conditioned on the product's prefix,
fine-grained reader on the product's policy tags, and authorized views for masked consumers.

Least privilege: nothing at project or dataset level for product principals (datasets are shared by
a domain's products); BigQuery data editors only for the pipeline's write role; readers of a product
with personal columns and no right to see them read through authorized views that leave those
columns out.
"""

from __future__ import annotations

from collections.abc import Iterator

from governance.iam.grants import Grant
from governance.iam.model import Binding
from governance.iam.resources import CONSUMER_TABLES, TABLE_SUFFIXES, ProductResources

DATA_VIEWER = "roles/bigquery.dataViewer"
DATA_EDITOR = "roles/bigquery.dataEditor"
OBJECT_VIEWER = "roles/storage.objectViewer"
OBJECT_ADMIN = "roles/storage.objectAdmin"
FINE_GRAINED_READER = "roles/datacatalog.categoryFineGrainedReader"
# project-level roles gcp-platform gives pipeline service accounts: they read or write no data
PLATFORM_PROJECT_ROLES = frozenset(
    {
        "roles/bigquery.jobUser",
        "roles/dataflow.worker",
        "roles/monitoring.metricWriter",
        "roles/logging.logWriter",
        "roles/iam.workloadIdentityUser",
        "roles/cloudtrace.agent",
    }
)


def _table(
    r: ProductResources, grant: Grant, role: str, dataset: str, table: str, kind: str, privilege: str
) -> Binding:
    return Binding(
        cloud="gcp",
        product=r.ref,
        principal=grant.principal,
        role=role,
        resource_kind=kind,
        resource=f"{r.project}.{dataset}.{table}",
        resource_name=f"//bigquery.googleapis.com/projects/{r.project}/datasets/{dataset}/tables/{table}",
        privilege=privilege,
        columns=r.view_columns if kind == "view" else ("*",),
        grant=grant,
    )


def _bucket(r: ProductResources, grant: Grant, role: str, zone: str, privilege: str) -> Binding:
    return Binding(
        cloud="gcp",
        product=r.ref,
        principal=grant.principal,
        role=role,
        resource_kind="bucket",
        resource=f"gs://{r.bucket(zone)}/{r.object_prefix}",
        resource_name=f"//storage.googleapis.com/{r.bucket(zone)}",  # Cloud Asset Inventory form
        privilege=privilege,
        condition=r.prefix_condition(zone),
        grant=grant,
    )


def _policy_tags(r: ProductResources, grant: Grant) -> Iterator[Binding]:
    for classification, columns in r.tagged.items():
        tag = r.policy_tag(classification)
        yield Binding(
            cloud="gcp",
            product=r.ref,
            principal=grant.principal,
            role=FINE_GRAINED_READER,
            resource_kind="policy-tag",
            resource=tag,
            resource_name=f"policy-tag:{tag}",
            privilege="fine-grained-read",
            columns=columns,
            grant=grant,
        )


def gcp_bindings(r: ProductResources, grants: tuple[Grant, ...]) -> list[Binding]:
    """The GCP bindings of a product's (generated) GCP grants."""
    out: list[Binding] = []
    for grant in grants:
        if grant.cloud != "gcp":
            continue
        if grant.writes:
            out += [_table(r, grant, DATA_EDITOR, r.dataset, r.table_id(s), "table", "write") for s in TABLE_SUFFIXES]
            out += [_bucket(r, grant, OBJECT_ADMIN, zone, "write") for zone in ("raw", "curated")]
            out += _policy_tags(r, grant)  # the MERGE reads the tagged columns it keeps current
        elif grant.personal or not r.tagged:
            out += [_table(r, grant, DATA_VIEWER, r.dataset, r.table_id(s), "table", "read") for s in CONSUMER_TABLES]
            out.append(_bucket(r, grant, OBJECT_VIEWER, "curated", "read"))
            if grant.personal:
                out.append(_bucket(r, grant, OBJECT_VIEWER, "raw", "read"))  # unmasked, approved for this role
                out += _policy_tags(r, grant)
        else:
            # masked consumer of a product with personal columns: authorized views without those columns
            out += [
                _table(r, grant, DATA_VIEWER, r.masked_dataset, r.table_id(s), "view", "read") for s in CONSUMER_TABLES
            ]
    return out
