variable "domain" {
  description = "The product's domain."
  type        = string
}

variable "product" {
  description = "The product's name."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group for the pipeline's federated identity."
  type        = string
}

variable "location" {
  description = "Azure region of the pipeline's federated identity."
  type        = string
}

variable "cosmos_account_id" {
  description = "Resource id of the Cosmos DB account (azure-platform output cosmos_account_id)."
  type        = string
}

variable "cosmos_database" {
  description = "Cosmos DB database of the product's source container."
  type        = string
}

variable "cosmos_container" {
  description = "The product's source container; Cosmos DB data-plane roles are scoped to it."
  type        = string
}

variable "eventhub_namespace_id" {
  description = "Resource id of the Event Hubs namespace (azure-platform output eventhub_namespace_id)."
  type        = string
}

variable "event_hub" {
  description = "The product's event hub (<domain>.<product>); Event Hubs roles are scoped to it."
  type        = string
}

variable "checkpoint_storage_account_id" {
  description = "Storage account holding relay checkpoints (azure-platform output checkpoint_storage_account_id)."
  type        = string
}

variable "checkpoint_container" {
  description = "Blob container of relay checkpoints."
  type        = string
}

variable "identity_principal_ids" {
  description = "Principal (object) id per managed identity name (azure-platform output identity_principal_ids)."
  type        = map(string)
  default     = {}
}

variable "cosmos_data_readers" {
  description = "Cosmos DB Built-in Data Reader on the container: key => {principal} (managedIdentity:<name>, group:/servicePrincipal:/user:<object-id>)."
  type = map(object({
    principal = string
  }))
  default = {}
}

variable "role_assignments" {
  description = "Azure RBAC on the product's hub or checkpoint container: key => {scope (event-hub | checkpoints), role, principal}."
  type = map(object({
    scope     = string
    role      = string
    principal = string
  }))
  default = {}

  validation {
    condition     = alltrue([for a in values(var.role_assignments) : contains(["event-hub", "checkpoints"], a.scope)])
    error_message = "scope must be event-hub or checkpoints: product roles are never wider than the product."
  }
  validation {
    condition     = alltrue([for a in values(var.role_assignments) : contains(["Azure Event Hubs Data Sender", "Azure Event Hubs Data Receiver", "Storage Blob Data Contributor"], a.role)])
    error_message = "role must be Azure Event Hubs Data Sender/Receiver or Storage Blob Data Contributor (data-plane roles only; never Owner or Contributor)."
  }
}

variable "pipeline_federation" {
  description = "Creates a managed identity federated with the GCP pipeline service account (workload identity federation, no secret); null for none."
  type = object({
    identity_name                 = string
    gcp_service_account           = string
    gcp_service_account_unique_id = string
  })
  default = null
}

variable "tags" {
  description = "Extra tags on created resources."
  type        = map(string)
  default     = {}
}
