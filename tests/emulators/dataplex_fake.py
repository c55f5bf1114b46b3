"""A Dataplex Catalog fake that speaks the real wire protocol: a gRPC server on 127.0.0.1 serving
`google.cloud.dataplex.v1.CatalogService` with the API's own protobuf messages, so the real
`google-cloud-dataplex` client talks to it unchanged.

Dataplex has no emulator. Like the Cloud Monitoring fake beside it, this registers generic method
handlers under the API's method paths and records every request. It keeps what was created and
enforces what the service would: resource names of the right form, parents that exist, entry types
and aspect types that exist, required aspects present, `aspects` in the update mask, and aspect data
that fits its aspect type's metadata template (field names, types, enums, required fields). Creates
answer with a finished long-running operation, as the service does once it is done.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.cloud import dataplex_v1
from google.cloud.dataplex_v1.services.catalog_service.transports import CatalogServiceGrpcTransport
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, json_format

SERVICE = "google.cloud.dataplex.v1.CatalogService"
_PARENT = re.compile(r"^projects/[^/]+/locations/[^/]+$")
_ENTRY = re.compile(r"^(?P<group>projects/[^/]+/locations/[^/]+/entryGroups/[a-z][a-z0-9-]{0,62})/entries/[^/]+$")
_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_SYSTEM_ASPECTS = {"dataplex-types.global.schema"}  # system aspect types every project can use
_SCHEMA_FIELD_KEYS = {"name", "dataType", "metadataType", "mode", "description", "defaultValue", "fields"}
_METADATA_TYPES = {"BOOLEAN", "NUMBER", "STRING", "BYTES", "DATETIME", "TIMESTAMP", "GEOSPATIAL", "STRUCT", "OTHER"}
_MODES = {"NULLABLE", "REPEATED", "REQUIRED"}


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> _Abort:
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, message)


class DataplexCatalogFake:
    """CatalogService: aspect types, entry types, entry groups and entries of any project."""

    def __init__(self) -> None:
        self.port = 0
        self._server: grpc.Server | None = None
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()
        self.reset()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._guard(name, fn), request_deserializer=request.deserialize, response_serializer=serialize
            )
            for name, (fn, request, serialize) in self._methods().items()
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self._channel = grpc.insecure_channel(self.target)

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._server is not None:
            self._server.stop(grace=None).wait()
        self._server = self._channel = None

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, list[Any]] = defaultdict(list)
            self.aspect_types: dict[str, Any] = {}
            self.entry_types: dict[str, Any] = {}
            self.entry_groups: dict[str, Any] = {}
            self.entries: dict[str, Any] = {}

    def client(self) -> dataplex_v1.CatalogServiceClient:
        """The real client, over an insecure channel to this server."""
        return dataplex_v1.CatalogServiceClient(transport=CatalogServiceGrpcTransport(channel=self._channel))

    # --- dispatch --------------------------------------------------------------------------------

    def _methods(self) -> dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], bytes]]]:
        d = dataplex_v1
        operation = operations_pb2.Operation.SerializeToString
        return {
            "GetAspectType": (self._getter("aspect_types"), d.GetAspectTypeRequest, d.AspectType.serialize),
            "CreateAspectType": (self._create_aspect_type, d.CreateAspectTypeRequest, operation),
            "GetEntryType": (self._getter("entry_types"), d.GetEntryTypeRequest, d.EntryType.serialize),
            "CreateEntryType": (self._create_entry_type, d.CreateEntryTypeRequest, operation),
            "GetEntryGroup": (self._getter("entry_groups"), d.GetEntryGroupRequest, d.EntryGroup.serialize),
            "CreateEntryGroup": (self._create_entry_group, d.CreateEntryGroupRequest, operation),
            "GetEntry": (self._getter("entries"), d.GetEntryRequest, d.Entry.serialize),
            "UpdateEntry": (self._update_entry, d.UpdateEntryRequest, d.Entry.serialize),
        }

    def _guard(self, method: str, fn: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.requests[method].append(request)
                try:
                    return fn(request)
                except _Abort as abort:
                    failure = (abort.code, abort.message)
            context.abort(*failure)
            raise AssertionError("context.abort returns only by raising")

        return handle

    def _getter(self, attribute: str) -> Callable[[Any], Any]:
        """Get<Resource> over one of the stores (looked up per call: reset() replaces them)."""
        return lambda request: self._get(attribute, request)

    def _get(self, attribute: str, request: Any) -> Any:
        store: dict[str, Any] = getattr(self, attribute)
        if request.name not in store:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
        return store[request.name]

    @staticmethod
    def _done(message: Any, name: str) -> operations_pb2.Operation:
        """A finished long-running operation whose response is `message`."""
        response = any_pb2.Any()
        response.Pack(type(message).pb(message))
        return operations_pb2.Operation(name=f"{name}/operations/1", done=True, response=response)

    def _create(self, store: dict[str, Any], parent: str, resource_id: str, kind: str, resource: Any) -> Any:
        if not _PARENT.match(parent):
            raise _invalid(f"parent {parent!r} is not projects/<project>/locations/<location>")
        if not _ID.match(resource_id):
            raise _invalid(f"{kind} id {resource_id!r} must be lower case letters, digits and hyphens")
        name = f"{parent}/{kind}s/{resource_id}"
        if name in store:
            raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"{name} already exists")
        resource.name = name
        store[name] = resource
        return self._done(resource, parent)

    # --- types and groups ------------------------------------------------------------------------

    def _create_aspect_type(self, request: Any) -> Any:
        template = request.aspect_type.metadata_template
        if template.type_ != "record" or not template.record_fields:
            raise _invalid("an aspect type's metadata template must be a record with fields")
        _check_template(template, "metadataTemplate")
        return self._create(
            self.aspect_types, request.parent, request.aspect_type_id, "aspectType", request.aspect_type
        )

    def _create_entry_type(self, request: Any) -> Any:
        for required in request.entry_type.required_aspects:
            if required.type_ not in self.aspect_types:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"required aspect type {required.type_} does not exist")
        return self._create(self.entry_types, request.parent, request.entry_type_id, "entryType", request.entry_type)

    def _create_entry_group(self, request: Any) -> Any:
        return self._create(
            self.entry_groups, request.parent, request.entry_group_id, "entryGroup", request.entry_group
        )

    # --- entries ---------------------------------------------------------------------------------

    def _update_entry(self, request: Any) -> Any:
        entry = request.entry
        match = _ENTRY.match(entry.name)
        if not match:
            raise _invalid(f"entry name {entry.name!r} is not …/entryGroups/<group>/entries/<entry>")
        if match["group"] not in self.entry_groups:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"entry group {match['group']} does not exist")
        exists = entry.name in self.entries
        if not exists and not request.allow_missing:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"entry {entry.name} does not exist (allow_missing is false)")
        entry_type = self.entry_types.get(entry.entry_type)
        if entry_type is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"entry type {entry.entry_type!r} does not exist")
        paths = set(request.update_mask.paths)
        if entry.aspects and paths and "aspects" not in paths:
            raise _invalid("aspects are sent but the update mask does not name `aspects`")
        for key in request.aspect_keys:
            if key not in entry.aspects:
                raise _invalid(f"aspect key {key!r} names no aspect of the request")
        for key, aspect in entry.aspects.items():
            self._check_aspect(key, aspect)
        for required in entry_type.required_aspects:
            key = self._aspect_key(required.type_)
            if key not in entry.aspects and not (exists and key in self.entries[entry.name].aspects):
                raise _invalid(f"entry type {entry.entry_type} requires aspect {key}")
        stored = self.entries.get(entry.name) or dataplex_v1.Entry(name=entry.name, entry_type=entry.entry_type)
        if not paths or "entry_source" in paths:
            stored.entry_source = entry.entry_source
        if not paths or "aspects" in paths:
            for key, aspect in entry.aspects.items():
                stored.aspects[key] = aspect
        self.entries[entry.name] = stored
        return stored

    @staticmethod
    def _aspect_key(aspect_type: str) -> str:
        """`projects/p/locations/l/aspectTypes/t` -> `p.l.t`."""
        parts = aspect_type.split("/")
        return f"{parts[1]}.{parts[3]}.{parts[5]}"

    def _check_aspect(self, key: str, aspect: Any) -> None:
        data = json_format.MessageToDict(type(aspect).pb(aspect)).get("data", {})
        if key in _SYSTEM_ASPECTS:
            _check_schema(data.get("fields", []), "schema.fields")
            return
        project, location, type_id = [*key.split("."), "", ""][:3]
        name = f"projects/{project}/locations/{location}/aspectTypes/{type_id}"
        aspect_type = self.aspect_types.get(name)
        if aspect_type is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"aspect type {name} (key {key!r}) does not exist")
        _check_value(data, aspect_type.metadata_template, key)


def _check_template(template: Any, where: str) -> None:
    kinds = {"string", "int", "bool", "double", "datetime", "record", "enum", "map", "array"}
    if template.type_ not in kinds:
        raise _invalid(f"{where}: type {template.type_!r} is not one of {sorted(kinds)}")
    indexes = [f.index for f in template.record_fields]
    if template.type_ == "record" and (0 in indexes or len(set(indexes)) != len(indexes)):
        raise _invalid(f"{where}: record fields need distinct, positive indexes")
    for f in template.record_fields:
        _check_template(f, f"{where}.{f.name}")
    if template.type_ == "array":
        _check_template(template.array_items, f"{where}[]")
    if template.type_ == "enum" and not template.enum_values:
        raise _invalid(f"{where}: an enum needs values")


def _check_value(value: Any, template: Any, where: str) -> None:
    """Does `value` (JSON) fit the metadata template, as the service checks aspect data?"""
    kind = template.type_
    ok = {
        "string": lambda v: isinstance(v, str),
        "datetime": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer(),
        "enum": lambda v: v in {e.name for e in template.enum_values},
        "record": lambda v: isinstance(v, dict),
        "map": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }[kind]
    if not ok(value):
        raise _invalid(f"{where}: {value!r} is not a valid {kind}")
    if kind == "record":
        fields = {f.name: f for f in template.record_fields}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise _invalid(f"{where}: fields {unknown} are not in the aspect type")
        for name, f in fields.items():
            if name in value:
                _check_value(value[name], f, f"{where}.{name}")
            elif f.constraints.required:
                raise _invalid(f"{where}: required field {name!r} is missing")
    elif kind == "array":
        for i, item in enumerate(value):
            _check_value(item, template.array_items, f"{where}[{i}]")


def _check_schema(fields: Any, where: str) -> None:
    """The system schema aspect: named fields with a data type, a metadata type and a mode."""
    if not isinstance(fields, list) or not fields:
        raise _invalid(f"{where}: a schema needs fields")
    for i, f in enumerate(fields):
        at = f"{where}[{i}]"
        if not isinstance(f, dict) or set(f) - _SCHEMA_FIELD_KEYS:
            raise _invalid(f"{at}: unknown keys {sorted(set(f) - _SCHEMA_FIELD_KEYS) if isinstance(f, dict) else f}")
        if not f.get("name") or not f.get("dataType"):
            raise _invalid(f"{at}: name and dataType are required")
        if f.get("metadataType", "OTHER") not in _METADATA_TYPES or f.get("mode", "NULLABLE") not in _MODES:
            raise _invalid(f"{at}: metadataType {f.get('metadataType')!r} or mode {f.get('mode')!r} is invalid")
        if "fields" in f:
            _check_schema(f["fields"], f"{at}.fields")
