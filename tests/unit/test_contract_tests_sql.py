"""Contract tests compiled to SQL: ECMA patterns in RE2, the single scan, both dialects, thresholds,
masked columns, custom SQL rules, and agreement with the pipeline's own rules."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from governance.testing.compile import FORMAT_PATTERNS, compile_checks
from governance.testing.model import CustomSql, FailingRows, NoMatch, Threshold
from governance.testing.regex import UnsupportedPattern, re2_pattern
from governance.testing.runner import RunOptions, run_contract_tests
from governance.testing.sql import BIGQUERY, DUCKDB, custom_sql, scan_plan
from meshkit.config import Settings, load_settings
from meshkit.contracts.model import Contract, load_contract, parse_contract
from meshkit.errors import ContractError
from meshkit.secrets import masking_key
from meshkit.yamlio import YamlDocument, load_yaml
from pipelines.transforms import rules
from pipelines.transforms.mask import hmac_hex

REPO = Path(__file__).resolve().parents[2]
USERS = REPO / "domains" / "customers" / "users" / "datacontract.yaml"
PRODUCTS = ("customers/users", "payments/transactions", "risk/customer-exposure")


def _contract(ref: str) -> Contract:
    return load_contract(REPO / "domains" / ref / "datacontract.yaml")


def _users_with(edit: Any) -> Contract:
    document = load_yaml(USERS)
    data = copy.deepcopy(document.data)
    edit(data)
    return parse_contract(YamlDocument(document.path, data, document.lines))


def _matches(pattern: str, value: str) -> bool:
    with duckdb.connect() as con:  # its own connection: the module-wide default one is shared state
        row = con.execute("SELECT regexp_matches(?, ?)", [value, re2_pattern(pattern)]).fetchone()
    assert row is not None
    return bool(row[0])


# --- ECMA -> RE2 ---------------------------------------------------------------------------------


def test_re2_translation_keeps_ecma_meaning() -> None:
    assert re2_pattern(r"^[0-9]{11}$") == r"^[0-9]{11}$"
    assert re2_pattern(r"^\u00e9$") == r"^\x{00e9}$"
    assert re2_pattern(r"(?<year>\d{4})") == r"(?P<year>\d{4})"
    assert re2_pattern(r"a\/b") == "a/b"
    assert "\\x{A0}" in re2_pattern(r"\s")  # ECMA white space is Unicode's
    assert re2_pattern(".") == r"[^\n\r\x{2028}\x{2029}]"
    for unsupported in (r"(?=a)b", r"(?!a)", r"(?<=a)b", r"(a)\1", r"\k<x>", "[^]"):
        with pytest.raises(UnsupportedPattern):
            re2_pattern(unsupported)


VALUES = (
    "12345678901", "12345678901\n", "1234567890", "123456789012", "+5511987654321", "+551198765432",
    "+5501987654321", "BRL", "brl", "BRLX", "5411", "541", "a@b.co", "a b@c.d", "a\u00a0b@c.d", "x@y",
    "0b2c7d1e-1a2b-4c3d-8e9f-0123456789ab", "0b2c7d1e-1a2b-4c3d-8e9f-0123456789ab\n", "",
)  # fmt: skip


def _contract_patterns() -> set[str]:
    found = set(FORMAT_PATTERNS.values())
    for ref in PRODUCTS:
        found |= {str(c.options["pattern"]) for c in _contract(ref).columns if c.options.get("pattern")}
    return found


@pytest.mark.parametrize("pattern", sorted(_contract_patterns()))
def test_patterns_agree_with_the_pipeline(pattern: str) -> None:
    """DuckDB's RE2 on the translated pattern judges every value as the pipeline's ECMA reading does."""
    ecma = rules.ecma_pattern(pattern)
    for value in VALUES:
        assert _matches(pattern, value) == (ecma.search(value) is not None), (pattern, value)


def test_formats_are_the_pipelines() -> None:
    for name, compiled in rules._FORMATS.items():
        assert FORMAT_PATTERNS[name] == compiled.pattern.replace("\\Z", "$")


# --- compiling the contract ----------------------------------------------------------------------


def test_masked_data_skips_value_checks_of_masked_columns() -> None:
    masked = {c.id: c for c in compile_checks(_contract("customers/users"), masked=True)}
    raw = {c.id: c for c in compile_checks(_contract("customers/users"), masked=False)}
    assert masked["users.cpf.pattern"].skip_reason and "hash" in masked["users.cpf.pattern"].skip_reason
    assert masked["users.cpf.unique"].skip_reason is None  # an HMAC keeps distinct values distinct
    assert masked["users.cpf.required"].skip_reason is None
    assert masked["users.full_name.minLength"].skip_reason is not None
    assert masked["users.state.enum"].skip_reason is None  # not personal
    assert all(c.skip_reason is None for c in raw.values() if c.origin != "quality")
    pattern = raw["users.cpf.pattern"].measure
    assert isinstance(pattern, FailingRows) and pattern.predicate == NoMatch("^[0-9]{11}$")


def test_every_kind_of_check_is_compiled() -> None:
    kinds = {c.kind for c in compile_checks(_contract("payments/transactions"), masked=False,
                                            tables={"users": "customers/users"})}  # fmt: skip
    assert {"type", "required", "unique", "enum", "pattern", "format", "maxLength", "maximum",
            "exclusiveMinimum", "invalidValues", "duplicateValues", "reference", "freshness"} <= kinds  # fmt: skip
    users = {c.id: c for c in compile_checks(_contract("customers/users"), masked=False)}
    assert users["users.freshness"].threshold == Threshold("mustBeLessOrEqualTo", 900.0, "seconds")
    assert users["has_rows"].threshold == Threshold("mustBeGreaterThan", 0, "rows")


def test_thresholds_read_and_show_like_odcs() -> None:
    assert str(Threshold("mustBeLessThan", 5, "percent")) == "< 5 %"
    assert Threshold("mustBeBetween", [1, 3]).holds(2.0)
    assert not Threshold("mustNotBeBetween", [1, 3]).holds(2.0)
    assert str(Threshold("mustBeBetween", [1, 3])) == "between 1 and 3 rows"


# --- SQL -----------------------------------------------------------------------------------------


def test_one_scan_per_table_in_both_dialects() -> None:
    checks = compile_checks(_contract("customers/users"), masked=False)
    duck = scan_plan(DUCKDB, '"users"', checks, ["user_id"])
    big = scan_plan(BIGQUERY, "`p.customers.users_current`", checks, ["user_id"])
    assert duck.sql.count("SELECT") == 2 and big.sql.count("SELECT") == 2  # the aggregate over one projection
    assert "FILTER (WHERE" in duck.sql and "regexp_matches" in duck.sql and 'min("user_id", 5)' in duck.sql
    assert "FILTER" not in big.sql and "COUNTIF(" in big.sql and "REGEXP_CONTAINS(" in big.sql
    assert "ARRAY_AGG(IF(" in big.sql and "`cpf`" in big.sql
    # the same enum stated twice (schema + quality rule) is counted once
    assert duck.measures["users.state.enum"] == duck.measures["state_is_brazilian_uf"]
    assert set(duck.sli) == {"validity", "completeness"}


def test_literals_are_escaped_per_dialect() -> None:
    assert DUCKDB.literal("it's \\d") == "'it''s \\d'"
    assert BIGQUERY.literal("it's \\d") == "'it\\'s \\\\d'"
    assert DUCKDB.ident('a"b') == '"a""b"' and BIGQUERY.ident("a`b") == "`a\\`b`"


def test_custom_sql_placeholders_become_quoted_identifiers() -> None:
    rule = CustomSql("SELECT count(*) FROM ${object} WHERE {property} < 0;")
    assert (
        custom_sql(DUCKDB, rule, '"users"', "credit_limit") == 'SELECT count(*) FROM "users" WHERE "credit_limit" < 0'
    )
    assert custom_sql(BIGQUERY, CustomSql("SELECT 1 FROM {model}"), "`p.d.t`", None) == "SELECT 1 FROM `p.d.t`"
    with pytest.raises(ContractError):
        custom_sql(DUCKDB, rule, '"users"', None)


# --- running on a small file ---------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {"user_id": "0b2c7d1e-1a2b-4c3d-8e9f-0123456789a0", "cpf": "12345678901", "state": "SP", "credit_limit": 10.0,
     "full_name": "Ana Souza", "phone": "+5511987654321"},
    {"user_id": "0b2c7d1e-1a2b-4c3d-8e9f-0123456789a1", "cpf": "1234567890X", "state": "SP", "credit_limit": 10.0,
     "full_name": "Al", "phone": None},
    {"user_id": "0b2c7d1e-1a2b-4c3d-8e9f-0123456789a2", "cpf": "12345678902", "state": "XX", "credit_limit": -1.0,
     "full_name": None, "phone": "11 98765"},
    {"user_id": "0b2c7d1e-1a2b-4c3d-8e9f-0123456789a2", "cpf": "12345678902\n", "state": "RJ", "credit_limit": 5.0,
     "full_name": "Bia Lima", "phone": "+5521987654321"},
]  # fmt: skip


def _write(path: Path) -> Path:
    table = pa.Table.from_pylist(ROWS)
    n = table.num_rows
    extra = {
        "email": pa.array([f"u{i}@example.com" for i in range(n)]),
        "birth_date": pa.array(["1990-01-01"] * n).cast(pa.date32()),
        "segment": pa.array(["retail"] * n),
        "kyc_status": pa.array(["approved"] * n),
        "created_at": pa.array(["2026-01-01T00:00:00+00:00"] * n).cast(pa.timestamp("us", tz="UTC")),
        "updated_at": pa.array(["2026-01-01T00:00:00+00:00"] * n).cast(pa.timestamp("us", tz="UTC")),
    }
    for name, values in extra.items():
        table = table.append_column(name, values)
    pq.write_table(table, path)
    return path


def test_a_file_is_judged_with_counts_and_masked_samples(settings: Settings, tmp_path: Path) -> None:
    data = _write(tmp_path / "users.parquet")
    run = run_contract_tests(settings, "customers/users", RunOptions(path=str(data)), key_masker=lambda v: "H:" + v)
    by_id = {o.check.id: o for o in run.outcomes}
    assert run.rows == 4 and not run.ok and run.queries <= 3
    expected = {
        "users.cpf.pattern": 2,  # a letter, and a trailing newline (ECMA `$` is the end of the text)
        "users.state.enum": 1,
        "users.credit_limit.minimum": 1,
        "users.full_name.required": 1,
        "users.full_name.minLength": 1,
        "users.phone.pattern": 1,
        "users.user_id.unique": 1,
    }
    for check_id, count in expected.items():
        assert by_id[check_id].status == "failed" and by_id[check_id].measured == count, check_id
    assert by_id["users.cpf.required"].status == "passed"
    assert by_id["users.state.enum"].sample_keys == ("0b2c7d1e-1a2b-4c3d-8e9f-0123456789a2",)
    assert by_id["users.user_id.unique"].sample_keys == ("0b2c7d1e-1a2b-4c3d-8e9f-0123456789a2",)
    assert by_id["users.freshness"].status == "warning"  # 2026-01-01 is long past the 15-minute latency
    assert run.validity == pytest.approx(1 - 3 / 4)  # rows 2, 3 and 4 break a validity rule
    assert run.completeness == pytest.approx(3 / 4)


def test_percent_rules_and_custom_sql(settings: Settings, tmp_path: Path) -> None:
    data = _write(tmp_path / "users.parquet")

    def edit(doc: dict[str, Any]) -> None:
        doc["schema"][0]["quality"] = [
            {"name": "few_missing_names", "metric": "nullValues", "arguments": {"properties": ["full_name"]},
             "unit": "percent", "mustBeLessThan": 10},
            {"name": "no_negative_limits", "type": "sql", "mustBe": 0,
             "query": "SELECT count(*) FROM {model} WHERE credit_limit < 0"},
            {"name": "gx_suite", "type": "custom", "engine": "greatExpectations", "implementation": "..."},
        ]  # fmt: skip

    contract = _users_with(edit)
    checks = {c.id: c for c in compile_checks(contract, masked=False)}
    assert checks["few_missing_names"].threshold == Threshold("mustBeLessThan", 10, "percent")
    assert checks["gx_suite"].skip_reason is not None
    con = duckdb.connect()
    con.execute(f"CREATE VIEW users AS SELECT * FROM read_parquet('{data}')")
    plan = scan_plan(DUCKDB, "users", list(checks.values()))
    row = con.execute(plan.sql).fetchone()
    assert row is not None and row[plan.measures["few_missing_names"]] == 1  # 1 of 4 rows: 25 %
    query = custom_sql(DUCKDB, checks["no_negative_limits"].measure, "users", None)  # type: ignore[arg-type]
    assert con.execute(query).fetchone() == (1,)
    assert re.search(r"FROM users WHERE", query)


def test_personal_key_values_are_hmacd_in_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A primary key holding personal data never appears raw: samples show its HMAC, as the pipeline's."""
    monkeypatch.delenv("MESHKIT_MASKING_KEY", raising=False)
    root = tmp_path / "repo"
    shutil.copytree(REPO / "domains" / "customers", root / "domains" / "customers")
    contract = root / "domains" / "customers" / "users" / "datacontract.yaml"
    document = yaml.safe_load(contract.read_text(encoding="utf-8"))
    document["schema"][0]["properties"][0]["customProperties"] += [
        {"property": "personalData", "value": True},
        {"property": "masking", "value": "none"},
    ]
    contract.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    settings = load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    data = _write(tmp_path / "users.parquet")
    run = run_contract_tests(settings, "customers/users", RunOptions(path=str(data)))
    enum = next(o for o in run.outcomes if o.check.id == "users.state.enum")
    raw = "0b2c7d1e-1a2b-4c3d-8e9f-0123456789a2"
    assert enum.sample_keys == (hmac_hex(masking_key(settings), raw),)
    assert all(raw not in key for o in run.outcomes for key in o.sample_keys)


def test_a_pattern_re2_cannot_run_is_an_error_not_a_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHKIT_MASKING_KEY", raising=False)
    root = tmp_path / "repo"
    shutil.copytree(REPO / "domains" / "customers", root / "domains" / "customers")
    contract = root / "domains" / "customers" / "users" / "datacontract.yaml"
    document = yaml.safe_load(contract.read_text(encoding="utf-8"))
    cpf = next(p for p in document["schema"][0]["properties"] if p["name"] == "cpf")
    cpf["logicalTypeOptions"]["pattern"] = "^(?!000)[0-9]{11}$"
    contract.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    settings = load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})
    run = run_contract_tests(settings, "customers/users", RunOptions(path=str(_write(tmp_path / "u.parquet"))))
    outcome = next(o for o in run.outcomes if o.check.id == "users.cpf.pattern")
    assert outcome.status == "error" and "look-around" in outcome.reason
    assert not run.ok
