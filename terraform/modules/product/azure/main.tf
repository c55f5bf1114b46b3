# Azure RBAC of one data product, scoped to its Cosmos DB container, its event hub and its checkpoint
# container; the pipeline's identity is federated with its GCP service account. No keys: Cosmos DB
# and Event Hubs have local (key) authentication disabled in azure-platform. See ../README.md.

locals {
  cosmos_parts = split("/", var.cosmos_account_id)
  cosmos_scope = "${var.cosmos_account_id}/dbs/${var.cosmos_database}/colls/${var.cosmos_container}"
  scopes = {
    event-hub   = "${var.eventhub_namespace_id}/eventhubs/${var.event_hub}"
    checkpoints = "${var.checkpoint_storage_account_id}/blobServices/default/containers/${var.checkpoint_container}"
  }
  own_identity = var.pipeline_federation == null ? {} : {
    (var.pipeline_federation.identity_name) = azurerm_user_assigned_identity.pipeline[0].principal_id
  }
  principal_ids = merge(var.identity_principal_ids, local.own_identity)
  # Cosmos DB Built-in Data Reader
  cosmos_reader_role = "${var.cosmos_account_id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000001"
  tags               = merge(var.tags, { domain = var.domain, product = var.product, managed-by = "meshkit" })
}

resource "azurerm_user_assigned_identity" "pipeline" {
  count = var.pipeline_federation == null ? 0 : 1

  name                = var.pipeline_federation.identity_name
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "pipeline" {
  count = var.pipeline_federation == null ? 0 : 1

  name                = "gcp-${var.domain}-${var.product}"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.pipeline[0].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = "https://accounts.google.com"
  subject             = var.pipeline_federation.gcp_service_account_unique_id
}

resource "azurerm_cosmosdb_sql_role_assignment" "reader" {
  for_each = var.cosmos_data_readers

  resource_group_name = local.cosmos_parts[4]
  account_name        = local.cosmos_parts[8]
  role_definition_id  = local.cosmos_reader_role
  scope               = local.cosmos_scope
  principal_id = (startswith(each.value.principal, "managedIdentity:")
    ? local.principal_ids[trimprefix(each.value.principal, "managedIdentity:")]
  : split(":", each.value.principal)[1])
}

resource "azurerm_role_assignment" "product" {
  for_each = var.role_assignments

  scope                = local.scopes[each.value.scope]
  role_definition_name = each.value.role
  description          = "meshkit ${var.domain}/${var.product}: ${each.key}"
  principal_id = (startswith(each.value.principal, "managedIdentity:")
    ? local.principal_ids[trimprefix(each.value.principal, "managedIdentity:")]
  : split(":", each.value.principal)[1])
}
