"""The local metrics store: every run's summary plus one time-series point per figure, in SQLite.

WAL journaling lets the review and the dashboard read while a pipeline writes; each call opens its
own short-lived connection, so a store is safe to share between threads and processes. Reading a
store that does not exist yet returns nothing and creates nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

from monitoring.metrics.run import RunSummary

BUSY_TIMEOUT_SECONDS = 10.0
PIPELINE = "pipeline"
# summaries written before runs had a stage are pipeline runs
_STAGE = "COALESCE(json_extract(summary, '$.stage'), 'pipeline')"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id     TEXT PRIMARY KEY,
    product    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT NOT NULL,
    status     TEXT NOT NULL,
    summary    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_product ON runs (product, ended_at);
CREATE TABLE IF NOT EXISTS points (
    run_id  TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    product TEXT NOT NULL,
    metric  TEXT NOT NULL,
    ts      TEXT NOT NULL,
    value   REAL NOT NULL,
    PRIMARY KEY (run_id, metric)
);
CREATE INDEX IF NOT EXISTS points_by_metric ON points (product, metric, ts);
"""


def metric_points(summary: RunSummary) -> dict[str, float]:
    """The figures of a run as metric name -> value; one `rows_written.<output>` per output. A relay
    run's names start with `relay.` so pipeline series stay what they are."""
    figures = _figures(summary)
    prefix = "" if summary.stage == PIPELINE else f"{summary.stage}."
    return {f"{prefix}{name}": value for name, value in figures.items()}


def _figures(summary: RunSummary) -> dict[str, float]:
    figures: dict[str, float | None] = {
        "events_in": summary.events_in,
        "dead_letters": summary.dead_letters,
        "duplicates_dropped": summary.duplicates_dropped,
        "freshness_seconds": summary.freshness_seconds,
        "duration_seconds": summary.duration_seconds,
        "replayed": summary.replayed,
        "throughput_eps": summary.throughput_eps,
        "merge_seconds": summary.merge_seconds,
        "request_units": summary.request_units,
        "retries": summary.retries,
        "ownership_changes": summary.ownership_changes if summary.stage == "relay" else None,
        **{f"rows_written.{name}": rows for name, rows in summary.rows_written.items()},
        **{f"lag.partition.{p}": lag for p, lag in summary.lag_by_partition.items()},
    }
    return {name: float(value) for name, value in figures.items() if value is not None}


class MetricsStore:
    """Run summaries and metric points of the local profile (`settings.metrics_path`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            with conn:  # one transaction: committed on success, rolled back on error
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        with self._connect() as conn:
            yield conn

    def record(self, summary: RunSummary, extra: Mapping[str, float] | None = None) -> None:
        """Store a run and its metric points; recording the same run id again replaces it. `extra`
        adds points the summary has no field for (e.g. the contract tests' SLI ratios)."""
        timestamp = summary.ended_at or summary.started_at
        with self._connect() as conn:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (summary.run_id,))
            conn.execute(
                "INSERT INTO runs (run_id, product, started_at, ended_at, status, summary) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    summary.run_id,
                    summary.product,
                    summary.started_at,
                    summary.ended_at,
                    summary.status,
                    json.dumps(summary.to_dict(), sort_keys=True),
                ),
            )
            conn.executemany(
                "INSERT INTO points (run_id, product, metric, ts, value) VALUES (?, ?, ?, ?, ?)",
                [
                    (summary.run_id, summary.product, metric, timestamp, value)
                    for metric, value in {**metric_points(summary), **(extra or {})}.items()
                ],
            )

    def runs(self, product: str | None = None, limit: int | None = None, stage: str = PIPELINE) -> list[RunSummary]:
        """Runs of one stage (pipeline by default) newest first (by end time), of one product or of all."""
        sql = f"SELECT summary FROM runs WHERE {_STAGE} = ?"
        params: list[object] = [stage]
        if product is not None:
            sql += " AND product = ?"
            params.append(product)
        sql += " ORDER BY ended_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall() if conn else []
        return [RunSummary.from_dict(json.loads(row[0])) for row in rows]

    def latest(self, product: str, stage: str = PIPELINE) -> RunSummary | None:
        """The newest run of a product's stage, or None when it never ran."""
        found = self.runs(product, limit=1, stage=stage)
        return found[0] if found else None

    def latest_by_product(self) -> dict[str, RunSummary]:
        """The newest run of every product in one query (the review reads a thousand products)."""
        sql = (
            "SELECT product, summary FROM ("
            " SELECT product, summary,"
            " ROW_NUMBER() OVER (PARTITION BY product ORDER BY ended_at DESC, rowid DESC) AS n FROM runs"
            f" WHERE {_STAGE} = 'pipeline'"
            ") WHERE n = 1"
        )
        with self._read() as conn:
            rows = conn.execute(sql).fetchall() if conn else []
        return {product: RunSummary.from_dict(json.loads(summary)) for product, summary in rows}

    def points(self, product: str, metric: str) -> list[tuple[str, float]]:
        """A metric's (timestamp, value) series for a product, oldest first, ready to plot."""
        sql = "SELECT ts, value FROM points WHERE product = ? AND metric = ? ORDER BY ts, rowid"
        with self._read() as conn:
            rows = conn.execute(sql, (product, metric)).fetchall() if conn else []
        return [(str(ts), float(value)) for ts, value in rows]
