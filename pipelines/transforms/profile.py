"""Profile of the documents a source sends: per field path, how many documents carry it and which JSON
kinds its values have. Names, kinds and counts only: a profile never holds a document's values.

The decode step profiles a sample of each batch and adds the counts to Beam counters named
`profile:<path>:<kind>` (plus `profile:@documents`); the runner reads them after the run and writes
one JSON file per run, which `meshkit drift` merges (governance/drift). Counters were chosen over a
side output: they need no extra graph, aggregate the same way on FnApiRunner and Dataflow, and
survive a streaming run that never ends a window of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

COUNTER_PREFIX = "profile:"
DOCUMENTS_COUNTER = "profile:@documents"
# One document in SAMPLE_EVERY is profiled: 2.5% of the decode step's time on 100k simulated payments
# events, 3.3% with the head below (every document would cost ~90%: a second JSON parse of the body
# and a look at every value). Figures from a median of 5 runs; see docs/drift.md.
SAMPLE_EVERY = 32
SAMPLE_HEAD = 1000  # ...after the first SAMPLE_HEAD documents of each decode worker, all profiled
# Distinct field paths one batch may add: document keys that are data (ids used as keys) would
# otherwise make unbounded counters; the excess is counted under OVERFLOW_PATH.
MAX_PATHS = 200
OVERFLOW_PATH = "*"
# JSON kinds, and the string sub-kinds worth knowing for a contract (a value counts under one kind).
KINDS = (
    "string", "string/date", "string/date-time", "string/uuid", "string/numeric",
    "integer", "number", "boolean", "object", "array", "null",
)  # fmt: skip
# Cosmos DB system properties: on every document, never part of a contract.
SYSTEM_PROPERTIES = frozenset({"_rid", "_self", "_etag", "_attachments", "_ts", "_lsn"})

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NUMERIC = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")


def string_kind(value: str) -> str:
    """`string`, or the sub-kind a cheap look at length and separators suggests and a regex confirms."""
    n = len(value)
    if n == 10 and value[4:5] == "-" and _DATE.fullmatch(value):
        return "string/date"
    if n >= 16 and value[4:5] == "-" and value[10:11] in ("T", " ") and _DATE_TIME.fullmatch(value):
        return "string/date-time"
    if n == 36 and value[8:9] == "-" and _UUID.fullmatch(value):
        return "string/uuid"
    if n and n < 40 and (value[0].isdigit() or value[0] in "-+") and _NUMERIC.fullmatch(value):
        return "string/numeric"
    return "string"


_SIMPLE_KINDS: dict[type, str] = {bool: "boolean", int: "integer", float: "number", dict: "object", list: "array"}


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    cls = value.__class__
    if cls is str:
        return string_kind(value)
    return _SIMPLE_KINDS.get(cls, "string")


class DocumentSampler:
    """Which rows of each batch to profile: every one of the first `head` rows a decode worker sees
    (small runs get exact figures), then one in `every`, the stride running on across batches."""

    def __init__(self, head: int = SAMPLE_HEAD, every: int = SAMPLE_EVERY) -> None:
        self.head, self.every = head, every
        self.seen = 0  # rows this worker has seen
        self.next = head  # the next strided row, counted over the worker's rows

    def rows(self, n: int) -> list[int]:
        """Indexes, within the next batch of `n` rows, of the rows to profile."""
        start, end = self.seen, self.seen + n
        self.seen = end
        taken = list(range(start, min(end, self.head)))
        if self.next < end:
            strided = range(self.next, end, self.every)
            taken += strided
            self.next = strided[-1] + self.every
        return [t - start for t in taken]


def profile_sample(items: Sequence[Any], *, parse: bool = True) -> tuple[int, dict[str, int]]:
    """Profile `items`: raw JSON bodies (`parse`) or already decoded change-feed items (Avro).
    Unusable items (dead letters anyway) and deletes (a key and metadata only) are left out."""
    import orjson

    from pipelines.events import EnvelopeError, parse_envelope

    documents = []
    for item in items:
        try:
            envelope = parse_envelope(orjson.loads(item) if parse else item)
        except (orjson.JSONDecodeError, EnvelopeError):
            continue
        if envelope.operation != "delete":
            documents.append(envelope.document)
    return count_documents(documents)


def count_documents(documents: Iterable[Mapping[str, Any]], max_paths: int = MAX_PATHS) -> tuple[int, dict[str, int]]:
    """(documents counted, counter name -> count) over `documents`: top-level fields and one nested
    level of objects (`a.b`), Cosmos DB system properties left out. Deletes must not be passed in."""
    counts: dict[tuple[str, str], int] = {}
    simple, system = _SIMPLE_KINDS, SYSTEM_PROPERTIES
    n = 0
    for document in documents:  # the hot loop: kinds inlined, no call per plain value
        n += 1
        for key, value in document.items():
            if key in system:
                continue
            cls = value.__class__
            kind = string_kind(value) if cls is str else "null" if value is None else simple.get(cls, "string")
            counts[key, kind] = counts.get((key, kind), 0) + 1
            if cls is dict:
                for sub, inner in value.items():
                    c = inner.__class__
                    k = string_kind(inner) if c is str else "null" if inner is None else simple.get(c, "string")
                    counts[f"{key}.{sub}", k] = counts.get((f"{key}.{sub}", k), 0) + 1
    return n, _counter_names(counts, max_paths)


def _counter_names(counts: dict[tuple[str, str], int], max_paths: int) -> dict[str, int]:
    """Counter names of `counts`; paths beyond the first `max_paths` (sorted) fold into OVERFLOW_PATH."""
    kept = set(sorted({path for path, _ in counts})[:max_paths])
    names: dict[str, int] = {}
    for (path, kind), count in counts.items():
        name = f"{COUNTER_PREFIX}{path if path in kept else OVERFLOW_PATH}:{kind}"
        names[name] = names.get(name, 0) + count
    return names


@dataclass(frozen=True)
class FieldProfile:
    """What was seen of one field path: documents carrying it, by kind of value."""

    path: str
    kinds: dict[str, int]

    @property
    def present(self) -> int:
        return sum(self.kinds.values())

    @property
    def non_null(self) -> int:
        return self.present - self.kinds.get("null", 0)


@dataclass(frozen=True)
class DocumentProfile:
    """Field paths and kinds over `documents` profiled (non-delete) documents of one or more runs."""

    documents: int
    fields: dict[str, FieldProfile] = field(default_factory=dict)
    sample_every: int = 1
    runs: tuple[str, ...] = ()

    @classmethod
    def from_counters(cls, counters: Mapping[str, int], run_id: str = "") -> DocumentProfile:
        """The profile in a run's Beam counters (other counters are ignored)."""
        kinds: dict[str, dict[str, int]] = {}
        for name, count in counters.items():
            if not name.startswith(COUNTER_PREFIX) or name.startswith(f"{COUNTER_PREFIX}@") or not count:
                continue
            path, _, kind = name[len(COUNTER_PREFIX) :].rpartition(":")
            if path and kind in KINDS:
                kinds.setdefault(path, {})[kind] = kinds.get(path, {}).get(kind, 0) + count
        fields = {p: FieldProfile(p, dict(sorted(k.items()))) for p, k in sorted(kinds.items())}
        return cls(counters.get(DOCUMENTS_COUNTER, 0), fields, SAMPLE_EVERY, (run_id,) if run_id else ())

    def merge(self, other: DocumentProfile) -> DocumentProfile:
        kinds = {p: dict(f.kinds) for p, f in self.fields.items()}
        for path, f in other.fields.items():
            mine = kinds.setdefault(path, {})
            for kind, count in f.kinds.items():
                mine[kind] = mine.get(kind, 0) + count
        fields = {p: FieldProfile(p, dict(sorted(k.items()))) for p, k in sorted(kinds.items())}
        return DocumentProfile(
            self.documents + other.documents, fields, max(self.sample_every, other.sample_every),
            self.runs + other.runs,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "sample_every": self.sample_every,
            "runs": list(self.runs),
            "fields": {p: f.kinds for p, f in self.fields.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DocumentProfile:
        fields = {str(p): FieldProfile(str(p), {str(k): int(v) for k, v in kinds.items()})
                  for p, kinds in dict(data.get("fields") or {}).items()}  # fmt: skip
        return cls(
            int(data.get("documents", 0)), fields, int(data.get("sample_every", 1)),
            tuple(str(r) for r in data.get("runs") or ()),
        )  # fmt: skip


def profile_dir(workspace_dir: Path, product: str) -> Path:
    """Where a product's (`domain/product`) run profiles live: `<workspace>/profiles/<domain>.<product>/`."""
    return workspace_dir / "profiles" / product.replace("/", ".")


def write_profile(workspace_dir: Path, product: str, run_id: str, counters: Mapping[str, int]) -> Path | None:
    """Write the run's profile from its counters as `<run_id>.json`; None when nothing was profiled."""
    profile = DocumentProfile.from_counters(counters, run_id)
    if not profile.documents:
        return None
    folder = profile_dir(workspace_dir, product)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    data = {**profile.to_dict(), "written_at": datetime.now(UTC).isoformat()}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
