variable "resource_group_name" {
  description = "Existing resource group of the mesh's Azure resources."
  type        = string
}

variable "location" {
  description = "Azure region (e.g. brazilsouth)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of resource names; names end with the environment."
  type        = string
  default     = "meshkit"
}

variable "environment" {
  description = "Environment name (dev, prod, ...)."
  type        = string
}

variable "cosmos_account_name" {
  description = "Name of the app's Cosmos DB account (the contracts' source server `account`)."
  type        = string
}

variable "cosmos_database" {
  description = "Cosmos DB database of the source containers."
  type        = string
}

variable "cosmos_containers" {
  description = "Source containers: name => {partition_key_path, change_feed_mode (latestVersion | allVersionsAndDeletes)}."
  type = map(object({
    partition_key_path = string
    change_feed_mode   = optional(string, "latestVersion")
  }))

  validation {
    condition     = alltrue([for c in values(var.cosmos_containers) : contains(["latestVersion", "allVersionsAndDeletes"], c.change_feed_mode)])
    error_message = "change_feed_mode must be latestVersion or allVersionsAndDeletes."
  }
}

variable "event_hubs" {
  description = "One hub per product (<domain>.<product>): name => {partition_count, retention_days}; each gets a consumer group <domain>-<product>-pipeline."
  type = map(object({
    partition_count = optional(number, 8)
    retention_days  = optional(number, 7)
  }))
}

variable "eventhubs_sku" {
  description = "Event Hubs namespace tier (Standard or Premium; Basic has no consumer groups nor Kafka surface)."
  type        = string
  default     = "Standard"
}

variable "managed_identities" {
  description = "User-assigned managed identities to create (the relays, by access.yaml name such as mi-payments-transactions-relay)."
  type        = set(string)
  default     = []
}

variable "checkpoint_storage_account_name" {
  description = "Storage account for relay checkpoints and leases (3-24 lower-case letters and digits)."
  type        = string
}

variable "checkpoint_container" {
  description = "Blob container of relay checkpoints (meshkit setting checkpoint_container)."
  type        = string
  default     = "meshkit-checkpoints"
}

variable "public_network_access_enabled" {
  description = "Whether Cosmos DB, Event Hubs and the checkpoint account accept traffic from public networks; keep false and use private endpoints."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
