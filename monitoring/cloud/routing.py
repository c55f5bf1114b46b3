"""Notification routing to the owning domain, from the product descriptor (`dataproduct.yaml`).

Pages (fast burn) go to the team's on-call channel: a `pagerduty` support entry, or else a PagerDuty
placeholder per team; the team channel sees them too. Tickets (slow burn) go to the team channel only:
its chat or mail channels (`slack` / `email` support entries), or else the owner's e-mail.

Channel specs carry no secret: a Slack token or a PagerDuty service key is read at deploy time from an
environment variable or, failing that, from a Secret Manager secret (`SecretRef`), and sent only to
the Notification Channel API.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from meshkit.errors import ConfigError
from meshkit.products.model import ProductDescriptor

ChannelType = Literal["email", "slack", "pagerduty"]
AlertSeverity = Literal["page", "ticket"]
CHANNEL_LABEL = "meshkit_channel"  # user label that finds a channel again on the next deploy
SLACK_TOKEN = ("MESHKIT_SLACK_AUTH_TOKEN", "meshkit-slack-auth-token")  # one Slack app per workspace


@dataclass(frozen=True)
class SecretRef:
    """Where a channel's secret is read from: the environment variable first, else Secret Manager."""

    env: str
    secret_id: str  # a secret in the monitoring project; its latest version is used
    label: str  # the channel label that carries it ("auth_token", "service_key")

    def to_document(self) -> dict[str, str]:
        return {"env": self.env, "secretManager": self.secret_id, "label": self.label}


@dataclass(frozen=True)
class NotificationChannelSpec:
    """A Cloud Monitoring notification channel, without its secret."""

    key: str  # stable id, also the channel's `meshkit_channel` user label
    type: ChannelType
    display_name: str
    team: str
    labels: tuple[tuple[str, str], ...] = ()
    secret: SecretRef | None = None

    @property
    def placeholder(self) -> str:
        """What an alert policy's `notificationChannels` holds until the channel's name is known."""
        return f"${{channel:{self.key}}}"

    def to_api(self) -> dict[str, Any]:
        """The NotificationChannel JSON (secret labels are added at deploy time only)."""
        return {
            "type": self.type,
            "displayName": self.display_name,
            "description": f"meshkit alerts of team {self.team}",
            "labels": dict(self.labels),
            "userLabels": {CHANNEL_LABEL: self.key, "team": _label_value(self.team), "managed_by": "meshkit"},
            "enabled": True,
        }

    def to_document(self) -> dict[str, Any]:
        return {"key": self.key, "channel": self.to_api(), "secret": self.secret.to_document() if self.secret else None}

    @classmethod
    def from_document(cls, entry: Mapping[str, Any]) -> NotificationChannelSpec:
        channel, secret = entry["channel"], entry.get("secret")
        return cls(
            key=entry["key"],
            type=channel["type"],
            display_name=channel["displayName"],
            team=channel["userLabels"].get("team", ""),
            labels=tuple(sorted(channel.get("labels", {}).items())),
            secret=SecretRef(secret["env"], secret["secretManager"], secret["label"]) if secret else None,
        )


@dataclass(frozen=True)
class NotificationRoute:
    """Who hears about a product's alerts, by severity."""

    product: str
    team: str
    owner: str
    page: tuple[NotificationChannelSpec, ...]
    ticket: tuple[NotificationChannelSpec, ...]
    notes: tuple[str, ...] = ()  # support entries that could not become a channel, and why

    def channels_for(self, severity: AlertSeverity) -> tuple[NotificationChannelSpec, ...]:
        return self.page if severity == "page" else self.ticket

    @property
    def channels(self) -> tuple[NotificationChannelSpec, ...]:
        unique = {c.key: c for c in (*self.page, *self.ticket)}
        return tuple(unique.values())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "default"


def _label_value(text: str) -> str:
    """A Cloud Monitoring user-label value: lower-case letters, digits, `_` and `-`, at most 63."""
    return re.sub(r"[^a-z0-9_-]+", "_", text.lower())[:63]


def _env_suffix(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")


def _email(team: str, address: str) -> NotificationChannelSpec:
    return NotificationChannelSpec(
        key=f"{_slug(team)}-email-{_slug(address)}"[:63],
        type="email",
        display_name=f"{team}: {address}",
        team=team,
        labels=(("email_address", address),),
    )


def _slack(team: str, channel: str) -> NotificationChannelSpec:
    name = channel if channel.startswith("#") else f"#{channel}"
    return NotificationChannelSpec(
        key=f"{_slug(team)}-slack-{_slug(name)}"[:63],
        type="slack",
        display_name=f"{team}: Slack {name}",
        team=team,
        labels=(("channel_name", name),),
        secret=SecretRef(*SLACK_TOKEN, label="auth_token"),
    )


def _pagerduty(team: str, service: str | None) -> NotificationChannelSpec:
    """A PagerDuty channel; without a named service, the team's on-call placeholder."""
    name = service or f"{team} on-call"
    suffix = _env_suffix(service or team)
    return NotificationChannelSpec(
        key=f"{_slug(team)}-oncall-{_slug(service)}"[:63] if service else f"{_slug(team)}-oncall"[:63],
        type="pagerduty",
        display_name=f"{team}: PagerDuty {name}",
        team=team,
        secret=SecretRef(
            f"MESHKIT_PAGERDUTY_SERVICE_KEY_{suffix}", f"meshkit-pagerduty-{_slug(service or team)}", "service_key"
        ),
    )


def route_for(product_ref: str, descriptor: ProductDescriptor) -> NotificationRoute:
    """The route of one product: its descriptor's `support` entries, team and owner."""
    team = descriptor.team.name
    owner = descriptor.owner
    on_call: list[NotificationChannelSpec] = []
    team_channels: list[NotificationChannelSpec] = []
    notes: list[str] = []
    for entry in (descriptor.model_extra or {}).get("support") or []:
        if not isinstance(entry, dict) or not entry.get("channel"):
            notes.append(f"support entry {entry!r} names no channel")
            continue
        tool, channel = str(entry.get("tool", "")).lower(), str(entry["channel"])
        if tool == "slack":
            team_channels.append(_slack(team, channel))
        elif tool == "email":
            team_channels.append(_email(team, channel))
        elif tool == "pagerduty":
            on_call.append(_pagerduty(team, channel))
        else:
            notes.append(f"support tool {tool or '?'!r} ({channel}) has no Cloud Monitoring channel type: not routed")
    if not on_call:
        on_call.append(_pagerduty(team, None))
    if not team_channels:
        if "@" in owner:
            team_channels.append(_email(team, owner))
        else:
            notes.append(f"no slack or email support entry and owner {owner!r} is no e-mail: tickets go on-call")
            team_channels = list(on_call)
    page = {c.key: c for c in (*on_call, *team_channels)}  # the team sees what pages its on-call
    return NotificationRoute(product_ref, team, owner, tuple(page.values()), tuple(team_channels), tuple(notes))


def resolve_secret(
    ref: SecretRef, project_id: str, *, environ: Mapping[str, str] | None = None, secret_client: Any = None
) -> str:
    """The secret's value from `ref.env`, else from Secret Manager through the client handed in."""
    env = os.environ if environ is None else environ
    if env.get(ref.env):
        return env[ref.env]
    if secret_client is not None:
        name = f"projects/{project_id}/secrets/{ref.secret_id}/versions/latest"
        response = secret_client.access_secret_version(name=name)
        return str(response.payload.data.decode("utf-8"))
    raise ConfigError(
        f"no value for the notification channel secret {ref.label!r}",
        hint=f"Set {ref.env} from your secret store, or store it as Secret Manager secret "
        f"{ref.secret_id!r} in project {project_id} and deploy with a Secret Manager client.",
    )


def ensure_notification_channels(
    client: Any,
    project_id: str,
    specs: Iterable[NotificationChannelSpec],
    *,
    environ: Mapping[str, str] | None = None,
    secret_client: Any = None,
) -> dict[str, str]:
    """Create the channels that do not exist yet (found by their `meshkit_channel` label); returns
    key -> channel resource name. Existing channels are left as they are, secrets included."""
    from google.cloud import monitoring_v3

    parent = f"projects/{project_id}"
    names: dict[str, str] = {}
    for channel in client.list_notification_channels(name=parent):
        key = channel.user_labels.get(CHANNEL_LABEL)
        if key:
            names[key] = channel.name
    for spec in {s.key: s for s in specs}.values():
        if spec.key in names:
            continue
        body = spec.to_api()
        if spec.secret is not None:
            body["labels"][spec.secret.label] = resolve_secret(
                spec.secret, project_id, environ=environ, secret_client=secret_client
            )
        created = client.create_notification_channel(
            name=parent, notification_channel=monitoring_v3.NotificationChannel.from_json(json.dumps(body))
        )
        names[spec.key] = created.name
    return names
