output "kms_key_name" {
  description = "Cloud KMS key of the lake; pass it as kms_key_name to product stacks of classified data."
  value       = google_kms_crypto_key.lake.id
}

output "dataset_ids" {
  description = "Dataset ids by name (<domain> and <domain>_masked)."
  value       = { for k, d in google_bigquery_dataset.domain : k => d.dataset_id }
}

output "bucket_names" {
  description = "Bucket names by zone (raw, curated)."
  value       = { for k, b in google_storage_bucket.zone : k => b.name }
}

output "policy_taxonomy_id" {
  description = "The classification taxonomy (product stacks' policy_taxonomy_id)."
  value       = google_data_catalog_taxonomy.classification.id
}

output "classification_policy_tags" {
  description = "Policy tag id per classification (product stacks' classification_policy_tags)."
  value       = { for k, t in google_data_catalog_policy_tag.classification : k => t.id }
}

output "service_account_emails" {
  description = "Pipeline service account e-mails by account id."
  value       = { for k, sa in google_service_account.pipeline : k => sa.email }
}

output "service_account_unique_ids" {
  description = "Numeric unique ids of the pipeline service accounts: the subjects Azure federated credentials trust."
  value       = { for k, sa in google_service_account.pipeline : k => sa.unique_id }
}

output "workload_identity_pool_name" {
  description = "Full name of the Azure workload identity pool, or null."
  value       = one(google_iam_workload_identity_pool.azure[*].name)
}
