"""SLOs from contracts: objectives, error budgets, burn-rate alerts, dashboards."""
