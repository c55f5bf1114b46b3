"""OpenLineage run events for product runs, built with openlineage-python's own models.

One run of a stage (`<domain>.<product>.<stage>`, e.g. `customers.users.pipeline` or `.relay`) emits
START, RUNNING while it lasts (`run.Heartbeat`), then one of COMPLETE, FAIL or ABORT. The transport comes
from OpenLineage's transport factory, keyed on `type`: the local profile appends NDJSON to
`settings.lineage_path`. Events carry names, types, counts and owners — never values (the facets are
built from contract metadata, see `facets.py`), and error messages are scrubbed of anything that looks
like a personal value or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack, cast

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    InputDatasetFacet,
    OutputDatasetFacet,
    RunFacet,
    data_quality_metrics_input_dataset,
    error_message_run,
    execution_parameters_run,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
)

from meshkit import __version__ as meshkit_version
from meshkit.config import Settings
from meshkit.contracts.model import Contract
from meshkit.errors import ConfigError, MeshkitError
from meshkit.products.discovery import find_product
from meshkit.products.model import DataProduct
from monitoring.lineage import facets as f
from monitoring.lineage.column_lineage import change_feed_lineage, identity_lineage, refined_lineage
from monitoring.lineage.facets import PRODUCER, DatasetFigures, Engine, RunFigures, schema_facet
from monitoring.lineage.naming import DatasetName

MAX_ERROR_LENGTH = 500
# Output names whose datasets hold source documents as received (schema = source field names), and
# the audit output of rejected events; every other output is published under the product's contract.
SOURCE_SHAPED_OUTPUTS = frozenset({"raw", "bus"})
DEAD_LETTER_OUTPUT = "dead_letters"
_STAGE = re.compile(r"^[a-z][a-z0-9_-]*$")
# What an error message must not carry into a lineage event: e-mail addresses, long digit runs
# (tax ids, phones, card numbers), and key=value secrets such as connection-string parts.
_SCRUB = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\d[\d .\-/]{4,}\d"), "<number>"),
    (
        re.compile(r"(?i)\b(password|pwd|secret|token|api[_-]?key|accountkey|sharedaccesskey|sig)\s*[=:]\s*[^\s;,&]+"),
        r"\1=<redacted>",
    ),
)

Parent = tuple[str, str]  # (job name, run id) of the run that started this one


class RunArgs(TypedDict, total=False):
    """What every event of one run repeats: its datasets, its parent run and its engine."""

    inputs: Required[Mapping[str, DatasetName]]  # by input port name
    outputs: Required[Mapping[str, DatasetName]]  # by output name
    parent: Parent | None
    engine: Engine | None


def job_name(product: DataProduct, stage: str) -> str:
    """`<domain>.<product>.<stage>`, e.g. `customers.users.pipeline`."""
    if not _STAGE.match(stage):
        raise ConfigError(
            f"invalid lineage stage name {stage!r}",
            hint="Use lower-case letters, digits, '-' or '_', e.g. `pipeline` or `relay`.",
        )
    return f"{product.domain}.{product.name}.{stage}"


def file_transport_config(path: Path) -> dict[str, Any]:
    """OpenLineage's own file transport in append mode: one JSON event per line in one file."""
    return {"type": "file", "log_file_path": str(path), "append": True}


def scrub_error(error: str) -> str:
    """First line of an error, bounded, with personal-looking values and secrets replaced."""
    lines = error.strip().splitlines()
    text = lines[0] if lines else "unknown error"
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text[:MAX_ERROR_LENGTH]


class LineageEmitter:
    """Emits the run events of one stage of a product (`<domain>.<product>.<stage>`)."""

    def __init__(
        self,
        namespace: str,
        transport: Mapping[str, Any] | None = None,
        processing_type: str = "BATCH",
        *,
        client: OpenLineageClient | None = None,
    ) -> None:
        """Either a ready client (`transports.client_for`: the user's OpenLineage configuration, spooled)
        or an explicit transport mapping (tests, tools)."""
        self.namespace = namespace
        self.processing_type = processing_type
        if client is not None:
            self.client = client
            return
        if not transport or not transport.get("type"):
            raise ConfigError(
                "the OpenLineage transport configuration has no `type`",
                hint="Valid values include: file, http, kafka, console, noop, composite.",
            )
        config = dict(transport)
        if config["type"] == "file":
            Path(str(config["log_file_path"])).parent.mkdir(parents=True, exist_ok=True)
        # client-added environment facets stay off so no environment value (possibly a secret) reaches an event
        self.client = OpenLineageClient(
            config={
                "transport": config,
                "facets": {"environment_variables": [], "source_code_location": {"disabled": True}},
            }
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LineageEmitter:
        """The user's OpenLineage transport (openlineage.yml / OPENLINEAGE_*), remote ones spooled while
        their backend is down; without configuration, NDJSON appended to `settings.lineage_path`."""
        from monitoring.lineage.transports import client_for

        return cls(settings.lineage_job_namespace, client=client_for(settings))

    def start(self, product: DataProduct, stage: str, run_id: str, **run: Unpack[RunArgs]) -> RunEvent:
        """A run began; `inputs` are keyed by input port name, `outputs` by output name."""
        return self._emit(RunState.START, product, stage, run_id, **run)

    def running(self, product: DataProduct, stage: str, run_id: str, **run: Unpack[RunArgs]) -> RunEvent:
        """The run is still going (sent by `Heartbeat`)."""
        return self._emit(RunState.RUNNING, product, stage, run_id, **run)

    def complete(
        self,
        product: DataProduct,
        stage: str,
        run_id: str,
        *,
        figures: RunFigures | None = None,
        output_rows: Mapping[str, int] | None = None,
        input_rows: Mapping[str, int] | None = None,
        **run: Unpack[RunArgs],
    ) -> RunEvent:
        """A run ended well; `figures` (or plain row counts) become statistics, metrics and assertions."""
        if figures is None:
            figures = RunFigures(
                inputs={k: DatasetFigures(rows=n) for k, n in (input_rows or {}).items()},
                outputs={k: DatasetFigures(rows=n) for k, n in (output_rows or {}).items()},
            )
        return self._emit(RunState.COMPLETE, product, stage, run_id, figures=figures, **run)

    def fail(self, product: DataProduct, stage: str, run_id: str, *, error: str, **run: Unpack[RunArgs]) -> RunEvent:
        """A run failed; only a scrubbed one-line reason is recorded, never a stack trace."""
        failure = error_message_run.ErrorMessageRunFacet(
            message=scrub_error(error), programmingLanguage="PYTHON", producer=PRODUCER
        )
        return self._emit(RunState.FAIL, product, stage, run_id, extra={"errorMessage": failure}, **run)

    def abort(self, product: DataProduct, stage: str, run_id: str, **run: Unpack[RunArgs]) -> RunEvent:
        """A run was stopped from outside (Ctrl-C, SIGINT) before it could finish."""
        return self._emit(RunState.ABORT, product, stage, run_id, **run)

    def close(self) -> None:
        self.client.close()

    def _emit(
        self,
        state: RunState,
        product: DataProduct,
        stage: str,
        run_id: str,
        *,
        inputs: Mapping[str, DatasetName],
        outputs: Mapping[str, DatasetName],
        parent: Parent | None = None,
        engine: Engine | None = None,
        figures: RunFigures | None = None,
        extra: Mapping[str, RunFacet] | None = None,
    ) -> RunEvent:
        engine = engine or Engine("meshkit", meshkit_version)
        upstream = {port: c for port in inputs if (c := _upstream_contract(product, port)) is not None}
        event = RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=run_id, facets={**self._run_facets(parent, engine), **(extra or {})}),
            job=Job(
                namespace=self.namespace,
                name=job_name(product, stage),
                facets=f.job_facets(product, engine, self.processing_type),
            ),
            inputs=[self._input(product, port, ds, upstream.get(port), figures) for port, ds in inputs.items()],
            outputs=[
                self._output(product.contract, name, ds, inputs, upstream, figures) for name, ds in outputs.items()
            ],
            producer=PRODUCER,
        )
        self.client.emit(event)
        return event

    def _run_facets(self, parent: Parent | None, engine: Engine) -> dict[str, RunFacet]:
        facets: dict[str, RunFacet] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=engine.version,
                name=engine.name,
                openlineageAdapterVersion=meshkit_version,
                producer=PRODUCER,
            )
        }
        if engine.runner:
            runner = execution_parameters_run.ExecutionParameter(key="runner", name="Beam runner", value=engine.runner)
            facets["executionParameters"] = execution_parameters_run.ExecutionParametersRunFacet(
                parameters=[runner], producer=PRODUCER
            )
        if parent is not None:
            parent_job, parent_run_id = parent
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent_run_id),
                job=parent_run.Job(namespace=self.namespace, name=parent_job),
                producer=PRODUCER,
            )
        return facets

    def _input(
        self,
        product: DataProduct,
        port: str,
        dataset: DatasetName,
        upstream: Contract | None,
        figures: RunFigures | None,
    ) -> InputDataset:
        """An upstream product's port carries that product's schema and contract; a source (change
        feed, bus, replay file) carries the source documents' field names."""
        if upstream is not None:
            facets = f.dataset_facets(
                ("schema", schema_facet(upstream.columns)),
                ("datasource", f.datasource_facet(dataset)),
                ("symlinks", f.symlinks_facet(upstream)),
            )
        else:
            source = product.contract.source_columns
            facets = f.dataset_facets(
                ("schema", schema_facet(source, source_names=True)), ("datasource", f.datasource_facet(dataset))
            )
        input_facets: dict[str, InputDatasetFacet] = {}
        measured = figures.inputs.get(port) if figures else None
        if measured is not None:
            input_facets["dataQualityMetrics"] = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                columnMetrics={}, rowCount=measured.rows, bytes=measured.size_bytes, producer=PRODUCER
            )
        checks = figures.input_checks.get(port) if figures else None
        if checks:
            input_facets["dataQualityAssertions"] = f.assertions_facet(checks)
        return InputDataset(dataset.namespace, dataset.name, facets=facets, inputFacets=input_facets)

    def _output(
        self,
        contract: Contract,
        name: str,
        dataset: DatasetName,
        inputs: Mapping[str, DatasetName],
        upstream: Mapping[str, Contract],
        figures: RunFigures | None,
    ) -> OutputDataset:
        sources = [ds for port, ds in inputs.items() if port not in upstream]
        datasource = ("datasource", f.datasource_facet(dataset))
        if name == DEAD_LETTER_OUTPUT:
            facets = f.dataset_facets(datasource)
        elif name in SOURCE_SHAPED_OUTPUTS:
            facets = f.dataset_facets(
                ("schema", schema_facet(contract.source_columns, source_names=True)),
                datasource,
                ("columnLineage", identity_lineage(contract, sources[0]) if sources else None),
            )
        else:
            lineage = (
                refined_lineage(contract, inputs, upstream)
                if upstream
                else (change_feed_lineage(contract, sources[0]) if sources else None)
            )
            checks = figures.output_checks.get(name) if figures else None
            facets = f.dataset_facets(
                ("schema", schema_facet(contract.columns)),
                datasource,
                ("symlinks", f.symlinks_facet(contract)),
                ("ownership", f.ownership_facet(contract)),
                ("columnLineage", lineage),
                # an InputDatasetFacet by the spec's typing; as a dataset facet it describes what was written
                ("dataQualityAssertions", cast(DatasetFacet, f.assertions_facet(checks)) if checks else None),
                ("dataContract", f.data_contract_facet(contract, figures)),
            )
        output_facets: dict[str, OutputDatasetFacet] = {}
        measured = figures.outputs.get(name) if figures else None
        if measured is not None:
            output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=measured.rows, size=measured.size_bytes, fileCount=measured.files, producer=PRODUCER
            )
            if name != DEAD_LETTER_OUTPUT:
                facets["dataQualityMetrics"] = f.metrics_facet(measured)
        return OutputDataset(dataset.namespace, dataset.name, facets=facets, outputFacets=output_facets)


def _upstream_contract(product: DataProduct, port_name: str) -> Contract | None:
    """The contract of the product an input port consumes; None for a source system's port."""
    port = next((p for p in product.descriptor.inputPorts if p.name == port_name), None)
    if port is None or not port.product:
        return None
    try:
        return find_product(product.directory.parent.parent, port.product).contract
    except MeshkitError:
        return None  # an unknown upstream is reported by validation, not by the lineage emitter
