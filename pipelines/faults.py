"""Named crash points for fault tests: `MESHKIT_FAULT_POINT=<point>:<n>` kills this process with SIGKILL
(no cleanup, no flush: what `kill -9` does) the n-th time it reaches `<point>`.

The relay marks the points where a crash matters (after reading a page, halfway through publishing it,
after the bus acknowledged it, after the checkpoint). Unset, `reached` costs one comparison.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.transports.base import EventTransport

FAULT_ENV = "MESHKIT_FAULT_POINT"


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    point, _, count = value.rpartition(":")
    return (point, int(count)) if count.isdigit() and int(count) > 0 else None


_TARGET = _parse(os.environ.get(FAULT_ENV))
_SEEN: dict[str, int] = {}


def armed(point: str) -> bool:
    """True when this process is configured to crash at `point` (for points that change behaviour)."""
    return _TARGET is not None and _TARGET[0] == point


def reached(point: str) -> None:
    """Count a pass through `point`; SIGKILL the process when it is the configured one."""
    if _TARGET is None or _TARGET[0] != point:
        return
    _SEEN[point] = _SEEN.get(point, 0) + 1
    if _SEEN[point] == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def publish_acknowledged(
    transport: EventTransport,
    records: Sequence[tuple[str, bytes, dict[str, str]]],
    retrying: Callable[[str, Callable[[], object]], object],
) -> None:
    """Publish `records` through `retrying` and return once the bus acknowledged every one; the relays'
    checkpoints move only after this. The `mid-publish` crash point dies between the two halves."""
    half = len(records) // 2
    if half and armed("mid-publish"):
        retrying("publish to the bus", lambda: transport.publish(records[:half]))
        reached("mid-publish")
        retrying("publish to the bus", lambda: transport.publish(records[half:]))
    else:
        retrying("publish to the bus", lambda: transport.publish(records))
    reached("after-publish")
