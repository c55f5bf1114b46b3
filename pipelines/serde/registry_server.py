"""The Confluent Schema Registry REST API served over a `LocalRegistry`, on 127.0.0.1.

For the emulators profile (and its tests): the Kafka surface's producers and the pipeline talk to it
with `ConfluentRegistry`, exactly as they would to Confluent's registry, so the wire protocol is what
is tested. Error bodies follow Confluent's: `{"error_code": 40401, "message": ...}`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from meshkit.errors import ConfigError
from pipelines.serde.registry import REGISTRY_MODES, IncompatibleSchemaError, LocalRegistry, SchemaNotFoundError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
Reply = tuple[int, Any]


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _schema_of(body: dict[str, Any]) -> dict[str, Any]:
    import fastavro

    if body.get("schemaType", "AVRO").upper() != "AVRO":
        raise _ApiError(422, 42201, f"schemaType {body.get('schemaType')!r} is not supported here (AVRO only)")
    try:
        schema: dict[str, Any] = json.loads(body["schema"])
        fastavro.parse_schema(schema, named_schemas={})
    except (KeyError, TypeError, ValueError, fastavro.schema.SchemaParseException) as exc:
        raise _ApiError(422, 42201, f"Invalid schema: {exc}") from exc
    return schema


class RegistryApi:
    """Routes of the REST API over one `LocalRegistry` (no HTTP here, so it is testable alone)."""

    def __init__(self, registry: LocalRegistry) -> None:
        self.registry = registry
        self.global_mode = registry.default_mode
        self.explicit_modes: set[str] = set()
        routes: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", r"/subjects", self.subjects),
            ("GET", r"/subjects/(?P<s>[^/]+)/versions", self.versions),
            ("POST", r"/subjects/(?P<s>[^/]+)/versions", self.register),
            ("GET", r"/subjects/(?P<s>[^/]+)/versions/(?P<v>[^/]+)", self.version),
            ("POST", r"/subjects/(?P<s>[^/]+)", self.lookup),
            ("GET", r"/schemas/ids/(?P<i>\d+)", self.schema),
            ("POST", r"/compatibility/subjects/(?P<s>[^/]+)/versions/(?P<v>[^/]+)", self.compatibility),
            ("GET", r"/config", self.get_global),
            ("PUT", r"/config", self.put_global),
            ("GET", r"/config/(?P<s>[^/]+)", self.get_config),
            ("PUT", r"/config/(?P<s>[^/]+)", self.put_config),
        ]
        self.routes = [(m, re.compile(f"^{p}$"), h) for m, p, h in routes]

    def handle(self, method: str, url: str, body: dict[str, Any] | None) -> Reply:
        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        for verb, pattern, handler in self.routes:
            match = pattern.match(parsed.path.rstrip("/") or "/")
            if verb == method and match:
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                try:
                    return handler(body=body or {}, query=query, **args)
                except _ApiError as exc:
                    return exc.status, {"error_code": exc.code, "message": str(exc)}
        return 404, {"error_code": 404, "message": f"HTTP 404 Not Found: {method} {parsed.path}"}

    def _known(self, s: str) -> list[int]:
        versions = self.registry.versions(s)
        if not versions:
            raise _ApiError(404, 40401, f"Subject '{s}' not found.")
        return versions

    def subjects(self, **_: Any) -> Reply:
        return 200, [s for s in self.registry.subjects() if self.registry.versions(s)]

    def versions(self, s: str, **_: Any) -> Reply:
        return 200, list(range(1, len(self._known(s)) + 1))

    def register(self, s: str, body: dict[str, Any], **_: Any) -> Reply:
        schema = _schema_of(body)
        try:
            return 200, {"id": self.registry.register(s, schema)}
        except IncompatibleSchemaError as exc:
            details = "; ".join(exc.messages)
            message = (
                f'Schema being registered is incompatible with an earlier schema for subject "{s}", '
                f"details: [{details}]"
            )
            raise _ApiError(409, 409, message) from exc

    def _version(self, s: str, v: str) -> dict[str, Any]:
        versions = self._known(s)
        number = len(versions) if v in ("latest", "-1") else int(v) if v.isdigit() else 0
        found = self.registry.version(s, number)
        if found is None:
            raise _ApiError(404, 40402, f"Version {v} not found.")
        return {"subject": s, "id": found.id, "version": found.version, "schema": json.dumps(found.schema)}

    def version(self, s: str, v: str, **_: Any) -> Reply:
        return 200, self._version(s, v)

    def lookup(self, s: str, body: dict[str, Any], **_: Any) -> Reply:
        self._known(s)
        found = self.registry.lookup(s, _schema_of(body))
        if found is None:
            raise _ApiError(404, 40403, "Schema not found")
        return 200, {"subject": s, "id": found.id, "version": found.version, "schema": json.dumps(found.schema)}

    def schema(self, i: str, **_: Any) -> Reply:
        try:
            return 200, {"schema": json.dumps(self.registry.get(int(i)))}
        except SchemaNotFoundError as exc:
            raise _ApiError(404, 40403, "Schema not found") from exc

    def compatibility(self, s: str, v: str, body: dict[str, Any], query: dict[str, str], **_: Any) -> Reply:
        self._version(s, v)
        result = self.registry.check(s, _schema_of(body))
        reply: dict[str, Any] = {"is_compatible": result.compatible}
        if query.get("verbose") == "true":
            reply["messages"] = list(result.messages)
        return 200, reply

    def _mode(self, body: dict[str, Any]) -> str:
        mode = str(body.get("compatibility", "")).lower()
        if mode not in REGISTRY_MODES:
            raise _ApiError(422, 42203, f"Invalid compatibility level {body.get('compatibility')!r}")
        return mode

    def get_global(self, **_: Any) -> Reply:
        return 200, {"compatibilityLevel": self.global_mode.upper()}

    def put_global(self, body: dict[str, Any], **_: Any) -> Reply:
        self.global_mode = self.registry.default_mode = self._mode(body)  # type: ignore[assignment]
        return 200, {"compatibility": self.global_mode.upper()}

    def get_config(self, s: str, query: dict[str, str], **_: Any) -> Reply:
        if s not in self.explicit_modes and query.get("defaultToGlobal") != "true":
            raise _ApiError(404, 40408, f"Subject '{s}' does not have subject-level compatibility configured")
        return 200, {"compatibilityLevel": self.registry.mode(s).upper()}

    def put_config(self, s: str, body: dict[str, Any], **_: Any) -> Reply:
        mode = self._mode(body)
        try:
            self.registry.set_mode(s, mode)
        except ConfigError as exc:
            raise _ApiError(422, 42203, exc.reason) from exc
        self.explicit_modes.add(s)
        return 200, {"compatibility": mode.upper()}


class RegistryServer:
    """`RegistryServer(registry).start()` serves on 127.0.0.1 (a free port unless given); `url` to connect."""

    def __init__(self, registry: LocalRegistry, port: int = 0) -> None:
        api = RegistryApi(registry)

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, reply = 422, {"error_code": 42201, "message": "the request body is not JSON"}
                else:
                    status, reply = api.handle(self.command, self.path, body)
                data = json.dumps(reply).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="schema-registry", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RegistryServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
