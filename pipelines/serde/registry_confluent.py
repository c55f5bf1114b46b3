"""A client of the Confluent Schema Registry REST API (the Kafka surface's registry), over `requests`.

Endpoints: `POST /subjects/{s}/versions` (register), `GET /schemas/ids/{id}`, `GET
/subjects/{s}/versions/latest`, `POST /compatibility/subjects/{s}/versions/latest?verbose=true`,
`PUT|GET /config/{s}`. Credentials (Confluent Cloud API key and secret) come from the environment:
`MESHKIT_REGISTRY_USERNAME` / `MESHKIT_REGISTRY_PASSWORD`, never from settings files.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import requests

from meshkit.errors import ConfigError, TerminalError, TransientError
from pipelines.serde.registry import (
    Compatibility,
    IncompatibleSchemaError,
    RegisteredSchema,
    SchemaId,
    SchemaNotFoundError,
)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SUBJECT_NOT_FOUND, VERSION_NOT_FOUND, SCHEMA_NOT_FOUND = 40401, 40402, 40403


class ConfluentRegistry:
    """`SchemaRegistry` over HTTP; schemas by id are cached (an id's schema never changes)."""

    def __init__(self, url: str, *, session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        user, password = os.environ.get("MESHKIT_REGISTRY_USERNAME"), os.environ.get("MESHKIT_REGISTRY_PASSWORD")
        if user and password:
            self.session.auth = (user, password)
        self.session.headers.update({"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE})
        self._by_id: dict[int, dict[str, Any]] = {}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            # reads and register are idempotent, so a caller may retry a TransientError as it is
            response = self.session.request(
                method, f"{self.url}{path}", data=json.dumps(body) if body is not None else None, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise TransientError(f"schema registry {self.url} unreachable: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text[:200]}
        if response.status_code >= 500:
            raise TransientError(f"schema registry {self.url} answered {response.status_code}: {payload}")
        if response.status_code in (401, 403):
            raise ConfigError(
                f"schema registry {self.url} refused the credentials ({response.status_code})",
                hint="Set MESHKIT_REGISTRY_USERNAME and MESHKIT_REGISTRY_PASSWORD (API key and secret).",
            )
        return response.status_code, payload

    @staticmethod
    def _subject(subject: str) -> str:
        return quote(subject, safe="")

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        body = {"schema": json.dumps(schema, separators=(",", ":")), "schemaType": "AVRO"}
        status, payload = self._call("POST", f"/subjects/{self._subject(subject)}/versions", body)
        if status == 409:
            mode = self.mode(subject)
            raise IncompatibleSchemaError(subject, mode, [str(payload.get("message", payload))])
        if status != 200:
            raise TerminalError(
                f"schema registry refused the schema for {subject!r}: {payload.get('message', payload)}"
            )
        return int(payload["id"])

    def get(self, schema_id: SchemaId) -> dict[str, Any]:
        key = int(schema_id)
        if key not in self._by_id:
            status, payload = self._call("GET", f"/schemas/ids/{key}")
            if status == 404:
                raise SchemaNotFoundError(f"no schema with id {key} in {self.url}")
            if status != 200:
                raise TerminalError(f"schema registry: GET /schemas/ids/{key} answered {status}: {payload}")
            self._by_id[key] = json.loads(payload["schema"])
        return self._by_id[key]

    def latest(self, subject: str) -> RegisteredSchema | None:
        status, payload = self._call("GET", f"/subjects/{self._subject(subject)}/versions/latest")
        if status == 404:
            return None
        if status != 200:
            raise TerminalError(f"schema registry: latest version of {subject!r} answered {status}: {payload}")
        return RegisteredSchema(subject, int(payload["id"]), int(payload["version"]), json.loads(payload["schema"]))

    def check(self, subject: str, schema: dict[str, Any]) -> Compatibility:
        body = {"schema": json.dumps(schema, separators=(",", ":")), "schemaType": "AVRO"}
        path = f"/compatibility/subjects/{self._subject(subject)}/versions/latest?verbose=true"
        status, payload = self._call("POST", path, body)
        if status == 404 and payload.get("error_code") in (SUBJECT_NOT_FOUND, VERSION_NOT_FOUND):
            return Compatibility(True)  # nothing registered yet: anything is compatible
        if status != 200:
            raise TerminalError(f"schema registry: compatibility of {subject!r} answered {status}: {payload}")
        return Compatibility(bool(payload["is_compatible"]), tuple(str(m) for m in payload.get("messages", ())))

    def mode(self, subject: str) -> str:
        status, payload = self._call("GET", f"/config/{self._subject(subject)}?defaultToGlobal=true")
        return str(payload.get("compatibilityLevel", "backward")).lower() if status == 200 else "backward"

    def set_mode(self, subject: str, mode: str) -> None:
        status, payload = self._call("PUT", f"/config/{self._subject(subject)}", {"compatibility": mode.upper()})
        if status != 200:
            raise ConfigError(f"schema registry refused mode {mode!r} for {subject!r}: {payload.get('message')}")
