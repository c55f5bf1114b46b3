"""Where a test run's results go besides the terminal: an OpenLineage run of job
`<domain>.<product>.test` with a `dataQualityAssertions` facet on the tested dataset, the SLI ratios
in the metrics store (stage `test`, names from `monitoring.slo.derive`), and the latest results per
product as JSON, which the review's testing section reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import InputDatasetFacet, data_quality_metrics_input_dataset

from governance.testing.model import ContractTestRun
from meshkit import __version__ as meshkit_version
from meshkit.config import Settings
from meshkit.products.model import DataProduct
from monitoring.lineage import facets as f
from monitoring.lineage.emitter import LineageEmitter, job_name
from monitoring.lineage.naming import (
    DatasetName,
    bigquery_dataset,
    file_dataset,
    gcs_dataset,
    lake_zone_dataset,
    warehouse_dataset,
)
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.derive import CONTRACT_TEST_SLI_METRICS, CONTRACT_TEST_STAGE
from pipelines.sinks.warehouse import WarehouseTables

RESULTS_DIR = "tests"


def results_path(settings: Settings, product_ref: str) -> Path:
    """`<workspace>/reports/tests/<domain>/<product>.json`: the latest run's results."""
    domain, name = product_ref.split("/")
    return settings.reports_dir / RESULTS_DIR / domain / f"{name}.json"


def save_results(settings: Settings, run: ContractTestRun) -> Path:
    path = results_path(settings, run.product)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_dict(), indent=2), encoding="utf-8")
    return path


def load_results(settings: Settings, product_ref: str) -> dict[str, object] | None:
    path = results_path(settings, product_ref)
    if not path.is_file():
        return None
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def record_metrics(settings: Settings, run: ContractTestRun) -> dict[str, float]:
    """The run as a `test` stage summary (rows tested as events in) plus its SLI ratios and counts."""
    points = {
        "test.checks_failed": float(run.count("failed") + run.count("error")),
        "test.checks_warning": float(run.count("warning")),
        "test.checks_total": float(len(run.outcomes)),
    }
    for kind, metric in CONTRACT_TEST_SLI_METRICS.items():
        value = run.validity if kind == "validity" else run.completeness
        if value is not None:
            points[metric] = value
    summary = RunSummary(
        product=run.product,
        run_id=run.run_id,
        started_at=run.started_at,
        ended_at=run.ended_at,
        status="completed" if run.ok else "failed",
        events_in=run.rows,
        duplicates_dropped=0,
        dead_letters=0,
        duration_seconds=run.duration_seconds,
        stage=CONTRACT_TEST_STAGE,
    )
    MetricsStore(settings.metrics_path).record(summary, extra=points)
    return points


def tested_dataset(settings: Settings, product: DataProduct, run: ContractTestRun) -> DatasetName:
    """The OpenLineage name of what was read (the same names the pipeline's own events use)."""
    tables = WarehouseTables.of(product.domain, product.contract.table_name)
    if run.dataset.startswith("bigquery://"):
        project, schema, table = run.dataset.removeprefix("bigquery://").split(".")
        return bigquery_dataset(project, schema, table)
    if "::" in run.dataset:
        return warehouse_dataset(settings.warehouse_path, tables.schema, f"{tables.table}_current")
    if run.dataset.startswith("gs://"):
        bucket, _, rest = run.dataset.removeprefix("gs://").partition("/")
        return gcs_dataset(bucket, rest)
    zone = "refined" if product.is_refined else "curated"
    if Path(run.dataset) == settings.lake_dir / settings.bucket(zone) / product.domain / product.name:
        return lake_zone_dataset(settings.lake_dir, settings.bucket(zone), product.domain, product.name)
    return file_dataset(Path(run.dataset.split("*")[0]))


def emit_lineage(settings: Settings, product: DataProduct, run: ContractTestRun) -> RunEvent:
    """START and COMPLETE (or FAIL when an error-severity check failed) of `<domain>.<product>.test`;
    the tested dataset is the input, with its assertions and row count."""
    emitter = LineageEmitter.from_settings(settings)
    dataset = tested_dataset(settings, product, run)
    assertions = [
        f.CheckResult(
            name=o.check.id,
            metric=o.check.kind,
            success=o.status == "passed",
            column=o.check.column,
            severity=o.check.severity,
            expected=str(o.check.threshold),
            actual=o.measured_text,
            description=o.check.description or None,
        )
        for o in run.outcomes
        if o.status != "skipped"
    ]
    input_facets: dict[str, InputDatasetFacet] = {
        "dataQualityAssertions": f.assertions_facet(tuple(assertions)),
        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics={}, rowCount=run.rows, producer=f.PRODUCER
        ),
    }
    facets = f.dataset_facets(
        ("schema", f.schema_facet(product.contract.columns)),
        ("datasource", f.datasource_facet(dataset)),
        ("symlinks", f.symlinks_facet(product.contract)),
        ("dataContract", f.data_contract_facet(product.contract)),
    )
    job = Job(
        namespace=emitter.namespace,
        name=job_name(product, CONTRACT_TEST_STAGE),
        facets=f.job_facets(product, f.Engine("meshkit", meshkit_version), "BATCH"),
    )
    event = None
    try:
        for state, when, inputs in (
            (RunState.START, run.started_at, [InputDataset(dataset.namespace, dataset.name, facets=facets)]),
            (
                RunState.COMPLETE if run.ok else RunState.FAIL,
                run.ended_at,
                [InputDataset(dataset.namespace, dataset.name, facets=facets, inputFacets=input_facets)],
            ),
        ):
            event = RunEvent(
                eventType=state, eventTime=when or datetime.now(UTC).isoformat(), run=Run(runId=run.run_id),
                job=job, inputs=inputs, outputs=[], producer=f.PRODUCER,
            )  # fmt: skip
            emitter.client.emit(event)
    finally:
        emitter.close()
    assert event is not None
    return event
