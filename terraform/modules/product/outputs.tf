output "table_ids" {
  description = "BigQuery table ids by kind (changelog, current, dead_letters)."
  value       = { for k, t in google_bigquery_table.product : k => t.id }
}

output "view_ids" {
  description = "Authorized view ids for masked consumers by kind (empty without personal columns)."
  value       = { for k, v in google_bigquery_table.masked_view : k => v.id }
}

output "policy_tags" {
  description = "The product's policy tag names by classification."
  value       = { for k, t in google_data_catalog_policy_tag.product : k => t.name }
}

output "dataflow_job_id" {
  description = "Id of the product's Dataflow job, or null when none is created."
  value       = one(google_dataflow_flex_template_job.pipeline[*].job_id)
}
