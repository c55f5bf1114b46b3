"""The change-feed simulator: Cosmos DB item shapes, valid values, faults at the configured rates, and a
`final_state` that an independent replay of the valid items reproduces."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from meshkit.contracts.model import Column, Contract, load_contract
from meshkit.contracts.types import decimal_params
from meshkit.errors import ConfigError, ContractError
from pipelines.sources.fake_values import compile_pattern
from pipelines.sources.simulator import ChangeFeedSimulator, SimulatedFeed, SimulationConfig

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = ("_rid", "_self", "_etag", "_attachments", "_ts")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


@cache
def contract(name: str) -> Contract:
    return load_contract(ROOT / "domains" / name / "datacontract.yaml")


@cache
def feed(name: str, **overrides: Any) -> SimulatedFeed:
    return ChangeFeedSimulator(contract(name), SimulationConfig(**overrides)).generate()


USERS, TRANSACTIONS = "customers/users", "payments/transactions"


def cpf_valid(value: str) -> bool:
    if not value.isdigit():
        return False
    digits = [int(c) for c in value]
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    for n in (9, 10):
        check = sum(d * w for d, w in zip(digits[:n], range(n + 1, 1, -1), strict=True)) * 10 % 11 % 10
        if digits[n] != check:
            return False
    return True


def problems(doc: dict[str, Any], columns: tuple[Column, ...]) -> list[str]:
    """An independent reading of the contract's rules for one source document."""
    found = [] if isinstance(doc.get("id"), str) else ["id"]
    for col in columns:
        value, opts = doc.get(col.source_field), col.options
        if value is None:
            found += [f"{col.name}: required"] if col.required else []
            continue
        kind = col.logical_type
        if kind == "string":
            if not isinstance(value, str):
                found.append(f"{col.name}: type")
                continue
            if "pattern" in opts and not re.search(opts["pattern"], value):
                found.append(f"{col.name}: pattern")
            if not opts.get("minLength", 0) <= len(value) <= opts.get("maxLength", 10**6):
                found.append(f"{col.name}: length")
            if opts.get("format") == "uuid" and not UUID.match(value):
                found.append(f"{col.name}: uuid")
            if opts.get("format") == "email" and not EMAIL.match(value):
                found.append(f"{col.name}: email")
            if col.name == "cpf" and not cpf_valid(value):
                found.append("cpf: check digits")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                found.append(f"{col.name}: type")
                continue
            number, (_, scale) = Decimal(str(value)), decimal_params(col.physical_type) or (0, 9)
            if number != number.quantize(Decimal(1).scaleb(-scale)):
                found.append(f"{col.name}: scale")
            low, high = opts.get("minimum", opts.get("exclusiveMinimum", -(10**30))), opts.get("maximum", 10**30)
            if number < low or number > high or ("exclusiveMinimum" in opts and number == low):
                found.append(f"{col.name}: range")
        elif kind == "date":
            try:
                date.fromisoformat(value)
            except (TypeError, ValueError):
                found.append(f"{col.name}: date")
        elif kind == "timestamp" and not (isinstance(value, str) and value.endswith("Z")):
            found.append(f"{col.name}: timestamp")
        if col.valid_values is not None and value not in col.valid_values:
            found.append(f"{col.name}: enum")
    return found


def parse(item: bytes, mode: str) -> tuple[str, int, dict[str, Any], dict[str, Any]] | None:
    """(operation, lsn, document, metadata) of a well-formed item, or None."""
    try:
        obj = json.loads(item)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    if mode == "latestVersion":
        return ("upsert", obj["_lsn"], obj, {}) if isinstance(obj.get("_lsn"), int) else None
    meta = obj.get("metadata", {})
    if meta.get("operationType") not in {"create", "replace", "delete"} or not isinstance(meta.get("lsn"), int):
        return None
    return meta["operationType"], meta["lsn"], obj["current"], meta


def typed(col: Column, value: Any) -> Any:
    if value is None:
        return None
    if col.logical_type == "number":
        _, scale = decimal_params(col.physical_type) or (0, 9)
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
    if col.logical_type == "date":
        return date.fromisoformat(value)
    if col.logical_type == "timestamp":
        return datetime.fromisoformat(value).astimezone(UTC)
    return value


def replay(name: str, result: SimulatedFeed, mode: str) -> dict[str, dict[str, Any]]:
    """Current state from the non-malformed items only: highest LSN per key wins, deletes remove."""
    c = contract(name)
    pk = c.column(c.primary_key[0])
    latest: dict[str, tuple[int, dict[str, Any] | None]] = {}
    for index, item in enumerate(result.items):
        if index in result.malformed:
            continue
        op, lsn, doc, meta = parse(item, mode)  # type: ignore[misc]
        key = meta["id"] if op == "delete" else doc[pk.source_field]
        if key not in latest or lsn > latest[key][0]:
            latest[key] = (lsn, None if op == "delete" else doc)
    return {
        key: {col.name: typed(col, doc.get(col.source_field)) for col in c.source_columns}
        for key, (_, doc) in latest.items()
        if doc is not None
    }


@pytest.mark.parametrize("name", [USERS, TRANSACTIONS])
def test_same_seed_same_bytes_other_seed_other_bytes(name: str) -> None:
    config = SimulationConfig(events=600, seed=11)
    simulator = ChangeFeedSimulator(contract(name), config)
    first = simulator.generate()
    again = ChangeFeedSimulator(contract(name), config).generate()
    assert first.items == again.items and first.keys == again.keys and first.final_state == again.final_state
    assert simulator.generate().items == first.items  # generating again starts over
    other = ChangeFeedSimulator(contract(name), SimulationConfig(events=600, seed=12)).generate()
    assert other.items != first.items


def test_products_simulated_with_one_seed_do_not_share_ids() -> None:
    assert not set(feed(USERS).all_keys) & set(feed(TRANSACTIONS).all_keys)


def test_all_versions_and_deletes_items_have_the_cosmos_shape() -> None:
    result, seen = feed(USERS), Counter[str]()
    for index, item in enumerate(result.items):
        if index in result.malformed:
            continue
        obj = json.loads(item)
        assert set(obj) == {"current", "metadata"}
        meta, current = obj["metadata"], obj["current"]
        op = meta["operationType"]
        seen[op] += 1
        assert isinstance(meta["lsn"], int) and isinstance(meta["crts"], int)
        assert meta["timeToLiveExpired"] is False
        assert ("previousImageLSN" in meta) == (op != "create")
        if op == "delete":
            assert current == {}
            assert meta["partitionKey"] == {"id": meta["id"]} and result.keys[index] == meta["id"]
            assert meta["previousImageLSN"] < meta["lsn"]
        else:
            assert all(p in current for p in SYSTEM) and "_lsn" not in current
            assert current["_etag"].startswith('"') and current["_etag"].endswith('"')
            assert current["_ts"] == meta["crts"]
            assert result.keys[index] == current["id"]
    assert seen["create"] and seen["replace"] and seen["delete"]


def test_latest_version_items_are_documents_without_deletes() -> None:
    result = feed(TRANSACTIONS)
    assert result.stats.operations["delete"] == 0
    lsn_by_id: dict[str, set[int]] = {}
    for index, item in enumerate(result.items):
        if index in result.malformed:
            continue
        doc = json.loads(item)
        assert "metadata" not in doc and "current" not in doc
        assert all(p in doc for p in (*SYSTEM, "_lsn", "id", "customerId"))
        assert result.keys[index] == doc["customerId"]  # partitionKeyPath /customerId
        lsn_by_id.setdefault(doc["id"], set()).add(doc["_lsn"])
    assert len(lsn_by_id) == result.stats.operations["create"] == len(result.final_state)


@pytest.mark.parametrize("name", [USERS, TRANSACTIONS])
def test_every_valid_item_satisfies_the_contract_and_every_malformed_one_fails(name: str) -> None:
    c, result = contract(name), feed(name)
    mode = c.source.change_feed_mode  # type: ignore[union-attr]
    for index, item in enumerate(result.items):
        parsed = parse(item, mode)
        if index in result.malformed:
            assert parsed is None or (parsed[0] != "delete" and problems(parsed[2], c.source_columns)), (
                result.malformed[index],
                item,
            )
            continue
        assert parsed is not None, item
        if parsed[0] != "delete":
            assert problems(parsed[2], c.source_columns) == [], item


def test_cpfs_have_valid_check_digits_and_the_helper_agrees() -> None:
    cpfs = [row["cpf"] for row in feed(USERS).final_state.values()]
    assert cpfs and all(cpf_valid(v) for v in cpfs)
    assert len(set(cpfs)) == len(cpfs)
    assert cpf_valid("52998224725") and not cpf_valid("52998224724") and not cpf_valid("11111111111")


@pytest.mark.parametrize("name", [USERS, TRANSACTIONS])
def test_final_state_equals_an_independent_replay(name: str) -> None:
    result = feed(name)
    assert result.final_state == replay(name, result, contract(name).source.change_feed_mode)  # type: ignore[union-attr]
    row = next(iter(result.final_state.values()))
    derived = {c.name for c in contract(name).columns if c.derived}
    assert set(row) == {c.name for c in contract(name).source_columns} and not derived & set(row)


def test_final_state_values_are_typed_as_the_pipeline_stores_them() -> None:
    for row in feed(USERS).final_state.values():
        assert isinstance(row["credit_limit"], Decimal) and row["credit_limit"].as_tuple().exponent == -2
        assert isinstance(row["birth_date"], date) and 1950 <= row["birth_date"].year <= 2006
        assert row["updated_at"].tzinfo == UTC and row["updated_at"] >= row["created_at"]
    for row in feed(TRANSACTIONS).final_state.values():
        assert row["amount"] > 0 and row["amount"].as_tuple().exponent == -2
        assert row["occurred_at"] <= row["updated_at"]


@pytest.mark.parametrize("name", [USERS, TRANSACTIONS])
def test_faults_appear_at_roughly_the_configured_rates(name: str) -> None:
    config = SimulationConfig(events=4000, duplicate_rate=0.03, out_of_order_rate=0.02, malformed_rate=0.01)
    result = ChangeFeedSimulator(contract(name), config).generate()
    mode = contract(name).source.change_feed_mode  # type: ignore[union-attr]
    assert len(result.items) == len(result.keys) == 4000 + result.stats.duplicates + len(result.malformed)
    assert result.stats.valid_events == 4000
    copies = sum(n - 1 for n in Counter(result.items).values())
    assert copies == result.stats.duplicates and 100 <= copies <= 140
    assert 30 <= len(result.malformed) <= 50 and sum(result.stats.malformed.values()) == len(result.malformed)
    kinds = {"not_json", "not_object", "missing_id", "missing_lsn", "missing_required", "wrong_type"}
    kinds |= {"enum_violation", "pattern_violation"} | ({"unknown_operation"} if mode != "latestVersion" else set())
    assert set(result.malformed.values()) == kinds
    # out of order: per key, first deliveries whose LSN is lower than one already delivered
    seen_max: dict[str, int] = {}
    late = 0
    seen: set[bytes] = set()
    for index, item in enumerate(result.items):
        if index in result.malformed or item in seen:
            continue
        seen.add(item)
        op, lsn, doc, meta = parse(item, mode)  # type: ignore[misc]
        key = meta["id"] if op == "delete" else doc["id"]
        late += lsn < seen_max.get(key, -1)
        seen_max[key] = max(lsn, seen_max.get(key, -1))
    assert late == result.stats.out_of_order and 60 <= late <= 80


def test_malformed_items_never_change_the_final_state() -> None:
    clean = feed(USERS, malformed_rate=0.0, duplicate_rate=0.0, out_of_order_rate=0.0)
    noisy = feed(USERS, malformed_rate=0.05, duplicate_rate=0.05, out_of_order_rate=0.05)
    assert noisy.malformed and clean.final_state == noisy.final_state


def test_hot_keys_take_their_share_of_updates() -> None:
    result = feed(USERS, events=5000, hot_key_share=0.3)
    updates = Counter[str]()
    for index, item in enumerate(result.items):
        parsed = None if index in result.malformed else parse(item, "allVersionsAndDeletes")
        if parsed and parsed[0] == "replace":
            updates[parsed[2]["id"]] += 1
    top = sum(n for _, n in updates.most_common(max(1, len(result.all_keys) // 100)))
    assert top / sum(updates.values()) >= 0.25


def test_personal_values_cover_every_personal_column() -> None:
    for name in (USERS, TRANSACTIONS):
        result = feed(name)
        for col in contract(name).personal_columns:
            values = [r[col.name] for r in result.final_state.values() if r[col.name] is not None]
            assert values, col.name
            texts = {v.isoformat() if isinstance(v, date) else str(v) for v in values}
            assert texts <= result.personal_values, col.name
    assert "ABC" in "".join(v for v in feed(USERS).personal_values if not v.isdigit() and len(v) == 11)


def test_transactions_make_relational_sense() -> None:
    users = feed(USERS)
    related = tuple(users.all_keys)
    result = feed(TRANSACTIONS, related_keys=related)
    methods = Counter[str]()
    for row in result.final_state.values():
        assert row["customer_id"] in related
        methods[row["method"]] += 1
        if row["method"] == "pix":
            assert row["merchant_category_code"] is None and row["counterparty_key"]
        else:
            assert row["merchant_category_code"] and row["counterparty_key"] is None
            assert row["merchant_name"] and row["direction"] == "debit"
    assert set(methods) == {"pix", "card_credit", "card_debit"}


def test_rate_comes_from_the_contract_and_can_be_overridden() -> None:
    def span(result: SimulatedFeed) -> float:
        stamps = [row["updated_at"] for row in result.final_state.values()]
        return float((max(stamps) - datetime(2026, 11, 1, tzinfo=UTC)).total_seconds())

    default = feed(USERS, events=1000)  # 150,000 a day: ~0.58 s between changes
    assert 400 < span(default) < 580
    assert span(feed(USERS, events=1000, rate_per_second=100.0)) < 10.0


def test_configuration_errors_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="duplicate_rate"):
        SimulationConfig(duplicate_rate=1.5)
    with pytest.raises(ConfigError, match="mode"):
        SimulationConfig(mode="incremental")
    with pytest.raises(ConfigError, match="mix"):
        SimulationConfig(mix=(0.0, 0.0, 1.0))


@pytest.mark.parametrize(
    "pattern", [r"^[0-9]{11}$", r"^\+55[1-9][0-9]{9,10}$", r"^[A-Z]{3}$", r"^[a-z_]+\.[a-z]{2,4}$", r"^\d{2}-?\w*$"]
)
def test_pattern_generator_output_matches_the_pattern(pattern: str) -> None:
    generate, rng = compile_pattern(pattern, "code"), random.Random(3)
    assert all(re.search(pattern, generate(rng)) for _ in range(200))


def test_unsupported_pattern_names_the_column() -> None:
    with pytest.raises(ContractError, match=r"'code'.*cannot generate"):
        compile_pattern(r"^(BR|PT)[0-9]+$", "code")
