"""Replay throughput: `meshkit run --from-file` (Beam, DirectRunner) against a hand-written pyarrow loop.

Quality bar (docs: design.md): replaying 1,000,000 change events must take at most 2x the wall time of
a plain pyarrow loop doing the same validate + mask + Parquet work over the same file, in the same run.
The baseline reuses the pipeline's per-value functions (orjson, envelope parsing, `compile_column`,
`hmac_masker`, `partial_for`), so the ratio measures the pipeline's structure, not a different validator.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
TARGET_RATIO = 2.0
ROW_GROUP_ROWS = 100_000

sys.path.insert(0, str(ROOT))

from meshkit.config import Settings, load_settings  # noqa: E402
from meshkit.products.discovery import find_product  # noqa: E402
from meshkit.products.model import DataProduct  # noqa: E402


@dataclass(frozen=True)
class Measure:
    """One side of the comparison."""

    wall_seconds: float
    events_in: int
    rows_written: int
    dead_letters: int

    @property
    def events_per_second(self) -> float:
        return self.events_in / self.wall_seconds if self.wall_seconds else 0.0


def replay_file(product: DataProduct, events: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The JSON-lines input for (product, events, seed), generated once with the simulator and cached."""
    from pipelines.sources.simulator import ChangeFeedSimulator, SimulationConfig

    digest = hashlib.sha256(product.contract_path.read_bytes()).hexdigest()[:8]
    stem = f"feed-{product.domain}-{product.name}-n{events}-s{seed}-c{digest}"
    path, meta_path = WORK / f"{stem}.jsonl", WORK / f"{stem}.meta.json"
    if path.is_file() and meta_path.is_file():
        return path, {**json.loads(meta_path.read_text()), "cached": True}
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # The simulator adds ~3% duplicate and malformed deliveries on top of `events` valid changes;
    # the file keeps the first `events` items so the replay has exactly N lines.
    feed = ChangeFeedSimulator(product.contract, SimulationConfig(events=events, seed=seed)).generate()
    items = feed.items[:events]
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        for item in items:
            handle.write(item + b"\n")
    partial.replace(path)
    meta = {
        "lines": len(items),
        "bytes": path.stat().st_size,
        "distinct_items": len(items),
        "generate_seconds": round(time.perf_counter() - started, 1),
        "simulated": {"operations": feed.stats.operations, "duplicates": feed.stats.duplicates},
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return path, {**meta, "cached": False}


def run_baseline(settings: Settings, product: DataProduct, path: Path, out_dir: Path, key: bytes) -> Measure:
    """Decode, validate, mask and write Parquet (zstd) in one plain loop: no Beam, no DuckDB."""
    from pipelines.events import EnvelopeError, delete_key_source, parse_envelope
    from pipelines.transforms.decode import source_schema
    from pipelines.transforms.mask import MaskingPlan, hmac_masker, partial_for
    from pipelines.transforms.rules import compile_column

    started = time.perf_counter()
    contract = product.contract
    columns = contract.source_columns
    converters = [compile_column(c) for c in columns]
    fields = [c.source_field for c in columns]
    plan = MaskingPlan.from_contract(contract, source_schema(contract))
    schema = plan.schema
    hashed = [i for i, c in enumerate(columns) if plan.strategies.get(c.name) == "hash"]
    partial = [(i, partial_for(c)) for i, c in enumerate(columns) if plan.strategies.get(c.name) == "partial"]
    hash_value = hmac_masker(key)
    redacted = [i for i, c in enumerate(columns) if plan.strategies.get(c.name) == "redact"]
    key_at = [columns.index(contract.column(k)) for k in contract.primary_key]
    width = len(columns)

    def flush(values: list[list[Any]], batches: list[pa.RecordBatch]) -> None:
        arrays = [pa.array(v, type=f.type) for v, f in zip(values, schema, strict=True)]
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))

    events_in = dead = written = 0
    values: list[list[Any]] = [[] for _ in schema]
    batches: list[pa.RecordBatch] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(out_dir / "part-0.parquet", schema, compression="zstd") as writer, path.open("rb") as fh:
        for offset, line in enumerate(fh):
            events_in += 1
            try:
                envelope = parse_envelope(orjson.loads(line))
                if envelope.operation == "delete":
                    row: list[Any] = [None] * width
                    for i in key_at:
                        row[i] = converters[i](delete_key_source(envelope, fields[i]))
                else:
                    doc = envelope.document
                    row = [convert(doc.get(f)) for convert, f in zip(converters, fields, strict=True)]
                if any(row[i] is None for i in key_at):
                    raise EnvelopeError("missing-key", "the primary key is missing")
            except ValueError:  # invalid JSON (orjson's error is a ValueError), EnvelopeError, RuleViolation
                dead += 1
                continue
            for i in hashed:
                if row[i] is not None:
                    row[i] = hash_value(row[i])
            for i, mask in partial:
                if row[i] is not None:
                    row[i] = mask(row[i])
            for i in redacted:
                row[i] = None
            ts = envelope.source_ts_seconds
            source_us = None if ts is None else int(ts * 1e6)
            key_text = "|".join(str(row[i]) for i in key_at)
            row += [key_text, envelope.lsn, envelope.operation, source_us, 0, offset]
            for column_values, value in zip(values, row, strict=True):
                column_values.append(value)
            if len(values[0]) >= settings.batch_size:
                flush(values, batches)
                values = [[] for _ in schema]
                if len(batches) * settings.batch_size >= ROW_GROUP_ROWS:
                    table = pa.Table.from_batches(batches)
                    writer.write_table(table)
                    written, batches = written + table.num_rows, []
        if values[0]:
            flush(values, batches)
        if batches:
            table = pa.Table.from_batches(batches)
            writer.write_table(table)
            written += table.num_rows
    return Measure(time.perf_counter() - started, events_in, written, dead)


def run_ours(settings: Settings, product: DataProduct, path: Path) -> tuple[Measure, dict[str, Any]]:
    """The real `meshkit run --from-file` code path, in the workspace `settings` points at."""
    from pipelines.runners.local import run_product

    started = time.perf_counter()
    summary = run_product(settings, product, from_file=path)
    wall = time.perf_counter() - started
    rows = summary.rows_written.get("curated", 0)
    return Measure(wall, summary.events_in, rows, summary.dead_letters), summary.to_dict()


def machine() -> dict[str, Any]:
    import apache_beam
    import duckdb

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD")
        + (" (modified)" if git("status", "--porcelain", "--", "pipelines", "meshkit") else ""),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "apache_beam": apache_beam.__version__,
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
    }


def print_table(ours: Measure, base: Measure, summary: dict[str, Any], info: dict[str, Any]) -> bool:
    ratio = ours.wall_seconds / base.wall_seconds
    passed = ratio <= TARGET_RATIO
    run_eps = summary["events_in"] / summary["duration_seconds"] if summary["duration_seconds"] else 0.0
    print("| measure | ours | baseline | ratio |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| wall seconds | {ours.wall_seconds:.1f} | {base.wall_seconds:.1f} | {ratio:.2f} |")
    eps_ratio = ours.events_per_second / base.events_per_second
    print(f"| events/s (wall) | {ours.events_per_second:,.0f} | {base.events_per_second:,.0f} | {eps_ratio:.2f} |")
    print(f"| events/s (RunSummary) | {run_eps:,.0f} | | |")
    print(f"| events in | {ours.events_in:,} | {base.events_in:,} | |")
    print(f"| dead letters | {ours.dead_letters:,} | {base.dead_letters:,} | |")
    print(f"| rows to Parquet | {ours.rows_written:,} | {base.rows_written:,} | |")
    verdict = "PASS" if passed else "FAIL"
    print(f"\ntarget: ours/baseline wall time <= {TARGET_RATIO}  ->  {verdict} (ratio {ratio:.2f})")
    print(
        "ours also writes the raw zone (gzip), orders and de-duplicates per key, and MERGEs into DuckDB "
        f"(duplicates dropped: {summary['duplicates_dropped']:,}); the baseline does none of that."
    )
    print(
        f"code: {info['commit']}; machine: {info['cores']} cores ({info['cpu']}), "
        f"load {info['load_average_at_start']}, Python {info['python']}, pyarrow {info['pyarrow']}, "
        f"apache-beam {info['apache_beam']}, duckdb {info['duckdb']}"
    )
    return passed


def profile_ours(settings: Settings, product: DataProduct, path: Path) -> None:
    """cProfile of one replay (DirectRunner runs bundles in this process), top functions to stdout."""
    profiler = cProfile.Profile()
    profiler.enable()
    measure, _ = run_ours(settings, product, path)
    profiler.disable()
    out = WORK / "replay_throughput.prof"
    profiler.dump_stats(out)
    print(f"profiled {measure.events_in:,} events in {measure.wall_seconds:.1f} s (profiler on); stats: {out}")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="lines in the replayed file (N)")
    parser.add_argument("--product", default="customers/users", help="<domain>/<product> with a change feed")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--profile", action="store_true", help="profile ours with cProfile instead of comparing")
    args = parser.parse_args()

    base_settings = load_settings(ROOT)
    product = find_product(base_settings.domains_dir, args.product)
    path, feed = replay_file(product, args.events, args.seed)
    how = "cached" if feed["cached"] else f"generated in {feed['generate_seconds']} s"
    print(f"input: {path.relative_to(ROOT)} ({feed['lines']:,} lines, {feed['bytes'] / 1e6:.0f} MB, {how})")
    info = machine()
    with path.open("rb") as handle:  # warm the page cache so neither side pays the first disk read
        while handle.read(1 << 24):
            pass

    with tempfile.TemporaryDirectory(prefix="run-", dir=WORK) as tmp:
        settings = load_settings(ROOT, overrides={"workspace": str(Path(tmp) / "workspace")})
        if args.profile:
            profile_ours(settings, product, path)
            return 0
        from meshkit.secrets import masking_key

        key = masking_key(settings)  # generated into the fresh workspace; the pipeline reads the same key
        base = run_baseline(settings, product, path, Path(tmp) / "baseline", key)
        print(f"baseline: {base.wall_seconds:.1f} s", flush=True)
        ours, summary = run_ours(settings, product, path)
        print(f"ours: {ours.wall_seconds:.1f} s\n", flush=True)

    passed = print_table(ours, base, summary, info)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "product": args.product,
        "input": {"path": str(path.relative_to(ROOT)), **feed},
        "ours": {**asdict(ours), "events_per_second": ours.events_per_second, "run_summary": summary},
        "baseline": {**asdict(base), "events_per_second": base.events_per_second},
        "ratio": ours.wall_seconds / base.wall_seconds,
        "target_ratio": TARGET_RATIO,
        "verdict": "PASS" if passed else "FAIL",
        "machine": info,
    }
    (WORK / "replay_throughput.json").write_text(json.dumps(result, indent=2, default=str))
    return 0  # a benchmark reports; it does not gate


if __name__ == "__main__":
    sys.exit(main())
