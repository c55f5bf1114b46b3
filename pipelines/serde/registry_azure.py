"""Azure Schema Registry (Event Hubs namespace) through its SDK, `azure.schemaregistry.SchemaRegistryClient`.

A subject is a schema name inside one schema group; ids are GUID strings. The service enforces the
group's compatibility mode (set on the group, in Azure, not from here) when a version is registered;
`check` answers from the same Avro rules (`meshkit.contracts.avro_compat`) against the latest version,
under `mode`. Credentials: Azure AD (`DefaultAzureCredential`: managed or workload identity), never keys.
Events on Event Hubs then carry the Avro body with content type `avro/binary+<id>`, the format the
SDK's `AvroEncoder` writes and reads (`pipelines.serde.avro` reads and writes it too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from meshkit.errors import ConfigError, TerminalError, TransientError
from pipelines.serde.registry import (
    Compatibility,
    IncompatibleSchemaError,
    RegisteredSchema,
    SchemaId,
    SchemaNotFoundError,
    compatibility_messages,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.schemaregistry import SchemaRegistryClient


class AzureSchemaRegistry:
    """`SchemaRegistry` over one schema group of an Event Hubs namespace."""

    def __init__(
        self,
        fully_qualified_namespace: str,
        group: str,
        *,
        credential: TokenCredential | None = None,
        client: SchemaRegistryClient | None = None,
        mode: str = "backward",
        **client_options: Any,
    ) -> None:
        self.namespace, self.group, self.mode = fully_qualified_namespace, group, mode
        if client is None:
            from azure.schemaregistry import SchemaRegistryClient

            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            client = SchemaRegistryClient(fully_qualified_namespace, credential, **client_options)
        self.client = client
        self._by_id: dict[str, dict[str, Any]] = {}

    def _call(self, what: str, call: Any) -> Any:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        try:
            return call()
        except ClientAuthenticationError as exc:
            raise ConfigError(
                f"Azure Schema Registry {self.namespace} refused the credential: {exc.message}",
                hint="Grant the identity Schema Registry Reader (Contributor to register) on the namespace.",
            ) from exc
        except ServiceRequestError as exc:
            raise TransientError(f"Azure Schema Registry {self.namespace} unreachable ({what}): {exc}") from exc
        except HttpResponseError as exc:
            if exc.status_code is not None and (exc.status_code >= 500 or exc.status_code == 429):
                raise TransientError(f"Azure Schema Registry {what}: {exc.message}") from exc
            raise

    def register(self, subject: str, schema: dict[str, Any]) -> str:
        from azure.core.exceptions import HttpResponseError

        definition = json.dumps(schema, separators=(",", ":"))
        try:
            props = self._call(
                f"register {subject}",
                lambda: self.client.register_schema(self.group, subject, definition, "Avro"),
            )
        except HttpResponseError as exc:
            if exc.status_code in (400, 409):
                raise IncompatibleSchemaError(subject, self.mode, [str(exc.message)]) from exc
            raise TerminalError(f"Azure Schema Registry refused {subject!r}: {exc.message}") from exc
        self._by_id[props.id] = schema
        return str(props.id)

    def get(self, schema_id: SchemaId) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError

        key = str(schema_id)
        if key not in self._by_id:
            try:
                found = self._call(f"get {key}", lambda: self.client.get_schema(key))
            except HttpResponseError as exc:
                if exc.status_code == 404:
                    raise SchemaNotFoundError(f"no schema with id {key} in {self.namespace}") from exc
                raise TerminalError(f"Azure Schema Registry: get {key}: {exc.message}") from exc
            self._by_id[key] = json.loads(found.definition)
        return self._by_id[key]

    def latest(self, subject: str) -> RegisteredSchema | None:
        from azure.core.exceptions import HttpResponseError

        try:
            # the public client of azure-schemaregistry 1.3 has no version listing; its generated client does
            listing = self.client._generated_client.list_schema_versions
            versions = self._call(f"versions of {subject}", lambda: list(listing(self.group, subject)))
            if not versions:
                return None
            found = self._call(
                f"latest {subject}",
                lambda: self.client.get_schema(group_name=self.group, name=subject, version=max(versions)),
            )
        except HttpResponseError as exc:
            if exc.status_code == 404:
                return None
            raise TerminalError(f"Azure Schema Registry: latest {subject}: {exc.message}") from exc
        schema = json.loads(found.definition)
        self._by_id[found.properties.id] = schema
        return RegisteredSchema(subject, str(found.properties.id), int(found.properties.version), schema)

    def check(self, subject: str, schema: dict[str, Any]) -> Compatibility:
        latest = self.latest(subject)
        messages = compatibility_messages(self.mode, [latest.schema] if latest else [], schema)
        return Compatibility(not messages, tuple(messages))
