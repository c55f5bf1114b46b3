# Azure Monitor metric alerts for the Azure half of the mesh: Cosmos DB (the source) and Event Hubs (the
# bus), one action group per owning domain. The SLO burn-rate alerts live in Cloud Monitoring (generated
# by meshkit from the contracts); these catch the Azure-side causes early. See README.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 3.80"
    }
  }
}

locals {
  base = "${var.name_prefix}-${var.environment}"

  # product refs contain "/", which Azure names do not allow
  slug = { for ref, _ in var.products : ref => replace(ref, "/", "-") }

  cosmos_products = { for ref, p in var.products : ref => p if p.cosmos_container != null }
  lag_products    = { for ref, p in local.cosmos_products : ref => p if p.change_feed_lag_seconds > 0 }
  stall_products  = { for ref, p in var.products : ref => p if p.min_incoming_messages > 0 }

  unknown_domains = setsubtract(toset([for p in var.products : p.domain]), toset(keys(var.domains)))
}

resource "terraform_data" "domains_known" {
  lifecycle {
    precondition {
      condition     = length(local.unknown_domains) == 0
      error_message = "Products name domains without an action group: ${join(", ", local.unknown_domains)}. Add them to var.domains."
    }
  }
}

resource "azurerm_monitor_action_group" "domain" {
  for_each = var.domains

  name                = "${local.base}-${each.key}"
  resource_group_name = var.resource_group_name
  short_name          = each.value.short_name
  tags                = merge(var.tags, { domain = each.key })

  dynamic "email_receiver" {
    for_each = each.value.emails
    content {
      name                    = email_receiver.key
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }

  dynamic "webhook_receiver" {
    for_each = toset(each.value.webhooks)
    content {
      name                    = webhook_receiver.value
      service_uri             = var.webhook_uris[webhook_receiver.value]
      use_common_alert_schema = true
    }
  }
}

# --- Cosmos DB -----------------------------------------------------------------------------------

resource "azurerm_monitor_metric_alert" "cosmos_throttled" {
  for_each = local.cosmos_products

  name                = "${local.base}-${local.slug[each.key]}-cosmos-throttled"
  resource_group_name = var.resource_group_name
  scopes              = [var.cosmosdb_account_id]
  description         = "${each.key}: Cosmos DB answered 429 (request rate too large) on ${each.value.cosmos_database}/${each.value.cosmos_container}; the relay's change-feed reads are slowed and freshness suffers."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace = "Microsoft.DocumentDB/databaseAccounts"
    metric_name      = "TotalRequests"
    aggregation      = "Count"
    operator         = "GreaterThan"
    threshold        = each.value.throttled_requests_threshold

    dimension {
      name     = "StatusCode"
      operator = "Include"
      values   = ["429"]
    }
    dimension {
      name     = "DatabaseName"
      operator = "Include"
      values   = [each.value.cosmos_database]
    }
    dimension {
      name     = "CollectionName"
      operator = "Include"
      values   = [each.value.cosmos_container]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}

resource "azurerm_monitor_metric_alert" "cosmos_ru_saturation" {
  for_each = local.cosmos_products

  name                = "${local.base}-${local.slug[each.key]}-cosmos-ru-saturation"
  resource_group_name = var.resource_group_name
  scopes              = [var.cosmosdb_account_id]
  description         = "${each.key}: a partition of ${each.value.cosmos_container} used more than ${each.value.ru_consumption_percent}% of its request units; throttling (and change-feed lag) follows."
  severity            = 3
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace = "Microsoft.DocumentDB/databaseAccounts"
    metric_name      = "NormalizedRUConsumption"
    aggregation      = "Maximum"
    operator         = "GreaterThan"
    threshold        = each.value.ru_consumption_percent

    dimension {
      name     = "CollectionName"
      operator = "Include"
      values   = [each.value.cosmos_container]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}

# Azure exposes no change-feed lag metric (the estimator is an SDK feature); the relay measures the lag
# itself and publishes it as a custom metric. skip_metric_validation lets the rule exist before the first
# value is published.
resource "azurerm_monitor_metric_alert" "change_feed_lag" {
  for_each = local.lag_products

  name                = "${local.base}-${local.slug[each.key]}-change-feed-lag"
  resource_group_name = var.resource_group_name
  scopes              = [var.cosmosdb_account_id]
  description         = "${each.key}: the relay is more than ${each.value.change_feed_lag_seconds} s behind the change feed of ${each.value.cosmos_container}."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace       = var.relay_lag_metric.namespace
    metric_name            = var.relay_lag_metric.name
    aggregation            = "Maximum"
    operator               = "GreaterThan"
    threshold              = each.value.change_feed_lag_seconds
    skip_metric_validation = true

    dimension {
      name     = var.relay_lag_metric.dimension
      operator = "Include"
      values   = [each.value.cosmos_container]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}

# --- Event Hubs ----------------------------------------------------------------------------------

resource "azurerm_monitor_metric_alert" "eventhub_throttled" {
  for_each = var.products

  name                = "${local.base}-${local.slug[each.key]}-eventhub-throttled"
  resource_group_name = var.resource_group_name
  scopes              = [var.eventhub_namespace_id]
  description         = "${each.key}: Event Hubs throttled requests on ${each.value.event_hub}; the namespace is out of throughput/processing units."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "ThrottledRequests"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = each.value.eventhub_throttled_threshold

    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = [each.value.event_hub]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}

resource "azurerm_monitor_metric_alert" "eventhub_server_errors" {
  for_each = var.products

  name                = "${local.base}-${local.slug[each.key]}-eventhub-server-errors"
  resource_group_name = var.resource_group_name
  scopes              = [var.eventhub_namespace_id]
  description         = "${each.key}: Event Hubs server errors on ${each.value.event_hub}; the relay retries, the pipeline's reads may stall."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "ServerErrors"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = each.value.server_errors_threshold

    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = [each.value.event_hub]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}

# Incoming vs outgoing: metric alerts cannot subtract two metrics, so the imbalance is two criteria that
# must hold together: messages keep arriving, and (almost) none are read.
resource "azurerm_monitor_metric_alert" "eventhub_backlog" {
  for_each = var.products

  name                = "${local.base}-${local.slug[each.key]}-eventhub-backlog"
  resource_group_name = var.resource_group_name
  scopes              = [var.eventhub_namespace_id]
  description         = "${each.key}: more than ${each.value.backlog_min_incoming} messages reached ${each.value.event_hub} in 15 min while at most ${each.value.backlog_max_outgoing} were read; the pipeline is not consuming."
  severity            = 2
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "IncomingMessages"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = each.value.backlog_min_incoming

    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = [each.value.event_hub]
    }
  }

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "OutgoingMessages"
    aggregation      = "Total"
    operator         = "LessThanOrEqual"
    threshold        = each.value.backlog_max_outgoing

    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = [each.value.event_hub]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}

# Change-feed stall proxy from platform metrics alone: the relay stopped forwarding the product's changes.
resource "azurerm_monitor_metric_alert" "change_feed_stall" {
  for_each = local.stall_products

  name                = "${local.base}-${local.slug[each.key]}-change-feed-stall"
  resource_group_name = var.resource_group_name
  scopes              = [var.eventhub_namespace_id]
  description         = "${each.key}: fewer than ${each.value.min_incoming_messages} messages reached ${each.value.event_hub} in 15 min; the relay may have stopped reading the change feed."
  severity            = 1
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = merge(var.tags, { product = local.slug[each.key], domain = each.value.domain })

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "IncomingMessages"
    aggregation      = "Total"
    operator         = "LessThan"
    threshold        = each.value.min_incoming_messages

    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = [each.value.event_hub]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.domain[each.value.domain].id
  }

  depends_on = [terraform_data.domains_known]
}
