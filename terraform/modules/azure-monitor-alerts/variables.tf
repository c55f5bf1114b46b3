variable "resource_group_name" {
  description = "Resource group that holds the action groups and metric alert rules."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name (e.g. meshkit); names end with the environment and product."
  type        = string
  default     = "meshkit"
}

variable "environment" {
  description = "Environment name (dev, prod, ...), part of every name and of the alert descriptions."
  type        = string
}

variable "cosmosdb_account_id" {
  description = "Resource id of the Cosmos DB account whose containers feed the products (Microsoft.DocumentDB/databaseAccounts)."
  type        = string
}

variable "eventhub_namespace_id" {
  description = "Resource id of the Event Hubs namespace the relay writes to (Microsoft.EventHub/namespaces)."
  type        = string
}

variable "domains" {
  description = <<-EOT
    Owning domains, keyed by domain name: one action group each, so every alert reaches the team that owns
    the product. short_name is the action group's SMS/e-mail label (at most 12 characters). emails are the
    owners' and team addresses. webhooks name entries of var.webhook_uris (Slack incoming webhooks, the
    PagerDuty Events API integration URL, ...), whose URLs are secrets and are therefore kept apart.
  EOT
  type = map(object({
    short_name = string
    emails     = optional(map(string), {})
    webhooks   = optional(list(string), [])
  }))

  validation {
    condition     = alltrue([for d in var.domains : length(d.short_name) <= 12])
    error_message = "An action group short_name has at most 12 characters."
  }
}

variable "webhook_uris" {
  description = "Webhook URL per name used in var.domains[*].webhooks. Secret: set it through TF_VAR_webhook_uris from the pipeline's secret store or a Key Vault data source, never in a .tfvars file in the repository."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "products" {
  description = <<-EOT
    Products to watch, keyed by "<domain>/<product>". domain must be a key of var.domains.
    cosmos_database and cosmos_container name the source container (omit both for products without a
    Cosmos DB source); event_hub is the hub the relay writes the product's changes to.
    Thresholds (per evaluation window, see README.md):
      throttled_requests_threshold  Cosmos DB requests answered 429 in 5 min before alerting
      ru_consumption_percent        normalized RU consumption (max over partitions) in 15 min
      eventhub_throttled_threshold  throttled Event Hubs requests in 5 min
      server_errors_threshold       Event Hubs server errors in 5 min
      min_incoming_messages         stall proxy: fewer messages than this reach the hub in 15 min (0 = off)
      backlog_min_incoming          imbalance: at least this many messages arrive in 15 min ...
      backlog_max_outgoing          ... while at most this many are read (consumer stalled)
      change_feed_lag_seconds       relay-published change-feed lag above this (0 = off, see README.md)
  EOT
  type = map(object({
    domain                       = string
    cosmos_database              = optional(string)
    cosmos_container             = optional(string)
    event_hub                    = string
    throttled_requests_threshold = optional(number, 10)
    ru_consumption_percent       = optional(number, 90)
    eventhub_throttled_threshold = optional(number, 0)
    server_errors_threshold      = optional(number, 0)
    min_incoming_messages        = optional(number, 0)
    backlog_min_incoming         = optional(number, 100)
    backlog_max_outgoing         = optional(number, 0)
    change_feed_lag_seconds      = optional(number, 0)
  }))

  validation {
    condition     = alltrue([for p in var.products : (p.cosmos_database == null) == (p.cosmos_container == null)])
    error_message = "Give both cosmos_database and cosmos_container, or neither."
  }
}

variable "relay_lag_metric" {
  description = "Where the relay publishes its change-feed lag as an Azure Monitor custom metric on the Cosmos DB account (Azure has no platform metric for it); used by the change_feed_lag alerts."
  type = object({
    namespace = string
    name      = string
    dimension = string
  })
  default = {
    namespace = "meshkit/relay"
    name      = "ChangeFeedLagSeconds"
    dimension = "Container"
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
