"""Every Beam stage of the standard pipeline under TestPipeline + assert_that."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from meshkit.config import Settings
from pipelines.events import raw_batch
from pipelines.runners.local import local_runner
from pipelines.sinks.stages import WriteChanges, WriteDeadLetters, WriteRawZone
from pipelines.transforms.stages import (
    DEAD,
    DUPLICATES,
    DecodeAndValidate,
    MaskAndTransform,
    OrderAndDeduplicate,
    StageContext,
)

ROOT = Path(__file__).resolve().parents[2]
TX = ROOT / "domains/payments/transactions"


def tx(tid: str, lsn: int, amount: str = "10.00", status: str = "pending") -> bytes:
    return json.dumps(
        {
            "id": tid, "customerId": "11111111-2222-4333-8444-555555555555", "method": "pix",
            "direction": "debit", "amount": amount, "currency": "BRL", "status": status,
            "pixKey": "maria@example.com", "occurred_at": "2026-11-01T10:00:00Z",
            "updated_at": "2026-11-01T10:00:00Z", "_lsn": lsn, "_ts": 1761991200,
        }
    ).encode()  # fmt: skip


A = "6f1c1f0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
B = "7f1c1f0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"


def raw(bodies: list[bytes]) -> pa.RecordBatch:
    return raw_batch(bodies)


def ctx(settings: Settings) -> StageContext:
    return StageContext(
        settings=settings,
        product="payments/transactions",
        contract_path=str(TX / "datacontract.yaml"),
        pipeline_path=str(TX / "pipeline.py"),
        run_id="run-1",
        ingest_date="2026-11-01",
        shards=2,
    )


def rows_of(pcoll: beam.PCollection, *columns: str) -> beam.PCollection:
    """Arrow batches -> tuples of the named columns, for assert_that."""

    def explode(b: pa.RecordBatch | pa.Table) -> list[tuple]:
        d = b.to_pydict()
        return list(zip(*(d[c] for c in columns), strict=True))

    return pcoll | f"Rows{'_'.join(columns)}" >> beam.FlatMap(explode)


def test_decode_order_mask_transform(settings: Settings) -> None:
    bodies = [tx(A, 2, status="settled"), tx(A, 1), tx(B, 1, amount="9000.00"), tx(A, 2, status="settled"), b"oops"]
    c = ctx(settings)
    with BeamTestPipeline(runner=local_runner(), argv=[]) as p:
        decoded = p | beam.Create([raw(bodies)]) | DecodeAndValidate(c)
        assert_that(rows_of(decoded[DEAD], "offset", "reason_code"), equal_to([(4, "invalid-json")]), label="dead")
        ordered = decoded.events | OrderAndDeduplicate(c.shards)
        assert_that(rows_of(ordered[DUPLICATES], "_key", "_lsn"), equal_to([(A, 2)]), label="dups")
        masked = ordered.events | MaskAndTransform(c)
        assert_that(
            rows_of(masked.events, "_key", "_lsn", "status", "amount_band"),
            equal_to([(A, 1, "pending", "small"), (A, 2, "settled", "small"), (B, 1, "pending", "large")]),
            label="events",
        )
        hashed = rows_of(masked.events, "counterparty_key") | "Hashed" >> beam.Map(
            lambda r: r[0] != "maria@example.com" and len(r[0])
        )
        assert_that(hashed, equal_to([64, 64, 64]), label="hashed")


def test_sinks_write_raw_curated_warehouse_and_dead_letters(settings: Settings) -> None:
    c = ctx(settings)
    with BeamTestPipeline(runner=local_runner(), argv=[]) as p:
        raws = p | beam.Create([raw([tx(A, 1), tx(A, 3, status="settled"), b"[]"])]) | WriteRawZone(c)
        decoded = raws | DecodeAndValidate(c)
        written = (decoded.events | OrderAndDeduplicate(c.shards)).events | MaskAndTransform(c)
        assert_that(written.events | WriteChanges(c), equal_to([2]), label="changelog")
        assert_that(decoded[DEAD] | WriteDeadLetters(c), equal_to([1]), label="dead")
    lake = settings.lake_dir
    assert len(list((lake / "meshkit-lake-raw/payments/transactions").rglob("part-*.jsonl.gz"))) == 1
    assert len(list((lake / "meshkit-lake-raw/payments/transactions/_dead_letters").rglob("*.jsonl.gz"))) == 1
    curated = list((lake / "meshkit-lake-curated/payments/transactions").rglob("*.parquet"))
    assert len(curated) == 1 and "ingest_date=2026-11-01" in str(curated[0])


def test_raw_zone_files_replay_byte_for_byte(settings: Settings) -> None:
    from pipelines.sinks.lake import write_raw
    from pipelines.sinks.stages import layout_of
    from pipelines.sources.bus import read_change_feed_file

    bodies = [tx(A, 1), b'{"multi":\n"line"}', b"not json"]
    path = Path(write_raw(layout_of(ctx(settings)), raw(bodies), "2026-11-01"))
    replayed = [b for batch in read_change_feed_file(path, 2) for b in batch.column("body").to_pylist()]
    assert replayed == [bodies[0], b'{"multi": "line"}', b"not json"]
    assert json.loads(replayed[1]) == json.loads(bodies[1])


def test_a_failing_domain_transform_dead_letters_its_rows(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "pipeline.py"
    broken.write_text(
        "from pipelines.product import ChangeFeedPipeline\n"
        "def transform(batch):\n"
        "    raise ZeroDivisionError('bad domain logic')\n"
        "pipeline = ChangeFeedPipeline(transform=transform)\n"
    )
    c = StageContext(**{**ctx(settings).__dict__, "pipeline_path": str(broken)})
    with BeamTestPipeline(runner=local_runner(), argv=[]) as p:
        decoded = p | beam.Create([raw([tx(A, 1), tx(B, 1)])]) | DecodeAndValidate(c)
        masked = (decoded.events | OrderAndDeduplicate(c.shards)).events | MaskAndTransform(c)
        assert_that(masked.events, equal_to([]), label="none")
        assert_that(
            rows_of(masked[DEAD], "offset", "reason_code"),
            equal_to([(0, "transform-error"), (1, "transform-error")]),
            label="dead",
        )


def test_a_pipeline_file_that_does_not_import_is_a_located_error(tmp_path: Path) -> None:
    import pytest

    from meshkit.errors import ContractError
    from pipelines.product import load_pipeline

    broken = tmp_path / "pipeline.py"
    broken.write_text("x = 1\ny = undefined_name\n")
    with pytest.raises(ContractError) as info:
        load_pipeline(broken)
    assert info.value.location is not None and info.value.location.line == 2
    assert "NameError" in info.value.reason
