variable "project_id" {
  description = "GCP project of the lake."
  type        = string
}

variable "location" {
  description = "Location of datasets, buckets, keys and the taxonomy (e.g. southamerica-east1)."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod, ...), used in names and labels."
  type        = string
}

variable "domains" {
  description = "Domains of the mesh; each gets a dataset <domain> and, for authorized views of masked data, <domain>_masked."
  type        = set(string)
}

variable "lake_bucket_prefix" {
  description = "Buckets are <prefix>-raw and <prefix>-curated (meshkit setting lake_bucket_prefix)."
  type        = string
  default     = "meshkit-lake"
}

variable "classifications" {
  description = "Classifications that get a policy tag (column-level security) and are encrypted with the lake's CMEK."
  type        = set(string)
  default     = ["confidential", "restricted"]
}

variable "key_rotation_period" {
  description = "Rotation period of the lake's Cloud KMS key."
  type        = string
  default     = "7776000s" # 90 days
}

variable "service_accounts" {
  description = "Product pipeline service accounts: account id => description. They get only the project roles in pipeline_project_roles; data roles come from each product stack."
  type        = map(string)
  default     = {}
}

variable "pipeline_project_roles" {
  description = "Project roles every pipeline service account needs and that grant no data access."
  type        = set(string)
  default     = ["roles/dataflow.worker", "roles/dataflow.developer", "roles/bigquery.jobUser", "roles/monitoring.metricWriter", "roles/logging.logWriter"]

  validation {
    condition     = length(setintersection(var.pipeline_project_roles, ["roles/owner", "roles/editor", "roles/viewer", "roles/bigquery.dataEditor", "roles/bigquery.dataViewer", "roles/bigquery.admin", "roles/storage.admin", "roles/storage.objectAdmin", "roles/storage.objectViewer"])) == 0
    error_message = "Project-level roles must not grant data access (basic roles, BigQuery or Storage data roles): grant those per product."
  }
}

variable "azure_tenant_id" {
  description = "Entra ID tenant whose managed identities (the relays) may impersonate GCP service accounts through workload identity federation; null for none."
  type        = string
  default     = null
}

variable "azure_federated_identities" {
  description = "Workload identity federation: GCP service account id (from service_accounts) => Entra object ids of the Azure managed identities allowed to act as it (e.g. a relay writing metrics)."
  type        = map(list(string))
  default     = {}
}

variable "labels" {
  description = "Extra labels on every resource."
  type        = map(string)
  default     = {}
}
