"""Which OpenLineage transport a run uses, and a spool so that a down lineage backend never fails a run.

Resolution order and spool guarantees: docs/lineage-transports.md. The user's configuration is found and
built by openlineage-python itself; without one, events are appended as NDJSON to `settings.lineage_path`;
a configuration that cannot be built is a ConfigError, never the console. Remote transports (all but file,
console, noop) are wrapped in a `SpoolingTransport` (its on-disk `LineageSpool` is in `spool.py`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

import yaml
from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from openlineage.client.transport import CompositeTransport, KafkaTransport, Transport, get_default_factory
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpTransport
from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

from meshkit.config import Settings
from meshkit.errors import ConfigError, Location
from monitoring.lineage.spool import Delivery, LineageSpool

if TYPE_CHECKING:
    from openlineage.client.client import Event

log = logging.getLogger(__name__)

# Client-added facets stay off: no environment value (possibly a secret) and no git remote URL
# (possibly with a token in it) reaches an event. Overrides the same keys in openlineage.yml.
CLIENT_FACETS: dict[str, Any] = {"environment_variables": [], "source_code_location": {"disabled": True}}
LOCAL_KINDS = frozenset({"file", "console", "noop"})
# 4xx answers about the backend or our credentials, not about the event: the event is kept and re-sent.
# Every other 4xx means the backend will never take this event: it goes to rejected.ndjson.
RETRYABLE_4XX = frozenset({401, 403, 404, 407, 408, 429})
# One urllib3 attempt per call when the user set no `retry`: DeliveryPolicy retries, the spool keeps.
_SINGLE_ATTEMPT = {**DEFAULT_RETRY_CONFIG, "total": 0, "connect": 0, "read": 0, "status": 0, "status_forcelist": []}
_USERINFO = re.compile(r"[^\s/@'\"]+@")  # user:password@ in a URL, with or without a scheme
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:api[_-]?key|apikey|token|access_token|sig|secret|password)=)[^&\s]+")
_OUTAGE = (
    "lineage backend %s did not accept events (%s); they wait in %s and are re-sent, in order, on the next emit or run"
)
_STRANDED = "%s holds lineage events for a remote transport that is no longer configured; they wait until it is"
_warned: set[str] = set()  # spools (and the no-op) already announced in this process


@dataclass(frozen=True)
class DeliveryPolicy:
    """Bounded on purpose: a down backend costs a run about a second, the spool keeps the events."""

    attempts: int = 2
    backoff_s: float = 0.5
    # after a failed delivery, later emits in this process go straight to the spool for this long
    cooldown_s: float = 30.0


def redact(text: str) -> str:
    """Drop user:password@ from URLs and the values of token-like query parameters (for errors and logs)."""
    return _SECRET_PARAM.sub(r"\1<redacted>", _USERINFO.sub("", text))


def backend_label(transport: Transport) -> str:
    """Where a transport sends events, for logs: scheme, host, port and path, never credentials."""
    if isinstance(transport, HttpTransport):
        parts = urlsplit(urljoin(transport.url, transport.endpoint))
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if isinstance(transport, KafkaTransport):
        servers = str(transport.kafka_config.config.get("bootstrap.servers", "?"))
        return redact(f"kafka://{servers.split(',', maxsplit=1)[0]}/{transport.topic}")
    return f"{transport.kind} transport" + (f" {transport.name!r}" if transport.name else "")


class SpoolingTransport(Transport):
    """Sends through `inner`; what the backend does not acknowledge waits in a `LineageSpool`, in order.

    A failed send never raises into the run. Spooled events are re-sent, oldest first, before every new
    event and when the next run's client is created; the backend receives the same bytes each time.
    """

    kind = "spooling"

    def __init__(self, inner: Transport, spool: LineageSpool, policy: DeliveryPolicy | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.priority = inner.priority
        self.spool = spool
        self.policy = policy or DeliveryPolicy()
        self.backend = backend_label(inner)
        self._quiet_until = 0.0

    def emit(self, event: Event) -> None:
        line = Serde.to_json(event)
        with self.spool.locked():
            waiting = self._drain_locked()
            if waiting or time.monotonic() < self._quiet_until:
                self.spool.append(line)  # behind the older events: order is kept
                self._announce_outage("earlier events are still waiting")
                return
            delivery = self._deliver(event)
            if delivery.result == "rejected":
                self._reject(line, delivery)
            elif delivery.result == "kept":
                self.spool.append(line)
                self._announce_outage(delivery.reason)

    def drain(self) -> int:
        """Re-send spooled events, oldest first; returns how many are still waiting."""
        with self.spool.locked():
            return self._drain_locked()

    def close(self, timeout: float = -1) -> bool:
        return self.inner.close(timeout)

    def _drain_locked(self) -> int:
        pending = self.spool.pending()
        if not pending or time.monotonic() < self._quiet_until:
            return len(pending)
        done, sent, delivery = 0, 0, Delivery("sent")
        for line in pending:
            # openlineage-python's transports serialize with Serde.to_json, which takes this dict as it
            # is: the backend receives byte for byte what the first attempt sent.
            delivery = self._deliver(cast("Event", json.loads(line)))
            if delivery.result == "kept":
                break
            if delivery.result == "rejected":
                self._reject(line, delivery)
            else:
                sent += 1
            self.spool.mark_sent(line)
            done += 1
        if done:
            self.spool.rewrite(pending[done:])
        if sent:
            log.info("re-sent %d spooled lineage event(s) to %s", sent, self.backend)
        if done < len(pending):
            self._announce_outage(delivery.reason)
        else:
            _warned.discard(str(self.spool.path))  # recovered: the next outage is announced again
        return len(pending) - done

    def _deliver(self, event: Event) -> Delivery:
        """Bounded attempts; failures reported as exceptions or as an error response are both handled."""
        delivery = Delivery("kept", reason="not attempted")
        for attempt in range(max(1, self.policy.attempts)):
            if attempt:
                time.sleep(self.policy.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.inner.emit(event)
            except Exception as exc:  # any transport's failure is classified here, never raised into the run
                status = _http_status(exc)
                delivery = Delivery("kept", status, type(exc).__name__ + (f" (HTTP {status})" if status else ""))
            else:
                status = getattr(response, "status_code", None)  # HttpTransport returns the requests.Response
                if not isinstance(status, int) or status < 400:
                    return Delivery("sent")
                delivery = Delivery("kept", status, f"HTTP {status}")
            if delivery.status is not None and 400 <= delivery.status < 500 and delivery.status not in RETRYABLE_4XX:
                return replace(delivery, result="rejected")  # the event itself is refused: retrying cannot help
        self._quiet_until = time.monotonic() + self.policy.cooldown_s
        return delivery

    def _reject(self, line: str, delivery: Delivery) -> None:
        self.spool.reject(line, delivery, self.backend)
        log.error(
            "lineage backend %s refused an event (%s); it is kept in %s for inspection and not re-sent",
            self.backend,
            delivery.reason,
            self.spool.rejected_path,
        )

    def _announce_outage(self, reason: str) -> None:
        _announce_once(str(self.spool.path), _OUTAGE, self.backend, reason, self.spool.path)


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an exception (requests' HTTPError carries the response), if any."""
    for error in (exc, exc.__cause__, exc.__context__):
        status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
    return None


def valid_transport_types() -> list[str]:
    return sorted(get_default_factory().transports)


def client_for(settings: Settings, policy: DeliveryPolicy | None = None) -> OpenLineageClient:
    """The run's OpenLineage client: the user's transport (spooled when remote) or the NDJSON default.

    Events spooled by earlier runs are re-sent before this returns.
    """
    policy = policy or DeliveryPolicy()
    default = FileTransport(FileConfig(log_file_path=str(settings.lineage_path), append=True))
    client = _client(default, "the default file transport")  # reads openlineage.yml and OPENLINEAGE__*
    if client.transport.kind != "noop":  # noop here means OPENLINEAGE_DISABLED=true
        source = _user_config_source(client)
        if source is not None:
            client = _client(None, source)  # openlineage-python resolves the user's transport itself
    if client.transport.kind == "noop":
        _announce_once(
            "noop", "OpenLineage is disabled (OPENLINEAGE_DISABLED or transport `noop`): no lineage events are emitted"
        )
        return client
    spoolers: list[SpoolingTransport] = []
    client.transport = _wrap(client.transport, settings.workspace_dir / "lineage", None, policy, spoolers)
    for spooler in spoolers:
        spooler.drain()
    stranded = [] if spoolers else list((settings.workspace_dir / "lineage").glob("spool*.ndjson"))
    for spool in sorted(p for p in stranded if p.stat().st_size):
        _announce_once(str(spool), _STRANDED, spool)
    return client


def _client(transport: Transport | None, source: str) -> OpenLineageClient:
    try:
        return OpenLineageClient(transport=transport, config={"facets": CLIENT_FACETS})
    except Exception as exc:  # openlineage-python raises ValueError, TypeError, KeyError, RuntimeError, ImportError
        raise ConfigError(
            f"cannot build the OpenLineage transport from {source}: {redact(str(exc)) or type(exc).__name__}",
            hint="Correct that configuration, or remove it to use the default NDJSON file. "
            f"Valid transport types are: {', '.join(valid_transport_types())}.",
        ) from exc


def _user_config_source(client: OpenLineageClient) -> str | None:
    """Where the user configured an OpenLineage transport, or None when nothing is configured."""
    path = OpenLineageClient._find_yaml_config_path()  # openlineage-python's own search order
    in_yaml = path is not None and bool(_read_yaml(Path(path)).get("transport"))
    source = str(path) if in_yaml else "the OPENLINEAGE__TRANSPORT__* environment variables"
    transport = client.config.transport or {}
    if transport.get("type"):
        _check_types(transport, "transport", source)
        return source
    if os.environ.get("OPENLINEAGE_URL"):
        return "the OPENLINEAGE_URL environment variable"
    if transport:
        raise ConfigError(
            f"the OpenLineage transport configured in {source} has no `type`",
            hint="Set `transport.type` (environment OPENLINEAGE__TRANSPORT__TYPE). "
            f"Valid values are: {', '.join(valid_transport_types())}.",
        )
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    """openlineage-python logs and ignores a broken openlineage.yml; we stop with its location instead."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"cannot read the OpenLineage configuration: {getattr(exc, 'problem', None) or exc}",
            location=Location(str(path), mark.line + 1 if mark is not None else None),
            hint="Fix the YAML, or remove the file to use the default NDJSON file.",
        ) from exc
    return data if isinstance(data, dict) else {}


def _check_types(config: Mapping[str, Any], key: str, source: str) -> None:
    """Unknown types named with their key and the valid values, composite children included."""
    kind = config.get("type")
    valid = valid_transport_types()
    env = "OPENLINEAGE__" + key.replace(".", "__").upper() + "__TYPE"
    if not isinstance(kind, str) or (kind not in valid and "." not in kind):
        what = f"unknown OpenLineage transport type {kind!r}" if kind else "missing OpenLineage transport type"
        raise ConfigError(
            f"{what} at `{key}.type` in {source} (environment variable {env})",
            hint=f"Valid values are: {', '.join(valid)}, or a Transport class by its dotted import path.",
        )
    if kind == "composite":
        children = config.get("transports") or []
        named = children.items() if isinstance(children, Mapping) else enumerate(children)
        for name, child in named:
            if isinstance(child, Mapping) and child:
                _check_types(child, f"{key}.transports.{name}", source)


def _wrap(
    transport: Transport, directory: Path, name: str | None, policy: DeliveryPolicy, out: list[SpoolingTransport]
) -> Transport:
    """Remote transports get a spool each (named after composite children); local ones stay as they are."""
    if isinstance(transport, CompositeTransport):
        children = transport.transports  # the cached list CompositeTransport.emit iterates: wrapped in place
        for i, child in enumerate(children):
            child_name = child.name or f"{child.kind}{i}"
            children[i] = _wrap(child, directory, f"{name}-{child_name}" if name else child_name, policy, out)
        return transport
    if isinstance(transport, FileTransport):
        path = transport.config.log_file_path
        if "://" not in path or path.startswith("file://"):
            Path(path.removeprefix("file://")).parent.mkdir(parents=True, exist_ok=True)
    if transport.kind in LOCAL_KINDS:
        return transport
    if isinstance(transport, HttpTransport):
        if transport.config.retry is DEFAULT_RETRY_CONFIG:  # the user set no `retry`: keep runs short
            transport.config.retry = dict(_SINGLE_ATTEMPT)
        else:
            policy = replace(policy, attempts=1)  # the user's own urllib3 retry policy is the retry
    spooler = SpoolingTransport(transport, LineageSpool(directory, name), policy)
    out.append(spooler)
    return spooler


def _announce_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)
