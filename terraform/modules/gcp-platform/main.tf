# The GCP half of the mesh platform: a CMEK key for classified data, one dataset per domain (plus one
# for authorized views of masked data), the raw and curated buckets, the classification taxonomy for
# column-level security, product pipeline service accounts and workload identity federation for
# Azure identities. No service-account keys anywhere. See README.md.

locals {
  labels = merge(var.labels, { environment = var.environment, managed-by = "meshkit" })
  datasets = merge(
    { for d in var.domains : d => "Data products of the ${d} domain." },
    { for d in var.domains : "${d}_masked" => "Authorized views of masked ${d} data for consumers without access to personal columns." },
  )
  zones = toset(["raw", "curated"])
  federated = flatten([
    for sa, ids in var.azure_federated_identities : [for id in ids : { sa = sa, object_id = id }]
  ])
}

data "google_project" "this" {
  project_id = var.project_id
}

data "google_bigquery_default_service_account" "this" {
  project = var.project_id
}

data "google_storage_project_service_account" "this" {
  project = var.project_id
}

# --- encryption ------------------------------------------------------------------------------------

resource "google_kms_key_ring" "lake" {
  project  = var.project_id
  name     = "meshkit-${var.environment}"
  location = var.location
}

resource "google_kms_crypto_key" "lake" {
  name            = "lake"
  key_ring        = google_kms_key_ring.lake.id
  rotation_period = var.key_rotation_period
  labels          = local.labels

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = {
    bigquery = "serviceAccount:${data.google_bigquery_default_service_account.this.email}"
    storage  = "serviceAccount:${data.google_storage_project_service_account.this.email_address}"
    dataflow = "serviceAccount:service-${data.google_project.this.number}@dataflow-service-producer-prod.iam.gserviceaccount.com"
    compute  = "serviceAccount:service-${data.google_project.this.number}@compute-system.iam.gserviceaccount.com"
  }

  crypto_key_id = google_kms_crypto_key.lake.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}

# --- warehouse and lake ----------------------------------------------------------------------------

resource "google_bigquery_dataset" "domain" {
  for_each = local.datasets

  project                    = var.project_id
  dataset_id                 = each.key
  location                   = var.location
  description                = each.value
  labels                     = local.labels
  delete_contents_on_destroy = false

  default_encryption_configuration {
    kms_key_name = google_kms_crypto_key.lake.id
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

resource "google_storage_bucket" "zone" {
  for_each = local.zones

  project                     = var.project_id
  name                        = "${var.lake_bucket_prefix}-${each.key}"
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = merge(local.labels, { zone = each.key })

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.lake.id
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

# --- column-level security -------------------------------------------------------------------------

resource "google_data_catalog_taxonomy" "classification" {
  project                = var.project_id
  region                 = var.location
  display_name           = "meshkit-${var.environment}-classification"
  description            = "Classifications of the data contracts; each product adds its own child tag."
  activated_policy_types = ["FINE_GRAINED_ACCESS_CONTROL"]
}

resource "google_data_catalog_policy_tag" "classification" {
  for_each = var.classifications

  taxonomy     = google_data_catalog_taxonomy.classification.id
  display_name = each.key
  description  = "Columns classified ${each.key} in their data contract."
}

# --- identities ------------------------------------------------------------------------------------

resource "google_service_account" "pipeline" {
  for_each = var.service_accounts

  project      = var.project_id
  account_id   = each.key
  display_name = each.key
  description  = each.value
}

resource "google_project_iam_member" "pipeline" {
  for_each = { for pair in setproduct(keys(var.service_accounts), var.pipeline_project_roles) : "${pair[0]} ${pair[1]}" => { sa = pair[0], role = pair[1] } }

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.pipeline[each.value.sa].email}"
}

resource "google_iam_workload_identity_pool" "azure" {
  count = var.azure_tenant_id == null ? 0 : 1

  project                   = var.project_id
  workload_identity_pool_id = "meshkit-${var.environment}-azure"
  display_name              = "meshkit ${var.environment} Azure"
  description               = "Azure managed identities of the mesh (relays), federated without keys."
}

resource "google_iam_workload_identity_pool_provider" "azure" {
  count = var.azure_tenant_id == null ? 0 : 1

  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.azure[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "entra"
  attribute_mapping = {
    "google.subject" = "assertion.sub"
  }
  attribute_condition = "assertion.tid == \"${var.azure_tenant_id}\""

  oidc {
    issuer_uri        = "https://login.microsoftonline.com/${var.azure_tenant_id}/v2.0"
    allowed_audiences = ["api://meshkit-${var.environment}-gcp"]
  }
}

resource "google_service_account_iam_member" "azure_workload" {
  for_each = var.azure_tenant_id == null ? {} : { for f in local.federated : "${f.sa} ${f.object_id}" => f }

  service_account_id = google_service_account.pipeline[each.value.sa].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.azure[0].name}/subject/${each.value.object_id}"
}
