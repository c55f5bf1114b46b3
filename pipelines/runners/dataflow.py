"""Dataflow, the scale-out engine of the cloud profile: the product's complete pipeline options.

Every option comes from the settings (`dataflow_*`, `gcp_*`, `lake_bucket_prefix`, `environment`)
and the product (job name, labels, schedule); Beam's own validator checks them offline, so a wrong
value fails here, before any upload. Beam is imported inside the functions: the CLI stays light.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshkit.config import Settings
from meshkit.errors import ConfigError
from meshkit.products.model import DataProduct

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

RUNNER = "DataflowRunner"
# Dataflow's Job.name rule (REST reference); Beam checks the same pattern without the length bound
JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,1022}[a-z0-9])?$")
LABEL_VALUE_MAX = 63
EXPERIMENTS = ("use_runner_v2",)  # the default since Beam 2.45; named so the job says what it runs on
_LABEL_INVALID = re.compile(r"[^a-z0-9_-]+")
BOUNDED_IDLE_STOP_SECONDS = 60.0  # a bounded Dataflow run ends once the bus has been quiet this long
WINDOW_SECONDS = 60.0  # offsets are committed per window, after every sink wrote it


def default_job_name(settings: Settings, product: DataProduct) -> str:
    """`meshkit-<domain>-<product>-<environment>`, lower-cased; one active job per name and region."""
    return validate_job_name(f"meshkit-{product.domain}-{product.name}-{settings.environment}".lower())


def validate_job_name(name: str) -> str:
    if not JOB_NAME.match(name):
        raise ConfigError(
            f"Dataflow job name {name!r} is invalid",
            hint="A job name starts with a lower-case letter, then lower-case letters, digits or hyphens "
            "(1024 at most), and does not end with a hyphen; check the `environment` setting.",
        )
    return name


def label_value(value: str) -> str:
    """A GCP label value: lower-case letters, digits, `_` and `-`, at most 63 characters."""
    return _LABEL_INVALID.sub("-", value.lower()).strip("-")[:LABEL_VALUE_MAX]


def job_labels(settings: Settings, product: DataProduct) -> dict[str, str]:
    return {
        "data-owner": label_value(product.descriptor.owner),
        "domain": label_value(product.domain),
        "environment": label_value(settings.environment),
        "managed-by": "meshkit",
        "product": label_value(product.name),
    }


def _required(value: str | None, setting: str, what: str) -> str:
    if not value:
        env = f"MESHKIT_{setting.upper()}"
        raise ConfigError(
            f"setting {setting!r} is not set: Dataflow needs {what}",
            hint=f"Set `{setting}` in meshkit.yaml or the environment variable {env}.",
        )
    return value


@dataclass(frozen=True)
class DataflowPlan:
    """The options of one Dataflow job as Beam flags, plus notes on choices the user should see."""

    job_name: str
    streaming: bool
    flags: tuple[str, ...]
    notes: tuple[str, ...]


def dataflow_plan(
    settings: Settings, product: DataProduct, *, streaming: bool, job_name: str | None = None
) -> DataflowPlan:
    """The flags `dataflow_options` parses; a pure function of the settings and the product."""
    project = _required(settings.gcp_project, "gcp_project", "the project the job runs in")
    region = settings.dataflow_region or settings.gcp_location
    name = validate_job_name(job_name) if job_name else default_job_name(settings, product)
    bucket = f"gs://{settings.lake_bucket_prefix}-dataflow"
    notes: list[str] = []
    flags = [
        f"--runner={RUNNER}",
        f"--project={project}",
        f"--region={region}",
        f"--job_name={name}",
        f"--temp_location={settings.dataflow_temp_location or bucket + '/temp'}",
        f"--staging_location={settings.dataflow_staging_location or bucket + '/staging'}",
    ]
    if settings.dataflow_service_account:
        flags.append(f"--service_account_email={settings.dataflow_service_account}")
    elif settings.profile == "cloud":
        _required(None, "dataflow_service_account", "the service account the workers run as (the contract's writer)")
    else:
        notes.append(
            "dataflow_service_account is not set: the job would run as the Compute Engine default service "
            "account; the cloud profile refuses that"
        )
    if settings.dataflow_subnetwork:
        flags += [f"--subnetwork={settings.dataflow_subnetwork}", "--no_use_public_ips"]
    else:
        notes.append("dataflow_subnetwork is not set: workers get public IPs on the default network")
    flags += ["--autoscaling_algorithm=THROUGHPUT_BASED", f"--max_num_workers={settings.dataflow_max_workers}"]
    if streaming:
        flags += ["--streaming", "--enable_streaming_engine"]
    flags += _worker_harness(settings, notes)
    flags.append("--no_save_main_session")  # DoFns carry their own state; the main session is the CLI
    flags += [f"--labels={k}={v}" for k, v in sorted(job_labels(settings, product).items())]
    flags += [f"--experiments={e}" for e in EXPERIMENTS]
    return DataflowPlan(name, streaming, tuple(flags), tuple(notes))


def _worker_harness(settings: Settings, notes: list[str]) -> list[str]:
    """The Flex Template image when there is one (same image for launcher and workers), else the
    project itself staged as an sdist so workers install meshkit and its four packages."""
    if settings.dataflow_image:
        return [f"--sdk_container_image={settings.dataflow_image}", "--sdk_location=container"]
    pyproject = settings.root / "pyproject.toml"
    if not pyproject.is_file():
        raise ConfigError(
            f"no dataflow_image and no {pyproject} to build the workers' package from",
            hint="Set `dataflow_image` to the Flex Template image (`meshkit infra <product>` writes its Dockerfile), "
            "or run from the meshkit project root.",
        )
    notes.append(
        "dataflow_image is not set: workers pip-install meshkit from a staged sdist of pyproject.toml at start-up "
        "(needs PyPI or a mirror from the workers' network, and the product's files at the same path); "
        "the Flex Template image is the production path"
    )
    return [f"--setup_file={pyproject}"]


def dataflow_options(
    settings: Settings,
    product: DataProduct,
    *,
    streaming: bool,
    job_name: str | None = None,
    flags: Sequence[str] = (),
) -> PipelineOptions:
    """Complete, validated Dataflow options; `flags` (e.g. a Flex Template launcher's) come last and win."""
    from apache_beam.options.pipeline_options import PipelineOptions

    plan = dataflow_plan(settings, product, streaming=streaming, job_name=job_name)
    options = PipelineOptions([*plan.flags, *flags])
    validate_options(options)
    return options


def validate_options(options: PipelineOptions) -> None:
    """Beam's validator, offline: the generic checks plus the cloud ones (job name, project, region,
    gs:// locations). Beam's own service-runner path would also probe the buckets, which needs the network."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator

    validator = PipelineOptionsValidator(options, runner=None)
    cloud = options.view_as(GoogleCloudOptions)
    errors = [
        *validator.validate(),
        *validator.validate_cloud_options(cloud),
        *validator.validate_gcs_path(cloud, "temp_location"),
        *validator.validate_gcs_path(cloud, "staging_location"),
    ]
    if cloud.region is None:
        errors.append("Missing required option: region.")
    if errors:
        raise ConfigError(
            "Beam refuses the Dataflow options: " + " ".join(dict.fromkeys(errors)),
            hint="Correct the dataflow_* / gcp_* settings named above (meshkit.yaml or MESHKIT_* variables).",
        )


def describe(settings: Settings, product: DataProduct, *, streaming: bool) -> dict[str, Any]:
    """What `meshkit run --runner dataflow --dry-run` prints: Beam's view of every option set, the flags
    and the notes. No secrets: none of these options holds one."""
    plan = dataflow_plan(settings, product, streaming=streaming)
    options = dataflow_options(settings, product, streaming=streaming)
    return {
        "product": product.ref,
        "runner": RUNNER,
        "mode": "streaming" if streaming else "bounded",
        "schedule": str(product.schedule),
        "job_name": plan.job_name,
        "options": dict(sorted(options.get_all_options(drop_default=True).items())),
        "flags": list(plan.flags),
        "notes": list(plan.notes),
    }


@dataclass(frozen=True)
class Submitted:
    """A job handed to Dataflow (the caller does not wait for it)."""

    product: str
    job_name: str
    job_id: str | None
    mode: str
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {"product": self.product, "job_name": self.job_name, "job_id": self.job_id, "mode": self.mode,
                "state": self.state}  # fmt: skip


def submit(
    settings: Settings,
    product: DataProduct,
    *,
    streaming: bool,
    job_name: str | None = None,
    flags: Sequence[str] = (),
) -> Submitted:
    """Build the product's standard graph with the Dataflow options and submit it without waiting.

    The job commits the bus offsets itself, per window, after the sinks wrote that window: nobody
    waits for a Flex Template or scheduled job on the driver side, so the driver cannot commit (as
    the local bounded run does). Bounded mode reads until the bus is quiet for
    BOUNDED_IDLE_STOP_SECONDS, then the job ends."""
    import uuid
    from datetime import UTC, datetime

    import apache_beam as beam

    from pipelines.product import RefinedPipeline, load_pipeline
    from pipelines.runners.local import Streaming, build_product_graph
    from pipelines.transforms.stages import StageContext

    if not settings.dataflow_image and importlib.util.find_spec("build") is None:
        raise ConfigError(
            "without dataflow_image, Beam stages the project with `python -m build`, which is not installed",
            hint="Install `build` in this environment, or set `dataflow_image` to the Flex Template image.",
        )
    options = dataflow_options(settings, product, streaming=streaming, job_name=job_name, flags=flags)
    ctx = StageContext(
        settings=settings,
        product=product.ref,
        contract_path=str(product.contract_path),
        pipeline_path=str(product.pipeline_path),
        run_id=str(uuid.uuid4()),
        ingest_date=datetime.now(UTC).date().isoformat(),
    )
    p = beam.Pipeline(options=options)
    refined = isinstance(load_pipeline(product.pipeline_path), RefinedPipeline)
    idle = None if streaming else BOUNDED_IDLE_STOP_SECONDS
    build_product_graph(
        p, settings, product, ctx, refined=refined,
        streaming=Streaming(window_seconds=WINDOW_SECONDS, idle_stop_seconds=idle),
    )  # fmt: skip
    result = p.run()
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    job = getattr(result, "job_id", None)
    return Submitted(
        product.ref,
        str(options.view_as(GoogleCloudOptions).job_name),
        job() if callable(job) else None,
        "streaming" if streaming else "bounded",
        str(result.state),
    )
