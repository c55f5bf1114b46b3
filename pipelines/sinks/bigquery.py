"""The warehouse on GCP: BigQuery, with the same interface and the same SQL as `DuckDBWarehouse`.

Per product, in dataset `<domain>` of the project: `<table>_changelog` (every change once per key and
LSN; partitioned by `_ingested_at` day, clustered by `_key`, `_lsn`), `<table>_current` (one row per
live key, kept by MERGE on key + LSN; clustered by `_key`), `<table>_dead_letters` and
`<table>_duplicates` (audit rows without payload). Table schemas come from the batch's Arrow schema
through the one type mapping (`evolution.api_fields` -> `meshkit.contracts.types.bigquery_of_arrow`),
the schema the contract's `arrow_schema` produced; later batches evolve the tables by `plan_evolution`.

How a batch is written — a load job into a staging table, then one script of three statements:

- **chosen: load job + one script**: previous images filled in the staged batch, one `MERGE` into the
  current table from the newest of changelog + batch per key, then `INSERT ... WHERE NOT EXISTS
  (key, LSN)` into the changelog. De-duplication on (key, LSN) is exact in SQL, not best-effort; load
  jobs are free; nothing is written to rows in a streaming buffer. The changelog is written last and
  is what `unseen` (the replay gate) reads, so a batch cut short before it is replayed in full, and
  every statement is idempotent. One gap remains without a transaction: a delete whose only earlier
  image is the current row (history pruned) loses that image if the run dies between the MERGE and
  the INSERT. A `BEGIN TRANSACTION ... COMMIT` around the three would close it on BigQuery, but
  local-bigquery 0.3.2 cannot run a MERGE inside a transaction (its MERGE opens its own DuckDB
  transaction and aborts the outer one), and untested SQL is not shipped.
- streaming inserts (`insertAll`, insertId = key:LSN): insertId de-duplication is best-effort (about a
  minute; here key:LSN is the exact SQL key instead) and streaming-buffer rows refuse UPDATE/MERGE.
- Storage Write API: exactly-once by stream offsets, cheapest per GB for append-only feeds; Beam
  Python's sink for it is cross-language (a Java expansion service, not downloadable here).
- Beam's `WriteToBigQuery` (FILE_LOADS or STREAMING_INSERTS, both tested in tests/emulators) only
  appends: the image fill and the MERGE must follow the append of the same batch, per shard, in order,
  so the sink is this client-library DoFn.

Staging tables (`_staging_<table>_<id>`) expire after a day even when a crash skips their removal.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from meshkit.contracts.bigquery import arrow_schema, field_type
from pipelines.sinks.evolution import ColumnChange, EvolutionPlan, api_fields, inferred_key, plan_evolution
from pipelines.sinks.warehouse import MergeResult, WarehouseTables

if TYPE_CHECKING:
    from google.cloud import bigquery_storage_v1

    from meshkit.contracts.model import Contract

STAGING_TTL = timedelta(days=1)
# A DML statement that loses a race with another on the same table is aborted by BigQuery; the whole
# script is idempotent (exact (key, LSN) de-duplication, MERGE that never regresses), so it is retried.
CONFLICT_RETRIES = 5
_CONFLICT_MARKS = ("concurrent update", "could not serialize")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(table_id: str) -> threading.Lock:
    """Batches of one product in this process take turns (as DuckDB's do): no self-inflicted conflicts."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(table_id, threading.Lock())


def _q(name: str) -> str:
    return f"`{name}`"


class BigQueryWarehouse:
    """Idempotent writes to BigQuery: re-running any batch leaves the tables as they were.

    `client` is a google-cloud-bigquery client (tests pass one pointed at an emulator); `read_client`
    an optional Storage Read API client for `read` (without it rows come through the REST API)."""

    def __init__(
        self,
        client: bigquery.Client,
        *,
        location: str | None = None,
        read_client: bigquery_storage_v1.BigQueryReadClient | None = None,
    ) -> None:
        self.client = client
        self.location = location
        self.read_client = read_client
        self._datasets: set[str] = set()

    @property
    def project(self) -> str:
        return str(self.client.project)

    def table_id(self, t: WarehouseTables, kind: str) -> str:
        return f"{self.project}.{t.schema}.{t.table}_{kind}"

    def name(self, t: WarehouseTables, kind: str) -> str:
        """The table as GoogleSQL names it (quoted)."""
        return _q(self.table_id(t, kind))

    # --- tables ---------------------------------------------------------------------------------------

    def _ensure_dataset(self, t: WarehouseTables) -> None:
        dataset_id = f"{self.project}.{t.schema}"
        if dataset_id in self._datasets:
            return
        try:  # provisioned by Terraform in the cloud (terraform/modules/gcp-platform): look before creating,
            self.client.get_dataset(dataset_id)  # a pipeline account may read datasets it cannot create
        except gexc.NotFound:
            dataset = bigquery.Dataset(dataset_id)
            if self.location:
                dataset.location = self.location
            self.client.create_dataset(dataset, exists_ok=True)
        self._datasets.add(dataset_id)

    def _table_schema(self, t: WarehouseTables, kind: str) -> list[bigquery.SchemaField] | None:
        try:
            return list(self.client.get_table(self.table_id(t, kind)).schema)
        except gexc.NotFound:
            return None

    def _plan(self, t: WarehouseTables, kind: str, wanted: pa.Schema) -> EvolutionPlan | None:
        """None when the table does not exist yet; raises `SchemaEvolutionError` on a breaking change
        (modes are not compared, as in DuckDB: a batch does not carry the contract's REQUIRED)."""
        current = self._table_schema(t, kind)
        if current is None:
            return None
        have, want = api_fields(current), api_fields(wanted)
        plan = plan_evolution(
            have,
            want,
            product=t.schema,
            table=self.table_id(t, kind),
            modes=False,
            current_key=inferred_key(have),
            wanted_key=inferred_key(want),
        )
        plan.raise_if_breaking()
        return plan

    def check_contract(self, product: str, contract: Contract) -> list[EvolutionPlan]:
        """Pre-flight (`evolution.check_evolution`), as `DuckDBWarehouse.check_contract`: the existing
        changelog and current tables against the contract's derived schemas, types and key; a column the
        contract requires must hold no NULL in the current table."""
        t = WarehouseTables.of(product.split("/", maxsplit=1)[0], contract.table_name)
        plans = []
        for kind in ("changelog", "current"):
            current = self._table_schema(t, kind)
            if current is None:
                continue
            have = api_fields(current)
            snapshot = "_key" not in {f["name"] for f in have}  # refined products replace a plain snapshot
            wanted = arrow_schema(contract, "contract" if snapshot else kind)
            plan = plan_evolution(
                have,
                wanted,
                product=product,
                table=self.table_id(t, kind),
                modes=False,
                current_key=inferred_key(have),
                wanted_key=contract.primary_key,
            )
            if kind == "current":
                plan = self._required_holding_nulls(t, kind, plan, wanted, {f["name"] for f in have})
            plan.raise_if_breaking()
            plans.append(plan)
        return plans

    def _required_holding_nulls(
        self, t: WarehouseTables, kind: str, plan: EvolutionPlan, wanted: pa.Schema, present: set[str]
    ) -> EvolutionPlan:
        required = [f.name for f in wanted if not f.nullable and f.name in present and f.name[:1] != "_"]
        if not required:
            return plan
        counts = ", ".join(f"COUNTIF({_q(c)} IS NULL)" for c in required)
        row = self._run(f"SELECT {counts} FROM {self.name(t, kind)}")
        extra = tuple(
            ColumnChange(name, "required", f"NULLABLE ({nulls:,} NULL rows)", "REQUIRED", breaking=True)
            for name, nulls in zip(required, row[0].values() if row else (), strict=False)
            if nulls
        )
        return EvolutionPlan(plan.product, plan.table, plan.changes + extra, plan.current_fields, plan.wanted_fields)

    def _evolve(self, t: WarehouseTables, kind: str, wanted: pa.Schema, plan: EvolutionPlan | None) -> None:
        """CREATE the table (REQUIRED where the batch's field is non-nullable), or add its new columns
        (`update_table`) and widen its widened ones (`ALTER COLUMN SET DATA TYPE`, the only way)."""
        self._ensure_dataset(t)
        if plan is None:
            table = bigquery.Table(
                self.table_id(t, kind), schema=[bigquery.SchemaField.from_api_repr(f) for f in api_fields(wanted)]
            )
            if kind == "changelog" and "_ingested_at" in wanted.names:
                table.time_partitioning = bigquery.TimePartitioning(field="_ingested_at", type_="DAY")
            if "_key" in wanted.names and kind in ("changelog", "current"):
                table.clustering_fields = ["_key", "_lsn"] if kind == "changelog" else ["_key"]
            self.client.create_table(table, exists_ok=True)
            return
        if not plan.changes:
            return
        for name in plan.widened:
            wanted_type = next(f for f in api_fields(wanted) if f["name"] == name)
            self._run(
                f"ALTER TABLE {self.name(t, kind)} ALTER COLUMN {_q(name)} SET DATA TYPE {field_type(wanted_type).sql}"
            )
        if plan.added:
            table = self.client.get_table(self.table_id(t, kind))
            have = {f.name for f in table.schema}
            added = [bigquery.SchemaField.from_api_repr(f) for f in plan.wanted_fields if f["name"] not in have]
            table.schema = [*table.schema, *(f if f.mode != "REQUIRED" else _nullable(f) for f in added)]
            self.client.update_table(table, ["schema"])

    def _load(self, table_id: str, rows: pa.Table, disposition: str) -> None:
        """One load job of `rows` (Parquet in memory) into `table_id`."""
        buffer = io.BytesIO()
        pq.write_table(rows, buffer, compression="zstd")
        buffer.seek(0)
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET, write_disposition=disposition)
        self.client.load_table_from_file(buffer, table_id, job_config=config, location=self.location).result()

    def _stage(self, t: WarehouseTables, rows: pa.Table) -> str:
        """A new staging table holding `rows`, expiring on its own."""
        self._ensure_dataset(t)
        table_id = f"{self.project}.{t.schema}._staging_{t.table}_{uuid.uuid4().hex[:16]}"
        table = bigquery.Table(
            table_id, schema=[bigquery.SchemaField.from_api_repr(f) for f in api_fields(rows.schema)]
        )
        table.expires = datetime.now(UTC) + STAGING_TTL
        self.client.create_table(table)
        self._load(table_id, rows, bigquery.WriteDisposition.WRITE_APPEND)
        return table_id

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[bigquery.Row]:
        config = bigquery.QueryJobConfig(query_parameters=list(params))
        return list(self.client.query(sql, job_config=config, location=self.location).result())

    # --- the warehouse interface -------------------------------------------------------------------------

    def apply_changes(self, t: WarehouseTables, events: pa.Table) -> MergeResult:
        """Append new (key, LSN) rows to the changelog, then bring affected keys of the current table to
        their newest changelog row: deletes remove the row, older or replayed events never regress it.
        One script (see `_merge_script`); retried as a whole when BigQuery aborts it for a concurrent
        update (the script is idempotent)."""
        if events.num_rows == 0:
            return MergeResult(0, 0)
        data_columns = [n for n in events.column_names if n not in ("_op", "_partition", "_offset", "_run_id")]
        with _lock_for(self.table_id(t, "changelog")):
            # both tables are checked before anything changes: a refused batch leaves them as they were
            current_shape = events.select(data_columns).schema
            plans = {
                "changelog": self._plan(t, "changelog", events.schema),
                "current": self._plan(t, "current", current_shape),
            }
            self._evolve(t, "changelog", events.schema, plans["changelog"])
            self._evolve(t, "current", current_shape, plans["current"])
            stage = self._stage(t, events)
            try:
                script = self._merge_script(t, _q(stage), events.column_names, data_columns)
                for attempt in range(CONFLICT_RETRIES + 1):
                    try:
                        rows = self._run(script)
                        break
                    except gexc.GoogleAPICallError as exc:
                        if attempt == CONFLICT_RETRIES or not any(m in str(exc).lower() for m in _CONFLICT_MARKS):
                            raise
                        time.sleep(0.5 * 2**attempt)
            finally:
                self.client.delete_table(stage, not_found_ok=True)
        inserted = int(rows[0][0]) if rows else 0
        return MergeResult(inserted, events.num_rows - inserted)

    def _merge_script(self, t: WarehouseTables, batch: str, names: Sequence[str], data_columns: Sequence[str]) -> str:
        """DuckDBWarehouse.apply_changes in GoogleSQL, ordered so the changelog is written last: it is
        what `unseen` reads, so a batch cut short anywhere before that is replayed in full, and each
        statement is idempotent. (1) deletes in the staged batch get their previous images, (2) one
        MERGE brings the current table to the newest of changelog + batch per key, (3) new (key, LSN)
        rows are appended to the changelog; the script answers how many."""
        changelog, current = self.name(t, "changelog"), self.name(t, "current")
        listed = ", ".join(_q(c) for c in names)
        cols = ", ".join(_q(c) for c in data_columns)
        updates = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in data_columns)
        values = ", ".join(f"s.{_q(c)}" for c in data_columns)
        images = self._previous_images_sql(t, batch, names, [c for c in data_columns if not c.startswith("_")])
        return f"""
{images}
MERGE {current} AS t
USING (
  SELECT {cols}, _op FROM (
    SELECT {listed} FROM {changelog} WHERE _key IN (SELECT DISTINCT _key FROM {batch})
    UNION ALL
    SELECT {listed} FROM {batch}
  ) AS u
  WHERE TRUE
  QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC) = 1
) AS s
ON t._key = s._key
WHEN MATCHED AND s._op = 'delete' THEN DELETE
WHEN MATCHED AND s._lsn > t._lsn THEN UPDATE SET {updates}
WHEN NOT MATCHED AND s._op <> 'delete' THEN INSERT ({cols}) VALUES ({values});
INSERT INTO {changelog} ({listed})
SELECT {", ".join(f"b.{_q(c)}" for c in names)} FROM {batch} b
WHERE NOT EXISTS (SELECT 1 FROM {changelog} c WHERE c._key = b._key AND c._lsn = b._lsn);
SELECT @@row_count;
"""

    def _previous_images_sql(self, t: WarehouseTables, batch: str, names: Sequence[str], columns: list[str]) -> str:
        """`DuckDBWarehouse._attach_previous_images` in GoogleSQL, on the staged batch before the MERGE:
        a delete gets the image it deleted, from the key's newest earlier non-delete row of the changelog
        or of this batch, else from the current-state row; only null columns are filled (idempotent)."""
        if not columns:
            return ""
        changelog, current = self.name(t, "changelog"), self.name(t, "current")
        listed = ", ".join(_q(c) for c in names)
        history = f"(SELECT {listed} FROM {changelog} UNION ALL SELECT {listed} FROM {batch})"
        fill = ", ".join(f"{_q(c)} = COALESCE(d.{_q(c)}, p.{_q(c)})" for c in columns)
        picked = ", ".join(f"x.{_q(c)}" for c in columns)
        statements = []
        for source, older in ((history, "x._lsn < b._lsn AND x._op <> 'delete'"), (current, "x._lsn < b._lsn")):
            statements.append(
                f"""UPDATE {batch} AS d SET {fill}
FROM (
  SELECT b._key AS _dkey, b._lsn AS _dlsn, {picked}
  FROM {batch} b JOIN {source} x ON x._key = b._key AND {older}
  WHERE b._op = 'delete'
  QUALIFY row_number() OVER (PARTITION BY b._key, b._lsn ORDER BY x._lsn DESC) = 1
) AS p
WHERE d._key = p._dkey AND d._lsn = p._dlsn AND d._op = 'delete';"""
            )
        return "\n".join(statements)

    def unseen(self, t: WarehouseTables, events: pa.Table) -> pa.Table:
        """The events whose (key, LSN) the changelog does not hold yet: what a replay must still write."""
        if events.num_rows == 0 or not self.exists(t, "changelog"):
            return events
        keys = events.column("_key").to_pylist()
        lsns = events.column("_lsn").cast(pa.int64()).to_pylist()
        rows = self._run(
            f"SELECT DISTINCT i FROM UNNEST(@keys) AS k WITH OFFSET i "
            f"JOIN {self.name(t, 'changelog')} c ON c._key = k AND c._lsn = @lsns[OFFSET(i)] "
            f"WHERE c._key IN UNNEST(@keys)",
            [bigquery.ArrayQueryParameter("keys", "STRING", keys), bigquery.ArrayQueryParameter("lsns", "INT64", lsns)],
        )
        if not rows:
            return events
        seen = pa.array(sorted(int(r[0]) for r in rows), pa.int64())
        return events.filter(pc.invert(pc.is_in(pa.array(range(events.num_rows), pa.int64()), value_set=seen)))

    def append(self, t: WarehouseTables, kind: str, rows: pa.Table) -> int:
        """Append audit rows (dead letters, duplicates): one load job."""
        if rows.num_rows == 0:
            return 0
        self._evolve(t, kind, rows.schema, self._plan(t, kind, rows.schema))
        self._load(self.table_id(t, kind), rows, bigquery.WriteDisposition.WRITE_APPEND)
        return rows.num_rows

    def replace(self, t: WarehouseTables, kind: str, rows: pa.Table) -> int:
        """Replace a table atomically with `rows` (refined products' snapshots): one WRITE_TRUNCATE load."""
        self._ensure_dataset(t)
        self._load(self.table_id(t, kind), rows, bigquery.WriteDisposition.WRITE_TRUNCATE)
        return rows.num_rows

    def read(self, t: WarehouseTables, kind: str) -> pa.Table:
        rows = self.client.list_rows(self.table_id(t, kind))
        if self.read_client is not None:
            return rows.to_arrow(bqstorage_client=self.read_client)
        return rows.to_arrow(create_bqstorage_client=False)

    def count(self, t: WarehouseTables, kind: str) -> int:
        """Rows in one of the product's tables (0 when it does not exist yet)."""
        if not self.exists(t, kind):
            return 0
        rows = self._run(f"SELECT COUNT(*) FROM {self.name(t, kind)}")
        return int(rows[0][0]) if rows else 0

    def exists(self, t: WarehouseTables, kind: str) -> bool:
        return self._table_schema(t, kind) is not None

    def query_row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The first row of a query (positional `?` parameters are strings), for measures such as
        `pipelines.quality.measure_table`."""
        values = [bigquery.ScalarQueryParameter(None, "STRING", p) for p in params]
        rows = self._run(sql, values)
        return tuple(rows[0].values()) if rows else ()


def _nullable(field: bigquery.SchemaField) -> bigquery.SchemaField:
    """BigQuery adds columns NULLABLE only (old rows have no value)."""
    api = field.to_api_repr()
    api["mode"] = "NULLABLE"
    return bigquery.SchemaField.from_api_repr(api)
