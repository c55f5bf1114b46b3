"""OpenLineage facets of meshkit runs: pure functions of the contract, the product and a run's figures.

Built with openlineage-python's `facet_v2` models; the one custom facet, `dataContract`, subclasses
its `DatasetFacet` and points `_schemaURL` at the schema shipped in `schemas/`. Facets carry names,
types, counts, owners and rule names — never a data value, an example, a valid-value list, a pattern
or a transform's code. Column lineage is built in `column_lineage.py`; docs/lineage.md lists every
facet and where it appears.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import attr
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    data_quality_assertions_dataset,
    data_quality_metrics_dataset,
    datasource_dataset,
    documentation_job,
    job_type_job,
    ownership_dataset,
    ownership_job,
    schema_dataset,
    source_code_location_job,
    symlinks_dataset,
)

from meshkit import __version__ as meshkit_version
from meshkit.contracts.model import Column, Contract
from meshkit.products.model import DataProduct
from monitoring.lineage.naming import DatasetName

PRODUCER = f"urn:meshkit:producer:{meshkit_version}"
INTEGRATION = "MESHKIT"
GIT_TIMEOUT_SECONDS = 2.0
SCHEMAS_DIR = Path(__file__).parent / "schemas"
DATA_CONTRACT_SCHEMA_URL = "https://meshkit.dev/spec/facets/1-0-0/DataContractDatasetFacet.json"
CONTRACT_STANDARD = "ODCS"
CONTRACT_SYMLINK_NAMESPACE = "odcs"
CONTRACT_SYMLINK_TYPE = "DATA_CONTRACT"


@dataclass(frozen=True)
class Engine:
    """What executes a run (name, version, Beam runner) and which code it runs (for sourceCodeLocation)."""

    name: str
    version: str
    runner: str | None = None
    code: Path | None = None


@dataclass(frozen=True)
class DatasetFigures:
    """What a run measured of one dataset: counts only."""

    rows: int | None = None
    size_bytes: int | None = None
    files: int | None = None
    null_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """One contract rule judged on what a run read or wrote; `expected`/`actual` are counts, never values."""

    name: str
    metric: str
    success: bool
    column: str | None = None
    severity: str | None = None
    expected: str | None = None
    actual: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class RunFigures:
    """A finished run's figures, keyed like the run's inputs (port name) and outputs (output name)."""

    inputs: Mapping[str, DatasetFigures] = field(default_factory=dict)
    outputs: Mapping[str, DatasetFigures] = field(default_factory=dict)
    input_checks: Mapping[str, tuple[CheckResult, ...]] = field(default_factory=dict)
    output_checks: Mapping[str, tuple[CheckResult, ...]] = field(default_factory=dict)

    @property
    def contract_checks_passed(self) -> bool | None:
        """Whether every rule judged on the product's outputs held; None when none was judged."""
        results = [c.success for checks in self.output_checks.values() for c in checks]
        return all(results) if results else None

    @property
    def failed_checks(self) -> list[str]:
        return sorted({c.name for checks in self.output_checks.values() for c in checks if not c.success})


@attr.define
class DataContractDatasetFacet(DatasetFacet):
    """The contract a dataset is published under: a pointer (id, version, standard), not the contract."""

    id: str
    version: str
    standard: str
    standardVersion: str | None = attr.field(default=None)  # noqa: N815 - facet field name
    status: str | None = attr.field(default=None)
    blocking: bool = attr.field(default=False)
    checksPassed: bool | None = attr.field(default=None)  # noqa: N815 - facet field name
    failedChecks: list[str] | None = attr.field(default=None)  # noqa: N815 - facet field name

    @staticmethod
    def _get_schema() -> str:
        return f"{DATA_CONTRACT_SCHEMA_URL}#/$defs/DataContractDatasetFacet"


# --- job facets ------------------------------------------------------------------------------------


def job_facets(product: DataProduct, engine: Engine, processing_type: str) -> dict[str, JobFacet]:
    """Job type, owners (product descriptor), documentation (contract purpose) and source code location."""
    facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType=processing_type, integration=INTEGRATION, jobType="JOB", producer=PRODUCER
        )
    }
    team = product.descriptor.team
    owners = [
        ownership_job.Owner(name=f"user:{m.username}", type=m.role)
        for m in team.members
        if (m.role or "").lower() == "owner"
    ]
    owners.append(ownership_job.Owner(name=f"team:{team.name}", type="team"))
    facets["ownership"] = ownership_job.OwnershipJobFacet(owners=owners, producer=PRODUCER)
    description = product.contract.odcs.description
    if description is not None and description.purpose:
        facets["documentation"] = documentation_job.DocumentationJobFacet(
            description=description.purpose.strip(), contentType="text/plain", producer=PRODUCER
        )
    if engine.code is not None:
        facets["sourceCodeLocation"] = source_code_location(engine.code)
    return facets


def source_code_location(code: Path) -> source_code_location_job.SourceCodeLocationJobFacet:
    """`git` with the commit (and the repository URL, credentials removed) when the file is in a
    repository that `git` can read within a short timeout; otherwise `file` with the file's URI."""
    code = code.resolve()
    found = _git(code.parent)
    if found is None:
        return source_code_location_job.SourceCodeLocationJobFacet(type="file", url=code.as_uri(), producer=PRODUCER)
    top, commit, remote = found
    relative = code.relative_to(top).as_posix() if code.is_relative_to(top) else None
    url = code.as_uri()
    if remote and relative and urlsplit(remote).hostname in ("github.com", "gitlab.com"):
        url = f"{remote.removesuffix('.git')}/blob/{commit}/{relative}"
    return source_code_location_job.SourceCodeLocationJobFacet(
        type="git", url=url, repoUrl=remote, path=relative, version=commit, producer=PRODUCER
    )


@lru_cache(maxsize=64)
def _git(directory: Path) -> tuple[Path, str, str | None] | None:
    """(top level, commit, origin URL) of the repository holding `directory`; None when unknown."""
    try:
        top, commit = _git_out(directory, "rev-parse", "--show-toplevel", "HEAD").split()
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    try:
        remote: str | None = _git_out(directory, "remote", "get-url", "origin").strip() or None
    except (OSError, subprocess.SubprocessError):
        remote = None
    if remote and "://" in remote:  # https://user:token@host/... must not reach an event
        parts = urlsplit(remote)
        remote = urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.hostname else None
    return Path(top).resolve(), commit, remote


def _git_out(directory: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS, check=True
    )
    return done.stdout


# --- contract-derived dataset facets -------------------------------------------------------------


def schema_facet(columns: tuple[Column, ...], *, source_names: bool = False) -> schema_dataset.SchemaDatasetFacet:
    """Column names, logical types and descriptions from the contract; `source_names` gives the source
    document's field names (for the change feed, the bus and the raw zone). No examples, no values."""
    fields = [
        schema_dataset.SchemaDatasetFacetFields(
            name=c.source_field if source_names else c.name, type=c.logical_type, description=c.description,
            ordinal_position=i, fields=None,
        )
        for i, c in enumerate(columns, start=1)
    ]  # fmt: skip
    return schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)


def datasource_facet(dataset: DatasetName) -> datasource_dataset.DatasourceDatasetFacet:
    return datasource_dataset.DatasourceDatasetFacet(name=dataset.namespace, uri=dataset.uri, producer=PRODUCER)


def symlinks_facet(contract: Contract) -> symlinks_dataset.SymlinksDatasetFacet:
    """The dataset's other name: the id of the contract it is published under."""
    identifier = symlinks_dataset.Identifier(
        namespace=CONTRACT_SYMLINK_NAMESPACE, name=contract.id, type=CONTRACT_SYMLINK_TYPE
    )
    return symlinks_dataset.SymlinksDatasetFacet(identifiers=[identifier], producer=PRODUCER)


def ownership_facet(contract: Contract) -> ownership_dataset.OwnershipDatasetFacet | None:
    """The contract's team: `team:<name>`, and its members as `user:<username>` typed by their role."""
    team = contract.odcs.team
    if team is None:
        return None
    members = team if isinstance(team, list) else team.members or []
    owners = [ownership_dataset.Owner(name=f"team:{team.name}", type="team")] if not isinstance(team, list) else []
    owners += [ownership_dataset.Owner(name=f"user:{m.username}", type=m.role) for m in members if m.username]
    return ownership_dataset.OwnershipDatasetFacet(owners=owners, producer=PRODUCER) if owners else None


def is_blocking(contract: Contract) -> bool:
    """A failed check blocks consumers when the contract is active and any quality rule is severity error."""
    if (contract.odcs.status or "").lower() != "active":
        return False
    rules = [*(contract.table.quality or ())]
    for prop in contract.table.properties or ():
        rules += prop.quality or ()
    return any((r.severity or "").lower() == "error" for r in rules)


def data_contract_facet(contract: Contract, figures: RunFigures | None = None) -> DataContractDatasetFacet:
    passed = figures.contract_checks_passed if figures else None
    return DataContractDatasetFacet(
        id=contract.id,
        version=contract.version,
        standard=CONTRACT_STANDARD,
        standardVersion=contract.odcs.apiVersion,
        status=contract.odcs.status,
        blocking=is_blocking(contract),
        checksPassed=passed,
        failedChecks=figures.failed_checks if figures and passed is False else None,
        producer=PRODUCER,
    )


# --- quality and statistics ----------------------------------------------------------------------


Assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet


def assertions_facet(checks: tuple[CheckResult, ...]) -> Assertions:
    """The checks as OpenLineage assertions (an InputDatasetFacet by the spec's typing)."""
    return Assertions(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=c.metric,
                success=c.success,
                column=c.column,
                severity=c.severity,
                name=c.name,
                description=c.description,
                expected=c.expected,
                actual=c.actual,
                params=None,
            )
            for c in checks
        ],
        producer=PRODUCER,
    )


def metrics_facet(figures: DatasetFigures) -> data_quality_metrics_dataset.DataQualityMetricsDatasetFacet:
    """Rows and, where measured, null counts per column and bytes of what a run wrote."""
    return data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
        columnMetrics={
            name: data_quality_metrics_dataset.ColumnMetrics(nullCount=n, quantiles=None)
            for name, n in figures.null_counts.items()
        },
        rowCount=figures.rows,
        bytes=figures.size_bytes,
        fileCount=figures.files,
        producer=PRODUCER,
    )


def dataset_facets(*facets: tuple[str, DatasetFacet | None]) -> dict[str, DatasetFacet]:
    """Named facets without the ones that do not apply."""
    return {name: facet for name, facet in facets if facet is not None}
