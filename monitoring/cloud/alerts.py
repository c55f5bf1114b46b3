"""Multi-window, multi-burn-rate alert policies for every objective (Google SRE workbook, chapter 5).

Per objective and severity, one policy: one PromQL condition per `BurnRateWindow` of that severity,
true while both its long and its short window burn faster than `burn_rate x error budget` (AND inside
the query), the conditions joined by OR. Pages and tickets are separate policies so each has its own
severity and notification channels (routing.py). Policies are written as API JSON to
`build/<domain>/<product>/alert-policies.json`, with `${channel:<key>}` placeholders where channel names
go; `publish_alert_policies` creates the channels, fills the names in and creates or updates policies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from meshkit.config import Settings
from meshkit.errors import ConfigError
from meshkit.products.model import DataProduct
from monitoring.cloud.promql import burn_condition, burn_threshold, duration, number
from monitoring.cloud.routing import (
    AlertSeverity,
    NotificationChannelSpec,
    NotificationRoute,
    ensure_notification_channels,
    route_for,
)
from monitoring.slo.model import DEFAULT_BURN_RATE_WINDOWS, BurnRateWindow, Objective

TEMPLATES_DIR = Path(__file__).parent / "templates"
POLICY_LABEL = "meshkit_policy"  # user label that finds a policy again on the next deploy
API_SEVERITY: dict[AlertSeverity, str] = {"page": "CRITICAL", "ticket": "WARNING"}
AUTO_CLOSE: dict[AlertSeverity, str] = {"page": "1800s", "ticket": "86400s"}
ALERTS_FILE = "alert-policies.json"
_CHECKS: dict[str, tuple[str, ...]] = {
    "freshness": (
        "Lag by partition and largest source lag on the dashboard: which partitions fall behind?",
        "Relay: Cosmos DB throttling (TotalRequests with StatusCode 429) and Event Hubs ThrottledRequests "
        "alerts on Azure; relay process health and its checkpoint blobs advancing.",
        "Pipeline: Dataflow system lag and backlog, worker errors; MERGE duration on the dashboard.",
    ),
    "frequency": (
        "Runs by status and the last completed run on the dashboard: is the pipeline running at all?",
        "Dataflow job state (drained, failed, stuck) and the relay process; Event Hubs incoming messages.",
    ),
    "availability": (
        "Failed runs and their error: run summaries, OpenLineage FAIL events, Dataflow job logs.",
        "Permissions and quotas on BigQuery, GCS and Event Hubs; recent deployments of the pipeline.",
    ),
    "validity": (
        "Dead letters by reason on the dashboard, and the dead-letter output in the lake.",
        "Recent contract changes (`meshkit diff`) and deploys of the producing application.",
    ),
    "completeness": (
        "Conservation: events in against changelog rows, dead letters, duplicates and replays.",
        "BigQuery MERGE and load errors; runs that wrote no changelog rows.",
    ),
}


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _pair_view(objective: Objective, window: BurnRateWindow) -> dict[str, str]:
    spent = window.burn_rate * window.long_window_minutes / (objective.window_days * 1440)
    return {
        "burn_rate": f"{window.burn_rate:g}",
        "long": duration(window.long_window_minutes * 60),
        "short": duration(window.short_window_minutes * 60),
        "threshold": number(burn_threshold(objective, window)),
        "spent": f"{spent:.1%}",
    }


def dashboard_title(product_ref: str, environment: str) -> str:
    return f"meshkit · {product_ref} ({environment})"


def _condition(objective: Objective, window: BurnRateWindow, environment: str) -> dict[str, Any]:
    domain, name = objective.product.split("/", 1)
    pair = _pair_view(objective, window)
    # evaluating a long window every 30 s buys nothing: a tenth of the short window, in 30 s steps
    interval = max(30, (window.short_window_minutes * 6) // 30 * 30)
    rule = f"{domain}_{name}_{objective.kind}_burn_{pair['burn_rate']}x".replace("-", "_").replace(".", "_")
    return {
        "displayName": f"{pair['burn_rate']}× burn over {pair['long']} and {pair['short']}",
        "conditionPrometheusQueryLanguage": {
            "query": burn_condition(objective, window, environment),
            "duration": "0s",
            "evaluationInterval": f"{interval}s",
            "labels": {
                "product": objective.product,
                "slo": objective.kind,
                "severity": window.severity,
                "burn_rate": pair["burn_rate"],
                "long_window": pair["long"],
                "short_window": pair["short"],
            },
            "ruleGroup": f"meshkit-{domain}-{name}",
            "alertRule": rule,
        },
    }


def alert_policies(
    objective: Objective,
    route: NotificationRoute,
    *,
    environment: str,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> list[dict[str, Any]]:
    """The AlertPolicy JSON of one objective: one policy per severity that has windows."""
    domain, name = objective.product.split("/", 1)
    policies: list[dict[str, Any]] = []
    for severity in ("page", "ticket"):
        mine = [w for w in windows if w.severity == severity]
        if not mine:
            continue
        channels = route.channels_for(severity)
        content = (
            _environment()
            .get_template("alert_runbook.md.j2")
            .render(
                product=objective.product,
                domain=domain,
                objective=objective,
                severity=severity,
                bound=duration(objective.threshold_seconds or 0),
                owner=route.owner,
                team=route.team,
                environment=environment,
                pairs=[_pair_view(objective, w) for w in mine],
                checks=_CHECKS.get(objective.kind, ()),
                dashboard=dashboard_title(objective.product, environment),
                channels=[c.display_name for c in channels],
            )
        )
        policies.append(
            {
                "displayName": f"{objective.product} {objective.kind} SLO: error budget burn ({severity})",
                "userLabels": {
                    POLICY_LABEL: f"{domain}-{name}-{objective.kind}-{severity}-{environment}"[:63],
                    "managed_by": "meshkit",
                    "domain": domain,
                    "product": name,
                    "slo": objective.kind,
                    "severity": severity,
                    "environment": environment,
                },
                "documentation": {
                    "content": content,
                    "mimeType": "text/markdown",
                    "subject": f"[{severity.upper()}] {objective.product}: {objective.kind} error budget burning "
                    f"({environment}, owner {route.owner})",
                },
                "conditions": [_condition(objective, w, environment) for w in mine],
                "combiner": "OR",
                "enabled": True,
                "severity": API_SEVERITY[severity],
                "notificationChannels": [c.placeholder for c in channels],
                "alertStrategy": {"autoClose": AUTO_CLOSE[severity], "notificationPrompts": ["OPENED", "CLOSED"]},
            }
        )
    return policies


def product_alert_document(
    product: DataProduct,
    objectives: Sequence[Objective],
    *,
    environment: str,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> dict[str, Any]:
    """Everything one product's alerts need: its channels (without secrets) and its policies."""
    route = route_for(product.ref, product.descriptor)
    return {
        "product": product.ref,
        "environment": environment,
        "owner": route.owner,
        "team": route.team,
        "routingNotes": list(route.notes),
        "notificationChannels": [c.to_document() for c in route.channels],
        "alertPolicies": [
            policy for o in objectives for policy in alert_policies(o, route, environment=environment, windows=windows)
        ],
    }


def _objectives(product: DataProduct, given: Mapping[str, Sequence[Objective]] | None) -> Sequence[Objective]:
    if given is not None:
        return given.get(product.ref, ())
    from monitoring.slo.derive import derive_objectives

    return derive_objectives(product.contract, product.ref)


def write_alert_policies(
    settings: Settings,
    products: Iterable[DataProduct],
    objectives: Mapping[str, Sequence[Objective]] | None = None,
    *,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> list[Path]:
    """Write `build/<domain>/<product>/alert-policies.json` for each product; objectives default to
    those derived from each contract."""
    written: list[Path] = []
    for product in products:
        document = product_alert_document(
            product, _objectives(product, objectives), environment=settings.environment, windows=windows
        )
        path = settings.build_dir / product.domain / product.name / ALERTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def to_alert_policy(policy: Mapping[str, Any], channel_names: Mapping[str, str]) -> Any:
    """A policy's JSON as a `monitoring_v3.AlertPolicy`, its channel placeholders replaced by names."""
    from google.cloud import monitoring_v3

    names = []
    for ref in policy.get("notificationChannels", []):
        key = ref[len("${channel:") : -1] if ref.startswith("${channel:") else None
        if key is None:
            names.append(ref)
        elif key in channel_names:
            names.append(channel_names[key])
        else:
            raise ConfigError(
                f"alert policy {policy.get('displayName')!r} names channel {key!r}, which was not created",
                hint="Deploy the product's notificationChannels first (publish_alert_policies does).",
            )
    return monitoring_v3.AlertPolicy.from_json(json.dumps({**policy, "notificationChannels": names}))


def publish_alert_policies(
    alert_client: Any,
    channel_client: Any,
    project_id: str,
    documents: Iterable[Mapping[str, Any]],
    *,
    environ: Mapping[str, str] | None = None,
    secret_client: Any = None,
) -> list[str]:
    """Create the channels and create or update the policies of each product document (idempotent:
    policies are found again by their `meshkit_policy` label). Returns the policies' resource names."""
    documents = list(documents)
    specs = [NotificationChannelSpec.from_document(e) for d in documents for e in d["notificationChannels"]]
    channel_names = ensure_notification_channels(
        channel_client, project_id, specs, environ=environ, secret_client=secret_client
    )
    parent = f"projects/{project_id}"
    existing = {
        p.user_labels.get(POLICY_LABEL): p.name
        for p in alert_client.list_alert_policies(name=parent)
        if p.user_labels.get(POLICY_LABEL)
    }
    names: list[str] = []
    for document in documents:
        for policy_json in document["alertPolicies"]:
            policy = to_alert_policy(policy_json, channel_names)
            found = existing.get(policy_json["userLabels"][POLICY_LABEL])
            if found:
                policy.name = found
                names.append(alert_client.update_alert_policy(alert_policy=policy).name)
            else:
                names.append(alert_client.create_alert_policy(name=parent, alert_policy=policy).name)
    return names
