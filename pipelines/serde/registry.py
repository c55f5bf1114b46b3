"""Schema registries: one protocol, a file-backed local registry, and the factory that picks one per profile.

`LocalRegistry` (local and emulators profiles) keeps Confluent's semantics: a schema's id is global
and stable (the same schema text under any subject has one id), ids only grow and are never reused,
and `register` enforces the subject's compatibility mode against its latest version (or every version,
for the `*_transitive` modes). `ConfluentRegistry` (`registry_confluent.py`) speaks the Confluent REST
API for the Kafka surface; `AzureSchemaRegistry` (`registry_azure.py`) goes through the Azure SDK.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, urlparse

from meshkit.contracts.avro_compat import check_compatibility
from meshkit.errors import ConfigError, TerminalError

if TYPE_CHECKING:
    from meshkit.config import Settings

SchemaId = int | str  # Confluent ids are integers, Azure Schema Registry ids are GUID strings
RegistryMode = Literal[
    "backward", "forward", "full", "none", "backward_transitive", "forward_transitive", "full_transitive"
]
REGISTRY_MODES: tuple[str, ...] = (
    "backward", "forward", "full", "none", "backward_transitive", "forward_transitive", "full_transitive",
)  # fmt: skip


class SchemaNotFoundError(TerminalError):
    """No schema with this id (or no version under this subject)."""


class IncompatibleSchemaError(TerminalError):
    """The registry refused a schema under the subject's compatibility mode; `messages` say why."""

    def __init__(self, subject: str, mode: str, messages: list[str]) -> None:
        self.subject, self.mode, self.messages = subject, mode, tuple(messages)
        super().__init__(
            f"schema incompatible with subject {subject!r} under {mode.upper()} compatibility: " + "; ".join(messages),
            hint="Change the contract compatibly (docs/avro.md), or publish a new major version under a new subject.",
        )


@dataclass(frozen=True)
class Compatibility:
    """The answer of `check`: compatible or not, and each reason."""

    compatible: bool
    messages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.compatible


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    id: SchemaId
    version: int
    schema: dict[str, Any]


class SchemaRegistry(Protocol):
    """Where writer schemas live, by id; `register` is idempotent (the same schema keeps its id)."""

    def register(self, subject: str, schema: dict[str, Any]) -> SchemaId: ...

    def get(self, schema_id: SchemaId) -> dict[str, Any]:
        """The schema with this id; `SchemaNotFoundError` when there is none."""
        ...

    def latest(self, subject: str) -> RegisteredSchema | None: ...

    def check(self, subject: str, schema: dict[str, Any]) -> Compatibility: ...


def canonical_text(schema: dict[str, Any] | str) -> str:
    """One text per schema (sorted keys, no spaces): the identity a registry deduplicates on."""
    data = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compatibility_messages(mode: str, history: list[dict[str, Any]], schema: dict[str, Any]) -> list[str]:
    """Why `schema` may not follow `history` (oldest first) under `mode`."""
    base = mode.removesuffix("_transitive")
    if base == "none" or not history:
        return []
    against = history if mode.endswith("_transitive") else history[-1:]
    return [str(i) for old in against for i in check_compatibility(old, schema, base)]  # type: ignore[arg-type]


class LocalRegistry:
    """A registry in files under `root` (`<workspace>/registry`), safe for concurrent processes.

    Layout: `schemas/<id>.json` (the text of each schema), `subjects/<subject>.json` (versions as ids,
    and the subject's mode), `state.json` (the next id and the default mode).
    """

    def __init__(self, root: Path, default_mode: RegistryMode = "backward") -> None:
        self.root = root
        self.default_mode = default_mode
        self._cache: dict[int, dict[str, Any]] = {}
        (root / "schemas").mkdir(parents=True, exist_ok=True)
        (root / "subjects").mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, path: Path, default: Any) -> Any:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default

    def _write(self, path: Path, data: Any) -> None:
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        temp.replace(path)

    def _subject_path(self, subject: str) -> Path:
        return self.root / "subjects" / f"{quote(subject, safe='')}.json"

    def _subject(self, subject: str) -> dict[str, Any]:
        data: dict[str, Any] = self._read(self._subject_path(subject), {"versions": [], "mode": None})
        return data

    def _ids_by_text(self) -> dict[str, int]:
        index: dict[str, int] = self._read(self.root / "index.json", {})
        return index

    def mode(self, subject: str) -> str:
        return str(self._subject(subject).get("mode") or self.default_mode)

    def set_mode(self, subject: str, mode: str) -> None:
        if mode.lower() not in REGISTRY_MODES:
            raise ConfigError(
                f"unknown compatibility mode {mode!r}", hint=f"Valid values are: {', '.join(REGISTRY_MODES)}."
            )
        with self._locked():
            data = self._subject(subject)
            data["mode"] = mode.lower()
            self._write(self._subject_path(subject), data)

    def subjects(self) -> list[str]:
        from urllib.parse import unquote

        return sorted(unquote(p.stem) for p in (self.root / "subjects").glob("*.json"))

    def versions(self, subject: str) -> list[int]:
        """The schema ids of the subject's versions, oldest first (version n is index n - 1)."""
        return [int(i) for i in self._subject(subject)["versions"]]

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        text = canonical_text(schema)
        with self._locked():
            index = self._ids_by_text()
            data = self._subject(subject)
            known = index.get(text)
            if known is not None and known in data["versions"]:
                return known  # idempotent: already a version of this subject
            mode = str(data.get("mode") or self.default_mode)
            history = [self.get(i) for i in data["versions"]]
            messages = compatibility_messages(mode, history, json.loads(text))
            if messages:
                raise IncompatibleSchemaError(subject, mode, messages)
            if known is None:
                state = self._read(self.root / "state.json", {"next_id": 1})
                known = int(state["next_id"])
                self._write(self.root / "schemas" / f"{known}.json", json.loads(text))
                state["next_id"] = known + 1  # ids only grow: a deleted subject never frees one
                self._write(self.root / "state.json", state)
                index[text] = known
                self._write(self.root / "index.json", index)
            data["versions"].append(known)
            self._write(self._subject_path(subject), data)
            return known

    def get(self, schema_id: SchemaId) -> dict[str, Any]:
        try:
            key = int(schema_id)
        except (TypeError, ValueError):
            raise SchemaNotFoundError(f"schema id {schema_id!r} is not a local registry id") from None
        if key not in self._cache:
            path = self.root / "schemas" / f"{key}.json"
            if not path.exists():
                raise SchemaNotFoundError(f"no schema with id {key} in {self.root}")
            self._cache[key] = json.loads(path.read_text(encoding="utf-8"))
        return self._cache[key]

    def lookup(self, subject: str, schema: dict[str, Any]) -> RegisteredSchema | None:
        """The version of `subject` holding exactly `schema`, if any."""
        known = self._ids_by_text().get(canonical_text(schema))
        versions = self.versions(subject)
        if known is None or known not in versions:
            return None
        return RegisteredSchema(subject, known, versions.index(known) + 1, self.get(known))

    def version(self, subject: str, version: int) -> RegisteredSchema | None:
        versions = self.versions(subject)
        if not 1 <= version <= len(versions):
            return None
        return RegisteredSchema(subject, versions[version - 1], version, self.get(versions[version - 1]))

    def latest(self, subject: str) -> RegisteredSchema | None:
        return self.version(subject, len(self.versions(subject)))

    def check(self, subject: str, schema: dict[str, Any]) -> Compatibility:
        history = [self.get(i) for i in self.versions(subject)]
        messages = compatibility_messages(self.mode(subject), history, schema)
        return Compatibility(not messages, tuple(messages))


def subject_of(topic: str) -> str:
    """Confluent's TopicNameStrategy: the value schema of `topic` is registered as `<topic>-value`."""
    return f"{topic}-value"


def registry_from(settings: Settings) -> SchemaRegistry:
    """The registry of the configured profile: `registry_url` when set (Confluent REST, or an Azure
    Schema Registry group `https://<namespace>.servicebus.windows.net/$schemagroups/<group>`), else
    the local registry in the workspace (local and emulators profiles only)."""
    url = settings.registry_url
    if not url:
        if settings.profile == "cloud":
            raise ConfigError(
                "the cloud profile with bus_format avro needs a schema registry",
                hint="Set registry_url (MESHKIT_REGISTRY_URL) to the Confluent REST URL or "
                "https://<namespace>.servicebus.windows.net/$schemagroups/<group>.",
            )
        return LocalRegistry(settings.workspace_dir / "registry")
    parsed = urlparse(url)
    if parsed.hostname and parsed.hostname.endswith(".servicebus.windows.net"):
        group = parsed.path.strip("/").split("/")
        if len(group) != 2 or group[0].lower() != "$schemagroups":
            raise ConfigError(
                f"registry_url {url!r} names no schema group",
                hint="Write https://<namespace>.servicebus.windows.net/$schemagroups/<group>.",
            )
        from pipelines.serde.registry_azure import AzureSchemaRegistry

        return AzureSchemaRegistry(parsed.hostname, group[1])
    from pipelines.serde.registry_confluent import ConfluentRegistry

    return ConfluentRegistry(url)
