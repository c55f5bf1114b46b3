# One data product on GCP: its BigQuery tables (with policy tags on personal columns), authorized
# views for masked consumers, table- and prefix-scoped IAM, the Dataflow job and its lag alert.
# Nothing here is granted at project or dataset level. See README.md.

locals {
  suffixes        = toset(keys(var.tables))
  consumer_tables = toset(["changelog", "current"])
  cmek_required   = contains(["confidential", "restricted", "pii", "sensitive"], var.classification)
  tagged          = toset(flatten([for columns in values(var.tables) : [for c in columns : c.policy_tag if c.policy_tag != null]]))
  slug            = "${var.domain}-${var.product}"
  labels = merge(var.labels, {
    domain         = var.domain
    product        = var.product
    classification = var.classification
    managed-by     = "meshkit"
  })

  # every table's columns come from `meshkit infra` (the contract's schema through meshkit's one type
  # mapping, plus the pipeline's own columns); policy tags guard the classified columns
  schemas = {
    for table, columns in var.tables : table => [
      for c in columns : merge(
        { name = c.name, type = c.type, mode = c.mode, description = c.description },
        c.policy_tag == null ? {} : { policyTags = { names = [google_data_catalog_policy_tag.product[c.policy_tag].name] } },
      )
    ]
  }
  table_suffix = { for s in local.suffixes : "${var.table_prefix}_${s}" => s }
}

resource "terraform_data" "cmek_present" {
  lifecycle {
    precondition {
      condition     = !local.cmek_required || var.kms_key_name != null
      error_message = "The contract holds ${var.classification} data: set kms_key_name (a customer-managed key) for ${local.slug}."
    }
  }
}

# --- column-level security: the product's own tag under each classification --------------------

resource "google_data_catalog_policy_tag" "product" {
  for_each = local.tagged

  taxonomy          = var.policy_taxonomy_id
  parent_policy_tag = var.classification_policy_tags[each.key]
  display_name      = "${local.slug}-${each.key}"
  description       = "Columns of ${var.domain}/${var.product} classified ${each.key}; fine-grained readers only."
}

resource "google_data_catalog_policy_tag_iam_member" "reader" {
  for_each = var.policy_tag_readers

  policy_tag = google_data_catalog_policy_tag.product[each.value.classification].name
  role       = "roles/datacatalog.categoryFineGrainedReader"
  member     = each.value.member
}

# --- tables ----------------------------------------------------------------------------------------

resource "google_bigquery_table" "product" {
  for_each = local.suffixes

  project             = var.project_id
  dataset_id          = var.dataset_id
  table_id            = "${var.table_prefix}_${each.key}"
  deletion_protection = true
  labels              = local.labels
  schema              = jsonencode(local.schemas[each.key])

  dynamic "encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }

  depends_on = [terraform_data.cmek_present]
}

resource "google_bigquery_table_iam_member" "reader" {
  for_each = var.table_readers

  project    = var.project_id
  dataset_id = var.dataset_id
  table_id   = google_bigquery_table.product[local.table_suffix[each.value.table]].table_id
  role       = each.value.role
  member     = each.value.member
}

# --- authorized views for masked consumers ---------------------------------------------------------

resource "google_bigquery_table" "masked_view" {
  # checkov:skip=CKV_GCP_80: a view stores no data, so there is nothing to encrypt
  # checkov:skip=CKV_GCP_121: views are replaced when the contract's columns change; they hold no data
  for_each = var.masked_dataset_id == null ? toset([]) : local.consumer_tables

  project             = var.project_id
  dataset_id          = var.masked_dataset_id
  table_id            = "${var.table_prefix}_${each.key}"
  deletion_protection = false
  labels              = local.labels

  view {
    query          = "SELECT ${join(", ", [for c in var.view_columns : "`${c}`"])} FROM `${var.project_id}.${var.dataset_id}.${google_bigquery_table.product[each.key].table_id}`"
    use_legacy_sql = false
  }
}

resource "google_bigquery_dataset_access" "authorized_view" {
  for_each = google_bigquery_table.masked_view

  project    = var.project_id
  dataset_id = var.dataset_id
  view {
    project_id = var.project_id
    dataset_id = each.value.dataset_id
    table_id   = each.value.table_id
  }
}

resource "google_bigquery_table_iam_member" "view_reader" {
  for_each = var.view_readers

  project    = var.project_id
  dataset_id = var.masked_dataset_id
  table_id   = google_bigquery_table.masked_view[local.table_suffix[each.value.view]].table_id
  role       = each.value.role
  member     = each.value.member
}

# --- lake prefixes ---------------------------------------------------------------------------------

resource "google_storage_bucket_iam_member" "prefix" {
  for_each = var.bucket_grants

  bucket = each.value.bucket
  role   = each.value.role
  member = each.value.member

  condition {
    title       = "${local.slug}-prefix"
    description = "Only objects under ${var.object_prefix}"
    expression  = each.value.condition
  }
}

# --- pipeline and its alert ------------------------------------------------------------------------

resource "google_dataflow_flex_template_job" "pipeline" {
  provider = google-beta
  count    = var.dataflow_template_gcs_path != null && var.pipeline_service_account != null ? 1 : 0

  project                 = var.project_id
  name                    = local.slug
  region                  = var.region
  container_spec_gcs_path = var.dataflow_template_gcs_path
  service_account_email   = var.pipeline_service_account
  kms_key_name            = var.kms_key_name
  ip_configuration        = "WORKER_IP_PRIVATE"
  enable_streaming_engine = true
  on_delete               = "drain"
  labels                  = local.labels
  parameters = {
    product = "${var.domain}/${var.product}"
  }
}

resource "google_monitoring_alert_policy" "system_lag" {
  count = length(google_dataflow_flex_template_job.pipeline)

  project               = var.project_id
  display_name          = "${local.slug}: Dataflow system lag"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "system lag above ${var.max_system_lag_seconds}s for 5 minutes"
    condition_threshold {
      filter          = "resource.type = \"dataflow_job\" AND metric.type = \"dataflow.googleapis.com/job/system_lag\" AND resource.label.job_name = \"${local.slug}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.max_system_lag_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}
