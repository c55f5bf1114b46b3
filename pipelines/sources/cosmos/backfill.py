"""Snapshot a feed range with a query, for backfilling documents older than the change feed start.

Why there is no gap: the relay first takes `ChangeFeedReader.now_token(rng)` — a continuation at the
range's current LSN — then pages through `SELECT * FROM c` over the same feed range, then follows
the change feed from that token. A document last written before the token is in the snapshot, since
the query runs after the token and reads every committed document. A document written after the token
is in the change feed, whether or not the snapshot also saw it. So every document reaches the bus at least
once in its latest version; duplicates are expected and harmless because the pipeline orders and
de-duplicates by key + LSN, and snapshot documents carry `_lsn` like change-feed items. The other
order (snapshot first, token after) would lose every write made while the snapshot ran.

The snapshot's own continuation is persisted by the relay, so a restart resumes mid-snapshot. In
all-versions-and-deletes mode the snapshot yields plain documents, not change items; the pipeline
treats them as latest-version upserts. In latest-version mode a delete made during the snapshot is
not in the feed at all (that mode has no deletes), which is why deletes need all-versions mode.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from pipelines.sources.cosmos.feed import FeedRange, _sdk_errors, partition_key_of

if TYPE_CHECKING:
    from azure.cosmos import ContainerProxy

SNAPSHOT_QUERY = "SELECT * FROM c"


@dataclass
class SnapshotPage:
    """One query page of a range's snapshot; `continuation` None means this range's snapshot is done."""

    items: list[bytes]
    keys: list[str]
    continuation: str | None
    request_charge: float


def snapshot(
    container: ContainerProxy,
    rng: FeedRange,
    partition_key_path: str,
    continuation: str | None,
    page_size: int = 1000,
) -> Iterator[SnapshotPage]:
    """Pages of every document in `rng`, resuming after `continuation` (None = from the start).

    A failed page raises (TransientError for what is worth retrying) and leaves the iterator usable:
    the next `next()` asks again from the last page handed out, so a retry neither skips nor ends
    the snapshot early (a plain generator would be finished by the exception).
    """
    return _SnapshotPages(container, rng, partition_key_path, continuation, page_size)


class _SnapshotPages(Iterator[SnapshotPage]):
    def __init__(
        self, container: ContainerProxy, rng: FeedRange, path: str, continuation: str | None, page_size: int
    ) -> None:
        self.container, self.rng, self.path, self.page_size = container, rng, path, page_size
        self.continuation, self.done = continuation, False
        self._pages: Any = None  # azure.core's PageIterator over the query, recreated after a failure
        self._charges: list[float] = []
        self._where = f"query the snapshot of container {container.id!r}, feed range {rng.id}"

    def _charge(self, headers: Mapping[str, Any], _body: Any) -> None:
        self._charges.append(float(headers.get("x-ms-request-charge") or 0))

    def __next__(self) -> SnapshotPage:
        if self.done:
            raise StopIteration
        self._charges.clear()
        try:
            with _sdk_errors(self._where):
                if self._pages is None:
                    self._pages = self.container.query_items(
                        SNAPSHOT_QUERY,
                        feed_range=self.rng.raw,
                        max_item_count=self.page_size,
                        # cosmosdb-server insists on it; the service accepts it for a feed-range query
                        enable_cross_partition_query=True,
                        response_hook=self._charge,
                    ).by_page(self.continuation)
                docs = list(next(self._pages))
        except StopIteration:
            self.done = True
            raise
        except BaseException:
            self._pages = None  # resume from self.continuation on the next call
            raise
        token = self._pages.continuation_token or None
        self.continuation, self.done = token, token is None
        return SnapshotPage(
            items=[orjson.dumps(doc) for doc in docs],
            keys=[partition_key_of(doc, self.path) for doc in docs],
            continuation=token,
            request_charge=sum(self._charges),
        )
