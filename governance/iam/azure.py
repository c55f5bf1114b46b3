"""Azure RBAC from grants, scoped to the product's container and hub, never to a subscription.

- relay identity (a write role's managed identity named `*-relay`): Cosmos DB Built-in Data Reader
  through a Cosmos DB SQL role assignment scoped to `dbs/<db>/colls/<container>`, Azure Event Hubs
  Data Sender on the product's hub, Storage Blob Data Contributor on the checkpoint container;
- other Azure principals of a write role, and the identity the product module federates with the
  GCP pipeline service account (workload identity federation, no secret): Event Hubs Data Receiver;
- principals of a read role allowed to see personal data: Cosmos DB Built-in Data Reader on the
  container. Masked readers get nothing on Azure, where only unmasked source data lives.
"""

from __future__ import annotations

from governance.iam.grants import Grant
from governance.iam.model import Binding
from governance.iam.resources import ProductResources
from meshkit.checks import Check, Severity, Status

COSMOS_DATA_READER = "Cosmos DB Built-in Data Reader"
COSMOS_DATA_READER_ID = "00000000-0000-0000-0000-000000000001"
EVENTHUBS_SENDER = "Azure Event Hubs Data Sender"
EVENTHUBS_RECEIVER = "Azure Event Hubs Data Receiver"
BLOB_CONTRIBUTOR = "Storage Blob Data Contributor"


def _cosmos(r: ProductResources, principal: str, grant: Grant | None) -> Binding:
    scope = f"{r.cosmos_account}/dbs/{r.cosmos_database}/colls/{r.cosmos_container}"
    return Binding(
        "azure", r.ref, principal, COSMOS_DATA_READER, "cosmos-container", scope, f"cosmos:{scope}", "read", grant=grant
    )


def _hub(r: ProductResources, principal: str, role: str, grant: Grant | None, derived: str | None = None) -> Binding:
    privilege = "write" if role == EVENTHUBS_SENDER else "read"
    return Binding(
        "azure",
        r.ref,
        principal,
        role,
        "event-hub",
        r.event_hub,
        f"eventhub:{r.event_hub}",
        privilege,
        grant=grant,
        derived=derived,
    )


def _checkpoints(r: ProductResources, grant: Grant) -> Binding:
    name = f"{r.checkpoint_container}/{r.domain}/{r.name}"
    return Binding(
        "azure",
        r.ref,
        grant.principal,
        BLOB_CONTRIBUTOR,
        "blob-container",
        name,
        f"blob:{r.checkpoint_container}",
        "write",
        grant=grant,
    )


def azure_bindings(r: ProductResources, grants: tuple[Grant, ...]) -> tuple[list[Binding], list[Check]]:
    """Azure bindings of the generated grants, and notes on Azure principals that get nothing."""
    out: list[Binding] = []
    notes: list[Check] = []
    if not r.has_azure_source:
        for g in grants:
            if g.cloud == "azure":
                notes.append(_note(r, g, "the product has no Azure source (it is refined from other products)"))
        return out, notes
    for grant in grants:
        if grant.cloud != "azure":
            continue
        if grant.writes and grant.name.endswith("-relay"):
            out += [
                _cosmos(r, grant.principal, grant),
                _hub(r, grant.principal, EVENTHUBS_SENDER, grant),
                _checkpoints(r, grant),
            ]
        elif grant.writes:
            out.append(_hub(r, grant.principal, EVENTHUBS_RECEIVER, grant))
        elif grant.personal:
            out.append(_cosmos(r, grant.principal, grant))
        else:
            notes.append(_note(r, grant, "Azure holds only unmasked source data; masked readers read the GCP outputs"))
    if any(g.cloud == "gcp" and g.writes and g.kind == "serviceAccount" for g in grants):
        federated = f"managedIdentity:{r.pipeline_identity}"
        why = "workload identity federation: the GCP pipeline service account reads the hub as this identity"
        out.append(_hub(r, federated, EVENTHUBS_RECEIVER, None, derived=why))
    return out, notes


def _note(r: ProductResources, grant: Grant, why: str) -> Check:
    return Check(
        "access.azure-no-binding",
        Status.PASSED,
        f"{r.ref}: {grant.principal} (role {grant.role}) gets no Azure role: {why}",
        severity=Severity.INFO,
    )
