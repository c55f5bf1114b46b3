"""The Flex Template's Python file (FLEX_TEMPLATE_PYTHON_PY_FILE): runs one product's pipeline on Dataflow.

Dataflow's launcher calls it with the template parameters (`--product`, `--mode`, `--environment`,
`--max_num_workers`) and its own pipeline options (`--project`, `--region`, `--job_name`,
`--temp_location`, `--service_account_email`, `--template_location`, ...). The launcher's options
become settings overrides, so the job's options are built by the same `dataflow_options` as
`meshkit run --runner dataflow`, and everything the launcher passed still wins.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshkit.config import Settings, load_settings
from meshkit.products.discovery import find_product
from meshkit.products.model import DataProduct

ROOT = Path(__file__).resolve().parents[2]  # /template in the image: domains/ is beside the packages
# launcher option -> setting it overrides
SETTING_OF = {
    "project": "gcp_project",
    "region": "dataflow_region",
    "service_account_email": "dataflow_service_account",
    "subnetwork": "dataflow_subnetwork",
    "temp_location": "dataflow_temp_location",
    "staging_location": "dataflow_staging_location",
    "sdk_container_image": "dataflow_image",
    "max_num_workers": "dataflow_max_workers",
    "environment": "environment",
}


@dataclass(frozen=True)
class Launch:
    """One launch: the product, its mode, the settings and the launcher's remaining flags."""

    settings: Settings
    product: DataProduct
    streaming: bool
    job_name: str | None
    flags: tuple[str, ...]


def parse_launch(argv: Sequence[str], *, root: Path = ROOT, environ: dict[str, str] | None = None) -> Launch:
    parser = argparse.ArgumentParser(prog="flex_launcher", allow_abbrev=False)
    parser.add_argument("--product", required=True)
    parser.add_argument("--mode", choices=("bounded", "streaming"), default=None)
    parser.add_argument("--job_name", default=None)
    for option in SETTING_OF:
        parser.add_argument(f"--{option}", default=None)
    known, rest = parser.parse_known_args(list(argv))
    overrides: dict[str, Any] = {"profile": "cloud"}
    overrides.update({setting: getattr(known, option) for option, setting in SETTING_OF.items()})
    settings = load_settings(root, overrides=overrides, environ=environ)
    product = find_product(settings.domains_dir, known.product)
    mode = known.mode or product.schedule.mode
    return Launch(settings, product, mode == "streaming", known.job_name, tuple(rest))


def main(argv: Sequence[str] | None = None) -> None:
    """Build the product's graph with the Dataflow options and hand it to the launcher (which writes
    the job to `--template_location`; Dataflow starts it)."""
    import logging

    from pipelines.runners.dataflow import submit

    logging.getLogger().setLevel(logging.INFO)
    launch = parse_launch(sys.argv[1:] if argv is None else argv)
    submit(launch.settings, launch.product, streaming=launch.streaming, job_name=launch.job_name, flags=launch.flags)


if __name__ == "__main__":
    main()
