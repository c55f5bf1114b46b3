"""Consumer-group offsets kept in a `DocumentStore`, for transports whose server keeps none (Event Hubs
over AMQP has no consumer-group offsets; its SDK leaves checkpoints to the application).

One document per group, `<prefix><group>` (percent-encoded, so `$Default` is fine), in JSON:
`{"group": "curated-writer", "offsets": {"0": 1200, "1": 980}}` — per partition, the next offset to
read, as in `pipelines.transports.base.EventTransport.committed`. A commit merges into what is stored and
never moves an offset backwards, so a slow consumer replaying old work cannot undo a newer commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pipelines.checkpoints.files import document_key
from pipelines.checkpoints.store import DocumentStore, PreconditionFailed

# Each retry means another consumer of the same group committed in between; a handful always suffices
# unless something is badly wrong, and then the last PreconditionFailed (transient) reaches the caller.
MAX_ATTEMPTS = 16


class StoreOffsets:
    """Committed offsets of consumer groups, one conditional-write document per group."""

    def __init__(self, store: DocumentStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def committed(self, group: str) -> dict[int, int]:
        """The group's next offset to read per partition; partitions it never committed are absent."""
        document = self.store.get(self._name(group))
        if document is None:
            return {}
        return _offsets(document.data)

    def commit(self, group: str, offsets: Mapping[int, int]) -> None:
        """Merge `offsets` into the group's document (per partition, the larger offset wins)."""
        for partition, offset in offsets.items():
            if partition < 0 or offset < 0:
                raise ValueError(
                    f"group {group!r}: cannot commit offset {offset} for partition {partition}; "
                    "partitions and offsets are non-negative"
                )
        name = self._name(group)
        for attempt in range(MAX_ATTEMPTS):
            document = self.store.get(name)
            current = _offsets(document.data) if document is not None else {}
            merged = dict(current)
            for partition, offset in offsets.items():
                merged[partition] = max(offset, current.get(partition, offset))
            if document is not None and merged == current:
                return
            body = {"group": group, "offsets": {str(p): o for p, o in sorted(merged.items())}}
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            try:
                if document is None:
                    self.store.put(name, data, if_none_match=True)
                else:
                    self.store.put(name, data, if_match=document.etag)
            except PreconditionFailed:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                continue
            return

    def _name(self, group: str) -> str:
        if not group:
            raise ValueError("consumer group name is empty")
        return self.prefix + document_key(group)


def _offsets(data: bytes) -> dict[int, int]:
    return {int(partition): int(offset) for partition, offset in json.loads(data)["offsets"].items()}
