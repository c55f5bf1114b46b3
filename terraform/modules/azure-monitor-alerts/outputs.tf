output "action_group_ids" {
  description = "Action group id per owning domain, for other alert rules that should reach the same people."
  value       = { for domain, group in azurerm_monitor_action_group.domain : domain => group.id }
}

output "metric_alert_ids" {
  description = "Metric alert rule ids by kind, then by product reference (<domain>/<product>)."
  value = {
    cosmos_throttled       = { for ref, alert in azurerm_monitor_metric_alert.cosmos_throttled : ref => alert.id }
    cosmos_ru_saturation   = { for ref, alert in azurerm_monitor_metric_alert.cosmos_ru_saturation : ref => alert.id }
    change_feed_lag        = { for ref, alert in azurerm_monitor_metric_alert.change_feed_lag : ref => alert.id }
    change_feed_stall      = { for ref, alert in azurerm_monitor_metric_alert.change_feed_stall : ref => alert.id }
    eventhub_throttled     = { for ref, alert in azurerm_monitor_metric_alert.eventhub_throttled : ref => alert.id }
    eventhub_server_errors = { for ref, alert in azurerm_monitor_metric_alert.eventhub_server_errors : ref => alert.id }
    eventhub_backlog       = { for ref, alert in azurerm_monitor_metric_alert.eventhub_backlog : ref => alert.id }
  }
}
