"""Contract tests: `meshkit test` against `datacontract test` (datacontract-cli) on the same contract
and the same 1,000,000-row Parquet file, in the same run.

Quality bar (docs: design.md): contract tests of 1,000,000 rows faster than `datacontract test` on
the same file, with the same verdicts. datacontract-cli is installed into its own virtualenv
(`bench/.work/datacontract-venv`, version pinned below) so it never touches the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
VENV = WORK / "datacontract-venv"
DATACONTRACT = "datacontract-cli[duckdb,parquet]==1.2.8"
PRODUCT = "customers/users"
SERVER = "bench"

# Seeded violations: row i breaks a rule when i % modulus == residue (counts are exact for N = 1,000,000)
VIOLATIONS = {
    "full_name null": (10007, 3),
    "user_id duplicate": (20000, 1),
    "state not a UF": (4999, 11),
    "cpf not 11 digits": (3331, 5),
    "phone not E.164 (+55)": (6661, 7),
    "credit_limit negative": (33331, 13),
}
# datacontract-cli check type -> our check id (None: a field-level check, id `<table>.<field>.<ours>`)
THEIRS_TO_OURS = {
    "field_is_present": "type",
    "field_required": "required",
    "field_unique": "unique",
    "field_regex": "pattern",
    "field_min_length": "minLength",
    "field_max_length": "maxLength",
    "field_minimum": "minimum",
    "field_maximum": "maximum",
    "field_exclusive_minimum": "exclusiveMinimum",
    "field_exclusive_maximum": "exclusiveMaximum",
}


def generate(path: Path, rows: int, seed: int) -> None:
    """Source-shaped users (unmasked, typed per the contract) with the seeded violations, by DuckDB."""

    def hit(name: str) -> str:
        modulus, residue = VIOLATIONS[name]
        return f"(i % {modulus} = {residue})"

    states = "['AC','AL','AP','AM','BA','CE','DF','ES','GO','MA','MT','MS','MG','PA','PB','PR','PE','PI','RJ','RN'," \
             "'RS','RO','RR','SC','SP','SE','TO']"  # fmt: skip
    sql = f"""
    COPY (
      WITH base AS (
        SELECT i, md5('{seed}-' || CASE WHEN {hit("user_id duplicate")} THEN i - 1 ELSE i END) AS m,
               CAST(hash(i, {seed}) % 1000000007 AS BIGINT) AS h
        FROM range({rows}) t(i)
      )
      SELECT
        substr(m, 1, 8) || '-' || substr(m, 9, 4) || '-4' || substr(m, 14, 3) || '-a' || substr(m, 18, 3) || '-'
          || substr(m, 21, 12) AS user_id,
        CASE WHEN {hit("full_name null")} THEN NULL
             ELSE (['Ana','Bruno','Carla','Diego','Elisa','Fabio'])[1 + h % 6] || ' '
               || (['Souza','Lima','Mendes','Rocha','Silva'])[1 + (h // 7) % 5] END AS full_name,
        CASE WHEN {hit("cpf not 11 digits")} THEN 'CPF' || (i % 1000)::VARCHAR
             ELSE lpad(((i * 7919) % 99999999999)::VARCHAR, 11, '0') END AS cpf,
        'user' || i::VARCHAR || '@example.com' AS email,
        CASE WHEN i % 10 = 9 THEN NULL
             WHEN {hit("phone not E.164 (+55)")} THEN '11-9' || (i % 10000)::VARCHAR
             ELSE '+5511' || lpad((i % 1000000000)::VARCHAR, 9, '0') END AS phone,
        DATE '1950-01-01' + CAST(h % 20000 AS INTEGER) AS birth_date,
        CASE WHEN {hit("state not a UF")} THEN 'XX' ELSE {states}[1 + h % 27] END AS state,
        (['retail','premium','private','business'])[1 + (h // 3) % 4] AS segment,
        (['pending','approved','rejected','review'])[1 + (h // 5) % 4] AS kyc_status,
        CASE WHEN {hit("credit_limit negative")} THEN -5.00::DECIMAL(18,2)
             ELSE CAST((h % 100000000) / 100.0 AS DECIMAL(18,2)) END AS credit_limit,
        now() - to_seconds(CAST(86400 * 365 + h % 86400 AS BIGINT)) AS created_at,
        now() - to_seconds(CAST(i % 600 AS BIGINT)) AS updated_at
      FROM base
    ) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(sql)
    con.close()


def ensure_datacontract() -> Path:
    """The pinned datacontract-cli in its own virtualenv (created on first use)."""
    exe = VENV / "bin" / "datacontract"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", DATACONTRACT], check=True)
    return exe


def contract_copy(data: Path, out_dir: Path) -> Path:
    """The product's ODCS contract unchanged except `servers`: datacontract-cli needs a server it can
    read, so the copy gets one `type: local` server with the file's path and `format: parquet`."""
    document = yaml.safe_load((ROOT / "domains" / PRODUCT / "datacontract.yaml").read_text(encoding="utf-8"))
    document["servers"] = [{"server": SERVER, "type": "local", "path": str(data), "format": "parquet"}]
    path = out_dir / "datacontract.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Timed:
    seconds: list[float]
    result: dict[str, Any]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def ours_command(data: Path, out: Path) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "meshkit"), "--root", str(ROOT), "test", PRODUCT, "--path", str(data),
            "--format", "json", "--out", str(out)]  # fmt: skip


def theirs_command(exe: Path, contract: Path, out: Path) -> list[str]:
    return [str(exe), "test", "--server", SERVER, "--output-format", "json", "--output", str(out), str(contract)]


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start


def run_both(data: Path, exe: Path, contract: Path, tmpdir: Path, repeat: int) -> tuple[Timed, Timed]:
    """Alternating runs (theirs, ours, theirs, ours, ...) so both see the same machine load."""
    env = {**os.environ, "MESHKIT_WORKSPACE": str(tmpdir / "workspace")}
    ours_out, theirs_out = tmpdir / "ours.json", tmpdir / "theirs.json"
    ours_times, theirs_times = [], []
    for _ in range(repeat):
        theirs_times.append(timed(theirs_command(exe, contract, theirs_out), env, contract.parent))
        ours_times.append(timed(ours_command(data, ours_out), env, ROOT))
    ours = Timed(ours_times, json.loads(ours_out.read_text(encoding="utf-8")))
    theirs = Timed(theirs_times, json.loads(theirs_out.read_text(encoding="utf-8")))
    return ours, theirs


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """(their check, our check, their verdict, our verdict) for every check both run; and their checks
    with no counterpart. A verdict is `pass` or `fail` (our warnings count as fail)."""
    by_id = {c["id"]: c for c in ours["checks"]}
    quality = {(c["kind"], c["column"]): c for c in ours["checks"] if c["origin"] == "quality"}
    pairs, unmatched = [], []
    for check in theirs["checks"]:
        kind, field, model = check.get("type"), check.get("field"), check.get("model")
        if kind in {"field_type", "general"}:
            continue  # datacontract-cli does not check types in Parquet files ("not supported yet")
        mine = None
        if kind in THEIRS_TO_OURS:
            mine = by_id.get(f"{model}.{field}.{THEIRS_TO_OURS[kind]}")
        elif kind == "field_invalid_values":
            mine = quality.get(("invalidValues", field))
        elif kind == "model_duplicate_values":
            mine = next(
                (c for c in ours["checks"] if c["origin"] == "quality" and c["kind"] == "duplicateValues"), None
            )
        elif kind == "row_count":
            mine = quality.get(("rowCount", None))
        if mine is None:
            unmatched.append(f"{check.get('key')} ({check.get('result')})")
            continue
        theirs_verdict = "pass" if check.get("result") == "passed" else "fail"
        ours_verdict = "pass" if mine["status"] == "passed" else "fail"
        pairs.append((str(check.get("key")), mine["id"], theirs_verdict, ours_verdict))
    return pairs, unmatched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool; the table shows the median")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"contract-tests-users-n{args.rows}-s{args.seed}.parquet"
    if not data.exists():
        start = time.perf_counter()
        generate(data, args.rows, args.seed)
        print(f"generated {data.name} ({data.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")
    exe = ensure_datacontract()
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="contract-tests-") as tmp:
        tmpdir = Path(tmp)
        contract = contract_copy(data, tmpdir)
        data.read_bytes()  # page cache warm for both
        ours, theirs = run_both(data, exe, contract, tmpdir, args.repeat)
        shutil.rmtree(tmpdir / "workspace", ignore_errors=True)
    pairs, unmatched = compare(ours.result, theirs.result)
    same = all(t == o for _, _, t, o in pairs)
    ratio = theirs.median / ours.median if ours.median else float("inf")
    print(f"\ncontract tests of {PRODUCT}, {args.rows:,} rows ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores), {version}; median of {args.repeat} runs, wall clock of each CLI\n")  # fmt: skip
    print("| measure | meshkit test | datacontract test | ratio (theirs / ours) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| wall seconds | {ours.median:.2f} | {theirs.median:.2f} | {ratio:.1f}x |")
    print(
        f"| fastest run (s) | {min(ours.seconds):.2f} | {min(theirs.seconds):.2f} | "
        f"{min(theirs.seconds) / min(ours.seconds):.1f}x |"
    )
    print(f"| all runs (s) | {', '.join(f'{s:.2f}' for s in ours.seconds)} | "
          f"{', '.join(f'{s:.2f}' for s in theirs.seconds)} | |")  # fmt: skip
    ours_failed = [c["id"] for c in ours.result["checks"] if c["status"] in ("failed", "warning", "error")]
    theirs_failed = [c["key"] for c in theirs.result["checks"] if c.get("result") not in ("passed", None)
                     and c.get("type") not in ("field_type", "general")]  # fmt: skip
    print(f"| checks run | {len(ours.result['checks'])} | {len(theirs.result['checks'])} | |")
    print(f"| checks not passed | {len(ours_failed)} | {len(theirs_failed)} | |")
    print(f"\n{len(pairs)} checks run by both; verdicts {'IDENTICAL' if same else 'DIFFER'}:")
    for key, mine, t, o in pairs:
        if t != "pass" or o != "pass" or t != o:
            print(f"  {'=' if t == o else '≠'} {key:<44} {t:<5} | {mine:<28} {o}")
    measured = {c["id"]: c for c in ours.result["checks"]}
    print("\nseeded violations (expected rows) and what meshkit measured:")
    for (name, (modulus, residue)), check_id in zip(VIOLATIONS.items(), (
        "users.full_name.required", "users.user_id.unique", "users.state.enum", "users.cpf.pattern",
        "users.phone.pattern", "users.credit_limit.minimum"), strict=True):  # fmt: skip
        hits = range(residue, args.rows, modulus)
        expected = sum(1 for i in hits if i % 10 != 9) if name.startswith("phone") else len(hits)
        got = measured.get(check_id, {}).get("measured")
        print(f"  {name:<24} expected {expected:>5}  measured {got!s:>7}  ({check_id})")
    only_ours = sorted({c["id"] for c in ours.result["checks"]} - {m for _, m, _, _ in pairs})
    print(f"\nonly datacontract-cli: {', '.join(unmatched) or '–'}")
    print(f"only meshkit: {', '.join(only_ours)}")
    verdict = "PASS" if ratio > 1 and same else "FAIL"
    print(f"\n{verdict}: meshkit {'faster' if ratio > 1 else 'slower'} ({ratio:.1f}x), verdicts "
          f"{'the same' if same else 'different'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
