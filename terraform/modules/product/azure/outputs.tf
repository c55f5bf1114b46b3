output "pipeline_identity_client_id" {
  description = "Client id of the pipeline's federated identity (AZURE_CLIENT_ID for the Dataflow job), or null."
  value       = one(azurerm_user_assigned_identity.pipeline[*].client_id)
}

output "role_assignment_ids" {
  description = "Azure role assignment ids by key."
  value       = { for k, a in azurerm_role_assignment.product : k => a.id }
}

output "cosmos_role_assignment_ids" {
  description = "Cosmos DB SQL role assignment ids by key."
  value       = { for k, a in azurerm_cosmosdb_sql_role_assignment.reader : k => a.id }
}
