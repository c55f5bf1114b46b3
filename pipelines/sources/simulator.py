"""A Cosmos DB change feed simulated from a contract: the `local` profile's source.

It plays creates, updates and deletes against an in-memory container (with hot keys), renders each
change as a change-feed item in the contract's mode, then degrades delivery the way real feeds and
buses do: re-delivered duplicates, per-key out-of-order items and malformed items. `final_state` is
what the current-state table must equal after the pipeline has run, whatever it dead-lettered.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from meshkit.contracts.model import Column, Contract
from meshkit.errors import ConfigError, ContractError
from pipelines.sources.fake_values import RowFactory, ValueFactory, as_text, rng_uuid, to_json

MODES = ("latestVersion", "allVersionsAndDeletes")
_COLL_BYTES = bytes.fromhex("426d4000a19b23e5")
_DB_RID = base64.b64encode(_COLL_BYTES[:4]).decode()
_COLL_RID = base64.b64encode(_COLL_BYTES).decode()
MALFORMED_KINDS = (
    "not_json", "not_object", "missing_id", "missing_lsn", "missing_required",
    "wrong_type", "enum_violation", "pattern_violation", "unknown_operation",
)  # fmt: skip


@dataclass(frozen=True)
class SimulationConfig:
    """How many changes to simulate and how badly to deliver them; unset values come from the contract."""

    events: int = 2000
    seed: int = 7
    mix: tuple[float, float, float] = (0.35, 0.55, 0.10)  # create / update / delete
    hot_key_share: float = 0.2  # share of updates that hit the hottest 1% of live keys
    duplicate_rate: float = 0.02
    out_of_order_rate: float = 0.02
    malformed_rate: float = 0.01
    rate_per_second: float | None = None  # default: expectedChangesPerDay / 86400
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    mode: str | None = None  # default: the contract's changeFeedMode
    related_keys: tuple[str, ...] | None = None  # pool for foreign-key columns (e.g. users' user_id)

    def __post_init__(self) -> None:
        rates = {"hot_key_share": self.hot_key_share, "duplicate_rate": self.duplicate_rate}
        rates |= {"out_of_order_rate": self.out_of_order_rate, "malformed_rate": self.malformed_rate}
        for name, value in rates.items():
            if not 0 <= value <= 1:
                raise ConfigError(f"SimulationConfig.{name} must be between 0 and 1, got {value}")
        if self.events < 0 or len(self.mix) != 3 or min(self.mix) < 0 or sum(self.mix[:2]) <= 0:
            raise ConfigError(
                f"SimulationConfig: events must be >= 0 and mix three non-negative weights with "
                f"creates+updates > 0; got events={self.events}, mix={self.mix}"
            )
        if self.mode is not None and self.mode not in MODES:
            raise ConfigError(f"SimulationConfig.mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.rate_per_second is not None and self.rate_per_second <= 0:
            raise ConfigError(f"SimulationConfig.rate_per_second must be positive, got {self.rate_per_second}")


@dataclass(frozen=True)
class FeedStats:
    """What the feed holds: valid changes by operation and each kind of delivery fault."""

    operations: dict[str, int]
    duplicates: int
    out_of_order: int
    malformed: dict[str, int]

    @property
    def valid_events(self) -> int:
        return sum(self.operations.values())


@dataclass(frozen=True)
class SimulatedFeed:
    """Items in delivery order with their bus keys, and the state the pipeline must reproduce."""

    items: list[bytes]
    keys: list[str]  # the Cosmos partition key value of each item (the bus partition key)
    final_state: dict[str, dict[str, Any]]  # primary key -> row of contract columns, typed
    personal_values: set[str]
    stats: FeedStats
    malformed: dict[int, str] = field(default_factory=dict)  # item index -> malformed kind
    all_keys: list[str] = field(default_factory=list)  # every primary key ever created, in order


class _KeyPool:
    """A set with O(1) add, remove and uniform random choice."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def add(self, key: str) -> None:
        self.index[key] = len(self.items)
        self.items.append(key)

    def discard(self, key: str) -> None:
        at = self.index.pop(key, None)
        if at is not None:
            last = self.items.pop()
            if at < len(self.items):
                self.items[at], self.index[last] = last, at

    def choice(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class _Doc:
    """One live document of the simulated container."""

    row: dict[str, Any]
    rid: str
    lsn: int


class ChangeFeedSimulator:
    """Deterministic change feed for a contract: same contract and config, same bytes.

    Items follow the Cosmos DB change-feed formats. `latestVersion`: the document (source field
    names) with `_rid`, `_self`, `_etag`, `_attachments`, `_ts` and `_lsn`; this mode cannot express
    deletes, so the mix's delete weight is ignored (creates and updates only). `allVersionsAndDeletes`:
    `{"current": document, "metadata": {operationType, lsn, crts, previousImageLSN, id, partitionKey,
    timeToLiveExpired}}` with `current` empty for deletes and the LSN only in `metadata`.
    """

    def __init__(self, contract: Contract, config: SimulationConfig) -> None:
        self.contract, self.config = contract, config
        source = contract.source
        self.mode = config.mode or (source.change_feed_mode if source else None)
        if self.mode not in MODES:
            raise ConfigError(
                f"contract {contract.name!r}: change feed mode {self.mode!r} is not one of {', '.join(MODES)}",
                hint="Set the source server's `changeFeedMode` or SimulationConfig.mode.",
            )
        per_day = source.expected_changes_per_day if source else None
        rate = config.rate_per_second or (per_day / 86400 if per_day else None)
        if not rate:
            raise ConfigError(
                f"contract {contract.name!r}: no change rate for the simulator",
                hint="Set the source server's `expectedChangesPerDay` or SimulationConfig.rate_per_second.",
            )
        self.rate: float = rate
        self.columns = contract.source_columns
        self.pk = [contract.column(name) for name in contract.primary_key]
        if not self.pk:
            raise ContractError(f"contract {contract.name!r} has no primary key; the simulator needs one")
        self.pk_field = self._partition_key_field(source.partition_key_path if source else None)
        self.id_column = next((c for c in self.columns if c.source_field == "id"), None)
        self.related = {c.name for c in self.columns if self._is_foreign_key(c)}
        pk_related = {c.name for c in self.columns if c.source_field == self.pk_field and not c.primary_key}
        self.pooled = {c.name for c in self.columns if c.name in self.related | pk_related}
        self._start()

    def _start(self) -> None:
        """Fresh random streams, so every `generate()` call returns the same feed.

        One stream per concern, named by contract: changing the fault rates leaves the valid changes
        as they were, and two products simulated with one seed do not share ids.
        """
        cfg, streams = self.config, ("ops", "values", "faults", "bad", "pool")
        self._rng = {n: random.Random(f"{cfg.seed}/{self.contract.name}/{n}") for n in streams}  # noqa: S311
        pool = cfg.related_keys or tuple(rng_uuid(self._rng["pool"]) for _ in range(max(10, cfg.events // 20)))
        pooled = dict.fromkeys(self.pooled, pool)
        self._rows = RowFactory(ValueFactory(self._rng["values"], self.columns, cfg.start), pooled)
        self._bad_rows = RowFactory(ValueFactory(self._rng["bad"], self.columns, cfg.start), pooled)
        self._personal: set[str] = set()

    def _partition_key_field(self, path: str | None) -> str:
        field_name = (path or "/id").strip("/")
        if "/" in field_name or not (field_name == "id" or any(c.source_field == field_name for c in self.columns)):
            raise ContractError(
                f"contract {self.contract.name!r}: partitionKeyPath {path!r} does not name a top-level source field",
                hint="Use `/id` or `/<sourceField>` of one of the contract's columns.",
            )
        return field_name

    def _is_foreign_key(self, col: Column) -> bool:
        prop = (self.contract.table.properties or [])[col.index]
        return any((rel.type or "").lower() == "foreignkey" for rel in prop.relationships or ())

    def _key(self, row: dict[str, Any]) -> str:
        return "|".join(str(row[c.name]) for c in self.pk)

    # ---- items ----------------------------------------------------------------------------------

    def _document(self, doc: _Doc, moment: datetime, lsn: int) -> dict[str, Any]:
        body: dict[str, Any] = {} if self.id_column else {"id": self._key(doc.row)}
        for col in self.columns:
            value = doc.row[col.name]
            if col.personal and value is not None:
                self._personal.add(as_text(value))
            if value is not None or col.required or lsn % 2:  # optional nulls: sometimes null, sometimes absent
                body[col.source_field] = to_json(col, value)
        etag = f'"{lsn:08x}-0000-0200-0000-{int(moment.timestamp()):08x}0000"'
        system = {"_rid": doc.rid, "_self": f"dbs/{_DB_RID}/colls/{_COLL_RID}/docs/{doc.rid}/", "_etag": etag}
        body |= system | {"_attachments": "attachments/", "_ts": int(moment.timestamp())}
        if self.mode == "latestVersion":
            body["_lsn"] = lsn
        return body

    def _item(self, op: str, doc: _Doc, moment: datetime, lsn: int, previous: int | None) -> dict[str, Any]:
        if self.mode == "latestVersion":
            return self._document(doc, moment, lsn)
        meta: dict[str, Any] = {"operationType": op, "lsn": lsn, "crts": int(moment.timestamp())}
        if previous is not None:
            meta["previousImageLSN"] = previous
        if op == "delete":
            meta["id"] = str(doc.row[self.id_column.name]) if self.id_column else self._key(doc.row)
            meta["partitionKey"] = {self.pk_field: self._bus_key(doc.row)}
        meta["timeToLiveExpired"] = False
        return {"current": {} if op == "delete" else self._document(doc, moment, lsn), "metadata": meta}

    def _bus_key(self, row: dict[str, Any]) -> str:
        if self.pk_field == "id" and not self.id_column:
            return self._key(row)
        return str(next(row[c.name] for c in self.columns if c.source_field == self.pk_field))

    # ---- the run --------------------------------------------------------------------------------

    def generate(self) -> SimulatedFeed:
        """Play the configured number of valid changes, then degrade their delivery."""
        self._start()
        cfg, ops_rng = self.config, self._rng["ops"]
        weights = cfg.mix if self.mode == "allVersionsAndDeletes" else (*cfg.mix[:2], 0.0)
        live: dict[str, _Doc] = {}
        pool, hot = _KeyPool(), _KeyPool()
        counts = {"create": 0, "update": 0, "delete": 0}
        all_keys: list[str] = []
        bad_at = set(self._rng["faults"].sample(range(cfg.events), round(cfg.events * cfg.malformed_rate)))
        entries: list[tuple[str | None, bytes, str]] = []  # (primary key or None if malformed, item, bus key)
        malformed: dict[int, str] = {}
        bad_kinds = self._malformed_kinds()
        lsn = 0
        for i in range(cfg.events):
            moment = cfg.start + timedelta(microseconds=round(i * 1_000_000 / self.rate))
            if i in bad_at:
                lsn += 1
                malformed[len(entries)] = kind = bad_kinds[len(malformed) % len(bad_kinds)]
                bad_item, bad_key = self._malformed(kind, live, pool, moment, lsn)
                entries.append((None, bad_item, bad_key))
            op = ops_rng.choices(("create", "update", "delete"), weights)[0] if pool else "create"
            lsn += 1
            if op == "create":
                doc = _Doc(self._rows.new_row(moment), _rid(self._rng["values"]), lsn)
                key, previous = self._key(doc.row), None
                live[key] = doc
                pool.add(key)
                all_keys.append(key)
                if len(hot) < max(1, len(pool) // 100):
                    hot.add(key)
            else:
                use_hot = op == "update" and bool(hot.items) and ops_rng.random() < cfg.hot_key_share
                key = hot.choice(ops_rng) if use_hot else self._cold_key(pool, hot, ops_rng)
                doc, previous = live[key], live[key].lsn
                if op == "update":
                    doc = _Doc(self._rows.updated_row(doc.row, moment), doc.rid, lsn)
                    live[key] = doc
                else:
                    del live[key]
                    pool.discard(key)
                    hot.discard(key)
            counts[op] += 1
            item = self._item({"update": "replace"}.get(op, op), doc, moment, lsn, previous)
            entries.append((key, _encode(item), self._bus_key(doc.row)))
            doc.lsn = lsn
        swaps = self._reorder(entries, round(cfg.events * cfg.out_of_order_rate))
        items, keys, malformed = self._duplicate(entries, malformed, round(cfg.events * cfg.duplicate_rate))
        bad_counts = {kind: sum(1 for k in malformed.values() if k == kind) for kind in bad_kinds}
        return SimulatedFeed(
            items=items,
            keys=keys,
            final_state={key: dict(doc.row) for key, doc in live.items()},
            personal_values=set(self._personal),
            stats=FeedStats(counts, len(items) - len(entries), swaps, bad_counts),
            malformed=malformed,
            all_keys=all_keys,
        )

    def _cold_key(self, pool: _KeyPool, hot: _KeyPool, rng: random.Random) -> str:
        for _ in range(8):
            key = pool.choice(rng)
            if key not in hot.index:
                return key
        return key

    def _reorder(self, entries: list[tuple[str | None, bytes, str]], wanted: int) -> int:
        """Swap items with the next item of the same primary key, so only LSNs tell the order."""
        rng = self._rng["faults"]
        following: dict[int, int] = {}
        last: dict[str, int] = {}
        for index in range(len(entries) - 1, -1, -1):
            key = entries[index][0]
            if key is not None:
                if key in last:
                    following[index] = last[key]
                last[key] = index
        candidates = sorted(following)
        rng.shuffle(candidates)
        used: set[int] = set()
        for index in candidates:
            if len(used) == 2 * wanted:
                break
            other = following[index]
            if index not in used and other not in used:
                entries[index], entries[other] = entries[other], entries[index]
                used |= {index, other}
        return len(used) // 2

    def _duplicate(
        self, entries: list[tuple[str | None, bytes, str]], malformed: dict[int, str], wanted: int
    ) -> tuple[list[bytes], list[str], dict[int, str]]:
        """Re-deliver random valid items (same bytes) a little later, as at-least-once delivery does."""
        rng = self._rng["faults"]
        valid = [i for i, entry in enumerate(entries) if entry[0] is not None]
        extra: dict[int, list[int]] = {}
        for _ in range(wanted if valid else 0):
            source = rng.choice(valid)
            extra.setdefault(min(len(entries) - 1, source + rng.randint(0, 200)), []).append(source)
        items: list[bytes] = []
        keys: list[str] = []
        moved: dict[int, str] = {}
        for index, (_, body, bus_key) in enumerate(entries):
            if index in malformed:
                moved[len(items)] = malformed[index]
            items.append(body)
            keys.append(bus_key)
            for source in extra.get(index, ()):
                items.append(entries[source][1])
                keys.append(entries[source][2])
        return items, keys, moved

    # ---- malformed items ------------------------------------------------------------------------

    def _malformed_kinds(self) -> list[str]:
        """The kinds this contract and mode can express, shuffled once so every kind shows up early."""
        cols = self.columns
        checks = {
            "missing_required": any(c.required and self._removable(c) for c in cols),
            "wrong_type": any(c.logical_type != "string" and self._removable(c) for c in cols),
            "enum_violation": any(c.valid_values for c in cols),
            "pattern_violation": any(c.options.get("pattern") for c in cols),
            "unknown_operation": self.mode == "allVersionsAndDeletes",
        }
        kinds = [k for k in MALFORMED_KINDS if checks.get(k, True)]
        self._rng["bad"].shuffle(kinds)
        return kinds

    def _removable(self, col: Column) -> bool:
        return not col.primary_key and col.source_field not in {"id", self.pk_field}

    def _malformed(
        self, kind: str, live: dict[str, _Doc], pool: _KeyPool, moment: datetime, lsn: int
    ) -> tuple[bytes, str]:
        """One invalid item: an update of a live key or a create of a fresh one, broken one way."""
        rng, values = self._rng["bad"], self._bad_rows.values
        if pool and rng.random() < 0.5:
            key = pool.choice(rng)
            doc, op, previous = _Doc(dict(live[key].row), live[key].rid, lsn), "replace", live[key].lsn
            if "updated_at" in doc.row:
                doc.row["updated_at"] = moment
        else:
            doc, op, previous = _Doc(self._bad_rows.new_row(moment), _rid(rng), lsn), "create", None
        item = self._item(op, doc, moment, lsn, previous)
        body = item.get("current", item)
        bus_key = self._bus_key(doc.row)
        if kind in {"missing_required", "wrong_type", "enum_violation", "pattern_violation"}:
            col = self._target(kind, rng)
            if kind == "missing_required":
                body.pop(col.source_field, None)
            else:
                body[col.source_field] = bad = values.invalid(col, kind)
                if col.personal:
                    self._personal.add(str(bad))
        elif kind == "missing_id":
            body.pop("id", None)
        elif kind == "missing_lsn":
            item["metadata"].pop("lsn") if "metadata" in item else item.pop("_lsn")
        elif kind == "unknown_operation":
            item["metadata"]["operationType"] = "upsert"
        encoded = _encode([item] if kind == "not_object" else item)
        return (encoded[: len(encoded) // 2] if kind == "not_json" else encoded), bus_key

    def _target(self, kind: str, rng: random.Random) -> Column:
        cols = [c for c in self.columns if self._removable(c)]
        if kind == "missing_required":
            options = [c for c in cols if c.required]
        elif kind == "wrong_type":
            options = [c for c in cols if c.logical_type in {"number", "integer"}] or [
                c for c in cols if c.logical_type != "string"
            ]
        elif kind == "enum_violation":
            options = [c for c in self.columns if c.valid_values]
        else:
            patterned = [c for c in self.columns if c.options.get("pattern")]
            options = [c for c in patterned if "cpf" in c.name] or [c for c in patterned if not c.valid_values]
            options = options or patterned
        return rng.choice(options)


def _rid(rng: random.Random) -> str:
    """A document resource id: the collection's 8 bytes plus 8 random ones, base64 like Cosmos DB's."""
    return base64.b64encode(_COLL_BYTES + rng.getrandbits(64).to_bytes(8, "little")).decode()


def _encode(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
