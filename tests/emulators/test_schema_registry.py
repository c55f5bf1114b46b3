"""Schema registries over their real wire protocols, on 127.0.0.1.

- Confluent REST: `ConfluentRegistry` against `RegistryServer` (the REST API over a `LocalRegistry`),
  and Avro events in the Confluent wire format through the Kafka broker (Tansu) and back.
- Azure Schema Registry: the SDK's own `SchemaRegistryClient` and `AvroEncoder` against a local server
  answering the service's REST shape (`/$schemaGroups/...?api-version=2022-10`). The SDK hard-codes
  `https://<namespace>` and its bearer-token policy refuses plain HTTP, so the test hands it an HTTP
  transport that sends the (https, token-carrying) request to the local server over http: every policy
  of the SDK runs as in the cloud, only the socket is local.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import requests

from meshkit.contracts.avro import envelope_schema
from meshkit.contracts.avro_compat import check_compatibility
from meshkit.contracts.model import load_contract
from pipelines.serde.avro import AvroProducer, decode, decode_batch
from pipelines.serde.registry import IncompatibleSchemaError, LocalRegistry, SchemaNotFoundError
from pipelines.serde.registry_azure import AzureSchemaRegistry
from pipelines.serde.registry_confluent import ConfluentRegistry
from pipelines.serde.registry_server import RegistryServer
from pipelines.transports.factory import open_transport

if TYPE_CHECKING:
    from kafka_service import KafkaBroker

pytestmark = pytest.mark.emulator
pytest_plugins = ("kafka_service",)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = load_contract(ROOT / "domains" / "payments" / "transactions" / "datacontract.yaml")
SCHEMA = envelope_schema(CONTRACT)
DOC: dict[str, Any] = {
    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "customerId": "9b2e1c4d-0000-4000-8000-000000000001",
    "method": "card_credit",
    "direction": "debit",
    "amount": 99.9,
    "currency": "BRL",
    "status": "authorized",
    "occurred_at": "2026-11-01T10:00:00Z",
    "updated_at": "2026-11-01T10:00:00Z",
    "_lsn": 7,
    "_ts": 1793527200,
}
SIMPLE = {"type": "record", "name": "r", "namespace": "t", "fields": [{"name": "a", "type": "long"}]}


@pytest.fixture(scope="module")
def confluent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(LocalRegistry(tmp_path_factory.mktemp("registry"))).start()
    try:
        yield server
    finally:
        server.close()


def _subject() -> str:
    return f"t{uuid.uuid4().hex[:8]}-value"


def test_register_twice_gives_the_same_id_and_reads_back(confluent: RegistryServer) -> None:
    client, subject = ConfluentRegistry(confluent.url), _subject()
    first = client.register(subject, SIMPLE)
    assert client.register(subject, SIMPLE) == first
    assert client.register(_subject(), SIMPLE) == first  # global ids across subjects
    assert ConfluentRegistry(confluent.url).get(first) == SIMPLE  # a fresh client asks the server
    latest = client.latest(subject)
    assert latest is not None and (latest.id, latest.version) == (first, 1)
    assert client.latest(_subject()) is None
    with pytest.raises(SchemaNotFoundError):
        client.get(987654)


def test_incompatible_register_is_409_with_the_reason(confluent: RegistryServer) -> None:
    client, subject = ConfluentRegistry(confluent.url), _subject()
    client.register(subject, SIMPLE)
    required = {**SIMPLE, "fields": [*SIMPLE["fields"], {"name": "b", "type": "string"}]}
    raw = requests.post(
        f"{confluent.url}/subjects/{subject}/versions",
        data=json.dumps({"schema": json.dumps(required)}),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=5,
    )
    assert raw.status_code == 409 and raw.json()["error_code"] == 409
    assert "incompatible" in raw.json()["message"] and "'b'" in raw.json()["message"]
    check = client.check(subject, required)
    assert not check and "'b'" in check.messages[0]
    with pytest.raises(IncompatibleSchemaError, match="BACKWARD"):
        client.register(subject, required)
    client.set_mode(subject, "none")
    assert client.mode(subject) == "none" and client.register(subject, required) > 0
    assert client.check(_subject(), required)  # nothing registered: compatible


def test_error_codes_follow_confluent(confluent: RegistryServer) -> None:
    base = confluent.url
    assert requests.get(f"{base}/subjects/nope-value/versions", timeout=5).json()["error_code"] == 40401
    assert requests.get(f"{base}/schemas/ids/424242", timeout=5).json()["error_code"] == 40403
    bad = requests.post(f"{base}/subjects/x-value/versions", data=json.dumps({"schema": "{"}), timeout=5)
    assert (bad.status_code, bad.json()["error_code"]) == (422, 42201)
    level = requests.put(f"{base}/config/x-value", data=json.dumps({"compatibility": "SIDEWAYS"}), timeout=5)
    assert level.json()["error_code"] == 42203


def test_avro_events_through_kafka_and_the_rest_registry(confluent: RegistryServer, kafka_broker: KafkaBroker) -> None:
    registry = ConfluentRegistry(confluent.url)
    topic = f"avro-{uuid.uuid4().hex[:8]}"
    documents = [{**DOC, "id": str(uuid.UUID(int=i + 1)), "_lsn": i} for i in range(200)]
    with closing(AvroProducer(open_transport(kafka_broker.spec(topic, 3)), registry, f"{topic}-value", SCHEMA)) as bus:
        bus.publish([(d["id"], json.dumps(d).encode(), {"lsn": str(d["_lsn"])}) for d in documents])
        records = [r for p, end in bus.end_offsets().items() for batch in bus.read(p, 0, end) for r in batch]
    assert len(records) == len(documents)
    assert all(r.body[0] == 0 and r.properties["contentType"] == "application/vnd.confluent.avro" for r in records)
    reader = ConfluentRegistry(confluent.url)  # the pipeline's own client: ids resolved over HTTP
    events, reasons = decode_batch([r.body for r in records], reader, SCHEMA)
    assert reasons == [None] * len(records)
    assert sorted(e["_lsn"] for e in events if e) == list(range(200))
    assert all(e is not None and e["amount"] == "99.90" for e in events)


# --- Azure Schema Registry: the SDK against a local server shaped like the service ------------------

GROUP = "meshkit"
NAMESPACE = "meshkit-test.servicebus.windows.net"


class _AzureRegistryService:
    """Answers the Schema Registry data-plane REST calls (api-version 2022-10) and records each request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.schemas: dict[str, str] = {}  # id -> definition
        self.versions: dict[tuple[str, str], list[str]] = {}  # (group, name) -> ids
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                service.requests.append(
                    {
                        "method": self.command,
                        "path": unquote(url.path),
                        "query": parse_qs(url.query),
                        "content_type": self.headers.get("Content-Type"),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                status, headers, payload = service.answer(self.command, unquote(url.path), body)
                data = payload.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def _props(self, schema_id: str, group: str, name: str) -> dict[str, str]:
        version = self.versions[(group, name)].index(schema_id) + 1
        return {
            "Schema-Id": schema_id,
            "Schema-Id-Location": f"https://{NAMESPACE}/$schemagroups/$schemas/{schema_id}?api-version=2022-10",
            "Schema-Group-Name": group,
            "Schema-Name": name,
            "Schema-Version": str(version),
            "Location": f"https://{NAMESPACE}/$schemagroups/{group}/schemas/{name}/versions/{version}",
        }

    def _find(self, schema_id: str) -> tuple[str, str]:
        return next(k for k, ids in self.versions.items() if schema_id in ids)

    def answer(self, method: str, path: str, body: str) -> tuple[int, dict[str, str], str]:
        avro = {"Content-Type": "application/json;serialization=Avro"}
        if m := re.fullmatch(r"/\$schemaGroups/([^/]+)/schemas/([^/:]+)", path):
            group, name = m.groups()
            ids = self.versions.setdefault((group, name), [])
            same = next((i for i in ids if self.schemas[i] == body), None)
            if same is None:
                problems = (
                    check_compatibility(json.loads(self.schemas[ids[-1]]), json.loads(body), "backward") if ids else []
                )
                if problems:
                    error = {"error": {"code": "InvalidSchema", "message": f"Schema is incompatible: {problems[0]}"}}
                    return 400, {"Content-Type": "application/json"}, json.dumps(error)
                same = uuid.uuid4().hex
                self.schemas[same] = body
                ids.append(same)
            return 204, self._props(same, group, name), ""
        if m := re.fullmatch(r"/\$schemaGroups/([^/]+)/schemas/([^/]+):get-id", path):
            group, name = m.groups()
            same = next((i for i in self.versions.get((group, name), []) if self.schemas[i] == body), None)
            if same is None:
                return 404, {"Content-Type": "application/json"}, json.dumps({"error": {"code": "ItemNotFound"}})
            return 204, self._props(same, group, name), ""
        if m := re.fullmatch(r"/\$schemaGroups/\$schemas/([^/]+)", path):
            if m.group(1) not in self.schemas:
                return 404, {"Content-Type": "application/json"}, json.dumps({"error": {"code": "ItemNotFound"}})
            return 200, {**avro, **self._props(m.group(1), *self._find(m.group(1)))}, self.schemas[m.group(1)]
        if m := re.fullmatch(r"/\$schemaGroups/([^/]+)/schemas/([^/]+)/versions", path):
            versions = list(range(1, len(self.versions.get(m.groups(), [])) + 1))
            return 200, {"Content-Type": "application/json"}, json.dumps({"Value": versions})
        if m := re.fullmatch(r"/\$schemaGroups/([^/]+)/schemas/([^/]+)/versions/(\d+)", path):
            group, name, version = m.groups()
            schema_id = self.versions[(group, name)][int(version) - 1]
            return 200, {**avro, **self._props(schema_id, group, name)}, self.schemas[schema_id]
        return 404, {"Content-Type": "application/json"}, json.dumps({"error": {"code": "NotFound", "path": path}})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Credential:
    """An Azure AD credential stand-in: the SDK's bearer-token policy asks it for a token."""

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        assert scopes == ("https://eventhubs.azure.net/.default",)
        return AccessToken("test-token", int(time.time()) + 3600)


def _local_transport(port: int) -> Any:
    from azure.core.pipeline.transport import RequestsTransport

    class LocalHttp(RequestsTransport):
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace(f"https://{NAMESPACE}", f"http://127.0.0.1:{port}", 1)
            return super().send(request, **kwargs)

    return LocalHttp()


@pytest.fixture
def azure_service() -> Iterator[_AzureRegistryService]:
    service = _AzureRegistryService()
    try:
        yield service
    finally:
        service.close()


def _sdk_client(service: _AzureRegistryService) -> Any:
    from azure.schemaregistry import SchemaRegistryClient

    return SchemaRegistryClient(NAMESPACE, _Credential(), transport=_local_transport(service.port), retry_total=0)


def test_azure_registry_requests_have_the_service_shape(azure_service: _AzureRegistryService) -> None:
    registry = AzureSchemaRegistry(NAMESPACE, GROUP, client=_sdk_client(azure_service))
    subject = "payments.transactions-value"
    schema_id = registry.register(subject, SCHEMA)
    assert registry.register(subject, SCHEMA) == schema_id
    put = azure_service.requests[0]
    assert (put["method"], put["path"]) == ("PUT", f"/$schemaGroups/{GROUP}/schemas/{subject}")
    assert put["query"] == {"api-version": ["2022-10"]}
    assert put["content_type"] == "application/json; serialization=Avro"
    assert put["authorization"] == "Bearer test-token"
    fresh = AzureSchemaRegistry(NAMESPACE, GROUP, client=_sdk_client(azure_service))
    assert fresh.get(schema_id) == SCHEMA
    assert azure_service.requests[-1]["path"] == f"/$schemaGroups/$schemas/{schema_id}"
    latest = fresh.latest(subject)
    assert latest is not None and (latest.id, latest.version) == (schema_id, 1)
    required = {**SIMPLE, "fields": [*SIMPLE["fields"], {"name": "b", "type": "string"}]}
    fresh.register("s-value", SIMPLE)
    assert not fresh.check("s-value", required)
    with pytest.raises(IncompatibleSchemaError, match="incompatible"):
        fresh.register("s-value", required)
    with pytest.raises(SchemaNotFoundError):
        fresh.get("0" * 32)


def test_azure_avro_encoder_interoperates_with_meshkit(azure_service: _AzureRegistryService) -> None:
    """Events meshkit writes for Event Hubs decode with the SDK's AvroEncoder, and the other way round."""
    from azure.schemaregistry.encoder.avroencoder import AvroEncoder

    registry = AzureSchemaRegistry(NAMESPACE, GROUP, client=_sdk_client(azure_service))
    producer = AvroProducer(None, registry, "payments.transactions-value", SCHEMA, framing="azure")  # type: ignore[arg-type]
    body, props = producer.serialise(DOC)
    encoder = AvroEncoder(client=_sdk_client(azure_service), group_name=GROUP, auto_register=True)
    decoded = encoder.decode({"content": body, "content_type": props["contentType"]})
    assert decoded["id"] == DOC["id"] and str(decoded["amount"]) == "99.90" and decoded["_lsn"] == 7

    sdk_message = encoder.encode(producer._convert(DOC), schema=json.dumps(SCHEMA))
    event, schema_id = decode(sdk_message["content"], registry, SCHEMA, content_type=sdk_message["content_type"])
    assert sdk_message["content_type"] == f"avro/binary+{schema_id}"
    assert event["amount"] == "99.90" and event["occurred_at"] == "2026-11-01T10:00:00+00:00"
