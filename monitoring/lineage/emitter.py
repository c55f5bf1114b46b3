"""OpenLineage run events for product pipelines, built with openlineage-python's own models.

The transport comes from OpenLineage's transport factory, keyed on `type`: the local profile writes
NDJSON (one event per line, appended) to `settings.lineage_path`; HTTP, Kafka or any other
transport is configuration only. Events carry names, types, counts and owners — never values: the
schema facet is built from contract column metadata, and error messages are scrubbed of anything
that looks like a personal value or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.constants import __version__ as openlineage_version
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    InputDatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    data_quality_metrics_input_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
)

from meshkit import __version__ as meshkit_version
from meshkit.config import Settings
from meshkit.contracts.model import Column, Contract
from meshkit.errors import ConfigError, MeshkitError
from meshkit.products.discovery import find_product
from meshkit.products.model import DataProduct
from monitoring.lineage.naming import DatasetName

PRODUCER = f"urn:meshkit:producer:{meshkit_version}"
INTEGRATION = "MESHKIT"
MAX_ERROR_LENGTH = 500
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


def schema_facet(columns: tuple[Column, ...]) -> schema_dataset.SchemaDatasetFacet:
    """Column names, logical types and descriptions from the contract; no examples, no values."""
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=c.name, type=c.logical_type, description=c.description, ordinal_position=i, fields=None
            )
            for i, c in enumerate(columns, start=1)
        ],
        producer=PRODUCER,
    )


class LineageEmitter:
    """Emits START / COMPLETE / FAIL run events for one stage of a product (`<domain>.<product>.<stage>`)."""

    def __init__(self, namespace: str, transport: Mapping[str, Any], processing_type: str = "BATCH") -> None:
        if not transport.get("type"):
            raise ConfigError(
                "the OpenLineage transport configuration has no `type`",
                hint="Valid values include: file, http, kafka, console, noop, composite.",
            )
        self.namespace = namespace
        self.processing_type = processing_type
        config = dict(transport)
        if config["type"] == "file":
            Path(str(config["log_file_path"])).parent.mkdir(parents=True, exist_ok=True)
        # Our keys win over openlineage.yml / OPENLINEAGE__* for the transport, and client-added
        # environment facets stay off so no environment value (possibly a secret) reaches an event.
        self.client = OpenLineageClient(
            config={
                "transport": config,
                "facets": {"environment_variables": [], "source_code_location": {"disabled": True}},
            }
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LineageEmitter:
        """The profile's emitter; the local profile appends NDJSON to `settings.lineage_path`."""
        return cls(settings.lineage_namespace, file_transport_config(settings.lineage_path))

    def start(
        self,
        product: DataProduct,
        stage: str,
        run_id: str,
        *,
        inputs: Mapping[str, DatasetName],
        outputs: Mapping[str, DatasetName],
        parent: Parent | None = None,
    ) -> RunEvent:
        """A run began; `inputs` are keyed by input port name, `outputs` by output name."""
        return self._emit(RunState.START, product, stage, run_id, inputs=inputs, outputs=outputs, parent=parent)

    def complete(
        self,
        product: DataProduct,
        stage: str,
        run_id: str,
        *,
        inputs: Mapping[str, DatasetName],
        outputs: Mapping[str, DatasetName],
        output_rows: Mapping[str, int],
        input_rows: Mapping[str, int] | None = None,
        parent: Parent | None = None,
    ) -> RunEvent:
        """A run ended well; row counts become output statistics and input quality metrics."""
        return self._emit(
            RunState.COMPLETE,
            product,
            stage,
            run_id,
            inputs=inputs,
            outputs=outputs,
            parent=parent,
            output_rows=output_rows,
            input_rows=input_rows,
        )

    def fail(
        self,
        product: DataProduct,
        stage: str,
        run_id: str,
        *,
        inputs: Mapping[str, DatasetName],
        outputs: Mapping[str, DatasetName],
        error: str,
        parent: Parent | None = None,
    ) -> RunEvent:
        """A run failed; only a scrubbed one-line reason is recorded, never a stack trace."""
        failure = error_message_run.ErrorMessageRunFacet(
            message=scrub_error(error), programmingLanguage="PYTHON", producer=PRODUCER
        )
        return self._emit(
            RunState.FAIL,
            product,
            stage,
            run_id,
            inputs=inputs,
            outputs=outputs,
            parent=parent,
            run_facets={"errorMessage": failure},
        )

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
        parent: Parent | None,
        output_rows: Mapping[str, int] | None = None,
        input_rows: Mapping[str, int] | None = None,
        run_facets: Mapping[str, RunFacet] | None = None,
    ) -> RunEvent:
        event = RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=run_id, facets={**self._run_facets(parent), **(run_facets or {})}),
            job=Job(namespace=self.namespace, name=job_name(product, stage), facets=self._job_facets(product)),
            inputs=[self._input(product, port, ds, (input_rows or {}).get(port)) for port, ds in inputs.items()],
            outputs=[self._output(product.contract, ds, (output_rows or {}).get(out)) for out, ds in outputs.items()],
            producer=PRODUCER,
        )
        self.client.emit(event)
        return event

    def _run_facets(self, parent: Parent | None) -> dict[str, RunFacet]:
        facets: dict[str, RunFacet] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=meshkit_version,
                name="meshkit",
                openlineageAdapterVersion=openlineage_version,
                producer=PRODUCER,
            )
        }
        if parent is not None:
            parent_job, parent_run_id = parent
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent_run_id),
                job=parent_run.Job(namespace=self.namespace, name=parent_job),
                producer=PRODUCER,
            )
        return facets

    def _job_facets(self, product: DataProduct) -> dict[str, JobFacet]:
        facets: dict[str, JobFacet] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType=self.processing_type, integration=INTEGRATION, jobType="JOB", producer=PRODUCER
            )
        }
        descriptor = product.descriptor
        owners = [
            ownership_job.Owner(name=f"user:{m.username}", type=m.role)
            for m in descriptor.team.members
            if (m.role or "").lower() == "owner"
        ]
        owners.append(ownership_job.Owner(name=f"team:{descriptor.team.name}", type="team"))
        facets["ownership"] = ownership_job.OwnershipJobFacet(owners=owners, producer=PRODUCER)
        description = product.contract.odcs.description
        if description is not None and description.purpose:
            facets["documentation"] = documentation_job.DocumentationJobFacet(
                description=description.purpose.strip(), contentType="text/plain", producer=PRODUCER
            )
        return facets

    def _input(self, product: DataProduct, port: str, dataset: DatasetName, rows: int | None) -> InputDataset:
        facets: dict[str, DatasetFacet] = {}
        upstream = _upstream_contract(product, port)
        if upstream is not None:
            facets["schema"] = schema_facet(upstream.columns)
        input_facets: dict[str, InputDatasetFacet] = {}
        if rows is not None:
            input_facets["dataQualityMetrics"] = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                columnMetrics={}, rowCount=rows, producer=PRODUCER
            )
        return InputDataset(dataset.namespace, dataset.name, facets=facets, inputFacets=input_facets)

    def _output(self, contract: Contract, dataset: DatasetName, rows: int | None) -> OutputDataset:
        output_facets: dict[str, OutputDatasetFacet] = {}
        if rows is not None:
            output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, producer=PRODUCER
            )
        return OutputDataset(
            dataset.namespace,
            dataset.name,
            facets={"schema": schema_facet(contract.columns)},
            outputFacets=output_facets,
        )


def _upstream_contract(product: DataProduct, port_name: str) -> Contract | None:
    """The contract of the product an input port consumes; None for a source system's port."""
    port = next((p for p in product.descriptor.inputPorts if p.name == port_name), None)
    if port is None or not port.product:
        return None
    try:
        return find_product(product.directory.parent.parent, port.product).contract
    except MeshkitError:
        return None  # an unknown upstream is reported by validation, not by the lineage emitter
