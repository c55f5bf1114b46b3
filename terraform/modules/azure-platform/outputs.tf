output "resource_group_name" {
  description = "Resource group of the mesh's Azure resources."
  value       = var.resource_group_name
}

output "cosmos_account_id" {
  description = "Cosmos DB account id (product stacks' cosmos_account_id)."
  value       = azurerm_cosmosdb_account.app.id
}

output "eventhub_namespace_id" {
  description = "Event Hubs namespace id (product stacks' eventhub_namespace_id)."
  value       = azurerm_eventhub_namespace.bus.id
}

output "eventhubs_fqdn" {
  description = "Fully qualified namespace for meshkit's eventhubs_namespace setting."
  value       = "${azurerm_eventhub_namespace.bus.name}.servicebus.windows.net"
}

output "event_hub_ids" {
  description = "Event hub ids by name."
  value       = { for k, h in azurerm_eventhub.product : k => h.id }
}

output "checkpoint_storage_account_id" {
  description = "Checkpoint storage account id (product stacks' checkpoint_storage_account_id)."
  value       = azurerm_storage_account.checkpoints.id
}

output "identity_principal_ids" {
  description = "Principal (object) id per managed identity name (product stacks' azure_identity_principal_ids)."
  value       = { for k, i in azurerm_user_assigned_identity.mesh : k => i.principal_id }
}

output "identity_client_ids" {
  description = "Client id per managed identity name (AZURE_CLIENT_ID for the relay)."
  value       = { for k, i in azurerm_user_assigned_identity.mesh : k => i.client_id }
}
