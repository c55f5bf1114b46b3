"""The on-disk spool of lineage events a backend has not acknowledged, and the file of events it refused.

One OpenLineage event per line, appended with fsync so a crash tears at most the last line; the spool
is rewritten atomically, and a `.sent` file of line hashes keeps acknowledged events from being sent
twice. A `flock` makes it safe for the relay and pipeline processes that share a workspace.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Delivery:
    """What one send came to: `sent`, `rejected` (never retried) or `kept` (spooled, re-sent later)."""

    result: Literal["sent", "rejected", "kept"]
    status: int | None = None
    reason: str = ""  # an exception class or HTTP status; never a message, which may carry a URL


def _line_id(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _append_line(path: Path, line: str) -> None:
    """One write plus fsync: a crash can tear only this line, never one written before it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = line.encode("utf-8") + b"\n"
    if path.exists() and path.stat().st_size:
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = b"\n" + data  # the previous writer died mid-line: do not glue onto its torn line
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class LineageSpool:
    """Events a backend has not acknowledged yet, oldest first: one OpenLineage event per line.

    `<spool>.sent` holds hashes of lines the backend acknowledged that are still in the spool (the window
    before the spool is rewritten): a crash there cannot make them be sent twice.
    """

    def __init__(self, directory: Path, name: str | None = None) -> None:
        suffix = f"-{_UNSAFE_NAME.sub('_', name)}" if name else ""
        self.path = directory / f"spool{suffix}.ndjson"
        self.rejected_path = directory / f"rejected{suffix}.ndjson"
        self._sent_path = directory / f"spool{suffix}.sent"
        self._lock_path = directory / f"spool{suffix}.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads and processes sharing the workspace (relay and pipeline runs)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # also released by the OS if the process dies
            yield  # closing the handle releases the lock

    def pending(self) -> list[str]:
        """Lines still to send. Acknowledged lines are dropped, a torn line goes to rejected.ndjson."""
        if not self.path.exists():
            return []
        lines = [x for x in self.path.read_bytes().decode("utf-8", "replace").splitlines() if x.strip()]
        sent = set(self._sent_path.read_text(encoding="utf-8").split()) if self._sent_path.exists() else set()
        keep: list[str] = []
        for line in lines:
            if _line_id(line) in sent:
                continue
            try:
                json.loads(line)
            except ValueError:
                self.reject(line, Delivery("rejected", reason="unreadable spool line (torn write)"), "spool")
                continue
            keep.append(line)
        if sent or len(keep) != len(lines):
            self.rewrite(keep)
        return keep

    def append(self, line: str) -> None:
        _append_line(self.path, line)

    def mark_sent(self, line: str) -> None:
        _append_line(self._sent_path, _line_id(line))

    def rewrite(self, lines: list[str]) -> None:
        """Replace the spool atomically (temporary file, fsync, rename), then forget the sent hashes."""
        if lines:
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                handle.write("".join(f"{x}\n" for x in lines).encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.path)
        else:
            self.path.unlink(missing_ok=True)
        self._sent_path.unlink(missing_ok=True)

    def reject(self, line: str, delivery: Delivery, backend: str) -> None:
        try:
            event: Any = json.loads(line)
        except ValueError:
            event = line
        at = datetime.now(UTC).isoformat()
        record = {"rejectedAt": at, "backend": backend, "status": delivery.status, "reason": delivery.reason}
        _append_line(self.rejected_path, json.dumps({**record, "event": event}, sort_keys=True))
