variable "project_id" {
  description = "GCP project of the lake (the contract's BigQuery server project)."
  type        = string
}

variable "domain" {
  description = "The product's domain (validated kebab-case name)."
  type        = string
}

variable "product" {
  description = "The product's name (validated kebab-case name)."
  type        = string
}

variable "dataset_id" {
  description = "The domain's BigQuery dataset, created by gcp-platform; the product's tables go in it."
  type        = string
}

variable "masked_dataset_id" {
  description = "The domain's dataset for authorized views of masked consumers (gcp-platform); null when the product has no personal columns."
  type        = string
  default     = null
}

variable "table_prefix" {
  description = "The contract's table name; tables are <prefix>_changelog, <prefix>_current and <prefix>_dead_letters."
  type        = string
}

variable "classification" {
  description = "Highest classification of the contract's columns; confidential, restricted, pii and sensitive require kms_key_name."
  type        = string
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/.../cryptoKeys/...) encrypting the tables and the Dataflow job state."
  type        = string
  default     = null
}

variable "raw_bucket" {
  description = "The lake's raw-zone bucket (gcp-platform)."
  type        = string
}

variable "curated_bucket" {
  description = "The lake's curated-zone bucket (gcp-platform)."
  type        = string
}

variable "object_prefix" {
  description = "The product's object prefix in both buckets: <domain>/<product>/."
  type        = string
}

variable "policy_taxonomy_id" {
  description = "Data Catalog taxonomy of classifications (gcp-platform output policy_taxonomy_id); needed when a column has a policy tag."
  type        = string
  default     = null
}

variable "classification_policy_tags" {
  description = "Parent policy tag id per classification (gcp-platform output classification_policy_tags)."
  type        = map(string)
  default     = {}
}

variable "tables" {
  description = "Columns of each table the pipeline writes (changelog, current, dead_letters, duplicates), as `meshkit infra` derives them from the contract; policy_tag names a classification whose product tag guards the column (column-level security)."
  type = map(list(object({
    name        = string
    type        = string
    mode        = string
    description = optional(string, "")
    policy_tag  = optional(string)
  })))
}

variable "view_columns" {
  description = "Columns the authorized views for masked consumers select (the contract's columns without a policy tag)."
  type        = list(string)
  default     = []
}

variable "table_readers" {
  description = "Table-level IAM: key => {table, role, member}. Roles are limited to BigQuery data roles."
  type = map(object({
    table  = string
    role   = string
    member = string
  }))
  default = {}

  validation {
    condition     = alltrue([for b in values(var.table_readers) : contains(["roles/bigquery.dataViewer", "roles/bigquery.dataEditor"], b.role)])
    error_message = "table_readers roles must be roles/bigquery.dataViewer or roles/bigquery.dataEditor (least privilege)."
  }
  validation {
    condition     = alltrue([for b in values(var.table_readers) : !contains(["allUsers", "allAuthenticatedUsers"], b.member)])
    error_message = "Data products are never public: no allUsers or allAuthenticatedUsers."
  }
}

variable "view_readers" {
  description = "IAM on the authorized views of masked data: key => {view, role, member}."
  type = map(object({
    view   = string
    role   = string
    member = string
  }))
  default = {}

  validation {
    condition     = alltrue([for b in values(var.view_readers) : b.role == "roles/bigquery.dataViewer" && !contains(["allUsers", "allAuthenticatedUsers"], b.member)])
    error_message = "view_readers get roles/bigquery.dataViewer only, and never a public member."
  }
}

variable "bucket_grants" {
  description = "Bucket IAM limited to the product's prefix by an IAM condition: key => {bucket, role, member, condition}."
  type = map(object({
    bucket    = string
    role      = string
    member    = string
    condition = string
  }))
  default = {}

  validation {
    condition     = alltrue([for b in values(var.bucket_grants) : contains(["roles/storage.objectViewer", "roles/storage.objectAdmin"], b.role) && !contains(["allUsers", "allAuthenticatedUsers"], b.member)])
    error_message = "bucket_grants roles must be roles/storage.objectViewer or roles/storage.objectAdmin, never for a public member."
  }
  validation {
    condition     = alltrue([for b in values(var.bucket_grants) : startswith(b.condition, "resource.name.startsWith(\"projects/_/buckets/")])
    error_message = "Every bucket grant needs a prefix condition: resource.name.startsWith(\"projects/_/buckets/<bucket>/objects/<domain>/<product>/\")."
  }
}

variable "policy_tag_readers" {
  description = "Fine-grained readers of the product's policy tags: key => {classification, member}."
  type = map(object({
    classification = string
    member         = string
  }))
  default = {}
}

variable "pipeline_service_account" {
  description = "E-mail of the service account the Dataflow job runs as (the contract's write role)."
  type        = string
  default     = null
}

variable "dataflow_template_gcs_path" {
  description = "gs:// path of the meshkit Flex Template spec; null creates no Dataflow job (and no lag alert)."
  type        = string
  default     = null
}

variable "region" {
  description = "Region of the Dataflow job."
  type        = string
  default     = "southamerica-east1"
}

variable "max_system_lag_seconds" {
  description = "Alert when the Dataflow job's system lag stays above this for 5 minutes."
  type        = number
  default     = 600
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids for the product's alert policies."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Extra labels on every resource."
  type        = map(string)
  default     = {}
}
