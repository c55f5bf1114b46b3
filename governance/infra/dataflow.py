"""The product's Dataflow launch: Terraform (streaming job or scheduled micro-batch launch) and the
Flex Template (spec, metadata and the image's Dockerfile) under build/<domain>/<product>/dataflow/.

The schedule comes from the product's dataproduct.yaml; everything that differs per environment
(region, subnetwork, worker bounds, locations) is a Terraform variable, so the files are the same for
the same inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from governance.iam.model import ProductAccess
from meshkit import __version__
from meshkit.config import Settings
from meshkit.products.model import DESCRIPTOR_FILE, DataProduct
from meshkit.templating import report_environment
from pipelines.runners.dataflow import EXPERIMENTS, label_value

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_FILES = ("flex-template.json", "metadata.json", "Dockerfile", "cloudbuild.yaml", ".gcloudignore")
LAUNCHER = "pipelines/runners/flex_launcher.py"
IMAGE_ROOT = "/template"  # where the image holds the project; launcher and workers see the same paths
LAUNCHER_BASE = "gcr.io/dataflow-templates-base/python311-template-launcher-base"


def _labels(product: DataProduct) -> list[tuple[str, str]]:
    return [
        ("data-owner", f'"{label_value(product.descriptor.owner)}"'),
        ("domain", f'"{product.domain}"'),
        ("environment", "var.environment"),
        ("managed-by", '"meshkit"'),
        ("product", f'"{product.name}"'),
    ]


def dataflow_context(access: ProductAccess, service_account: str | None) -> dict[str, Any]:
    """Template variables of dataflow.tf (and the Dataflow variables of variables.tf)."""
    product = access.grants.product
    schedule = product.schedule
    width = max(len(key) for key, _ in _labels(product))
    return {
        "ref": product.ref,
        "domain": product.domain,
        "name": product.name,
        "descriptor_file": f"domains/{product.ref}/{DESCRIPTOR_FILE}",
        "schedule": str(schedule),
        "streaming": schedule.streaming,
        "mode": schedule.mode,
        "cron": schedule.cron,
        "every": str(schedule).removeprefix("every "),
        "project": access.resources.project,
        "service_account": service_account,
        "labels": [(key.ljust(width), value) for key, value in _labels(product)],
        "experiments": ", ".join(f'"{e}"' for e in EXPERIMENTS),
    }


@dataclass(frozen=True)
class FlexTemplate:
    """The Flex Template files of one product, by file name."""

    ref: str
    files: dict[str, str]

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in sorted(self.files):
            path = out / name
            path.write_text(self.files[name], encoding="utf-8")
            written.append(path)
        return written


def default_image(settings: Settings, project: str) -> str:
    """`dataflow_image`, else the Artifact Registry path the docs' build command pushes to."""
    region = settings.dataflow_region or settings.gcp_location
    return settings.dataflow_image or f"{region}-docker.pkg.dev/{project}/meshkit/pipeline:{__version__}"


def template_metadata(product: DataProduct) -> dict[str, Any]:
    """Flex Template metadata: what a launch may pass; the launcher reads the same names."""
    schedule = product.schedule
    return {
        "name": f"meshkit-{product.domain}-{product.name}",
        "description": f"meshkit pipeline of {product.ref}: change events from the bus, validated and masked "
        f"against its contract, to the lake and the warehouse. Schedule: {schedule}.",
        "parameters": [
            {
                "name": "product",
                "label": "Data product",
                "helpText": "The product to run, <domain>/<product>; its contract and pipeline are in the image.",
                "regexes": ["^[a-z][a-z0-9-]*/[a-z][a-z0-9-]*$"],
            },
            {
                "name": "mode",
                "label": "Mode",
                "helpText": f"bounded (read what is on the bus, write, commit, exit) or streaming; "
                f"default: the product's schedule ({schedule.mode}).",
                "isOptional": True,
                "regexes": ["^(bounded|streaming)$"],
            },
            {
                "name": "environment",
                "label": "Environment",
                "helpText": "Deployment environment (the `environment` setting): labels and job name.",
                "isOptional": True,
                "regexes": ["^[a-z][a-z0-9-]*$"],
            },
            {
                "name": "max_num_workers",
                "label": "Maximum workers",
                "helpText": "Upper bound of autoscaling (default: the dataflow_max_workers setting).",
                "isOptional": True,
                "regexes": ["^[1-9][0-9]*$"],
            },
        ],
    }


def _beam_version() -> str:
    try:
        return version("apache-beam")
    except PackageNotFoundError:  # pragma: no cover - apache-beam is a dependency of meshkit
        return "latest"


def flex_template(settings: Settings, product: DataProduct, project: str) -> FlexTemplate:
    """Spec (image, SDK, metadata), metadata alone (for `gcloud dataflow flex-template build`), the image's
    Dockerfile and its Cloud Build config."""
    metadata = template_metadata(product)
    image = default_image(settings, project)
    spec = {"image": image, "sdkInfo": {"language": "PYTHON"}, "metadata": metadata}
    env = report_environment(TEMPLATES)
    context = {
        "ref": product.ref,
        "image": image,
        "launcher_base": LAUNCHER_BASE,
        "beam_version": _beam_version(),
        "root": IMAGE_ROOT,
        "launcher": LAUNCHER,
    }
    return FlexTemplate(
        product.ref,
        {
            "flex-template.json": json.dumps(spec, indent=2) + "\n",
            "metadata.json": json.dumps(metadata, indent=2) + "\n",
            "Dockerfile": env.get_template("Dockerfile.j2").render(**context),
            "cloudbuild.yaml": env.get_template("cloudbuild.yaml.j2").render(**context),
            ".gcloudignore": env.get_template("gcloudignore.j2").render(**context),
        },
    )
