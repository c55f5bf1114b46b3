# The Azure half of the mesh platform: the app's Cosmos DB account with the change-feed mode each
# container needs, the Event Hubs namespace with one hub and consumer group per product, the relay
# checkpoint store and the managed identities. Key-based authentication is disabled everywhere:
# identities get data-plane roles from each product stack. See README.md.

locals {
  base = "${var.name_prefix}-${var.environment}"
  tags = merge(var.tags, { environment = var.environment, managed-by = "meshkit" })
  # the all-versions-and-deletes change feed needs continuous backup on the account
  all_versions = anytrue([for c in values(var.cosmos_containers) : c.change_feed_mode == "allVersionsAndDeletes"])
}

resource "azurerm_cosmosdb_account" "app" {
  name                               = var.cosmos_account_name
  resource_group_name                = var.resource_group_name
  location                           = var.location
  offer_type                         = "Standard"
  kind                               = "GlobalDocumentDB"
  local_authentication_disabled      = true
  access_key_metadata_writes_enabled = false
  public_network_access_enabled      = var.public_network_access_enabled
  minimal_tls_version                = "Tls12"
  tags                               = local.tags

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = var.location
    failover_priority = 0
  }

  backup {
    type = local.all_versions ? "Continuous" : "Periodic"
    tier = local.all_versions ? "Continuous7Days" : null
  }
}

resource "azurerm_cosmosdb_sql_database" "app" {
  name                = var.cosmos_database
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.app.name
}

resource "azurerm_cosmosdb_sql_container" "source" {
  for_each = var.cosmos_containers

  name                = each.key
  resource_group_name = var.resource_group_name
  account_name        = azurerm_cosmosdb_account.app.name
  database_name       = azurerm_cosmosdb_sql_database.app.name
  partition_key_paths = [each.value.partition_key_path]
}

resource "azurerm_eventhub_namespace" "bus" {
  name                          = "${local.base}-bus"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  sku                           = var.eventhubs_sku
  local_authentication_enabled  = false
  public_network_access_enabled = var.public_network_access_enabled
  minimum_tls_version           = "1.2"
  tags                          = local.tags
}

resource "azurerm_eventhub" "product" {
  for_each = var.event_hubs

  name              = each.key
  namespace_id      = azurerm_eventhub_namespace.bus.id
  partition_count   = each.value.partition_count
  message_retention = each.value.retention_days
}

resource "azurerm_eventhub_consumer_group" "pipeline" {
  for_each = var.event_hubs

  name                = "${replace(each.key, ".", "-")}-pipeline"
  namespace_name      = azurerm_eventhub_namespace.bus.name
  eventhub_name       = azurerm_eventhub.product[each.key].name
  resource_group_name = var.resource_group_name
}

resource "azurerm_storage_account" "checkpoints" {
  name                            = var.checkpoint_storage_account_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  min_tls_version                 = "TLS1_2"
  shared_access_key_enabled       = false
  allow_nested_items_to_be_public = false
  public_network_access_enabled   = var.public_network_access_enabled
  default_to_oauth_authentication = true
  tags                            = local.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "checkpoints" {
  name                  = var.checkpoint_container
  storage_account_id    = azurerm_storage_account.checkpoints.id
  container_access_type = "private"
}

resource "azurerm_user_assigned_identity" "mesh" {
  for_each = var.managed_identities

  name                = each.key
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}
