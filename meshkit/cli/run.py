"""`meshkit run <domain>/<product>`: run the product's Beam pipeline.

Bounded (the default locally): everything available on the bus, then exit — run it from cron or any
orchestrator. `--streaming`: read the bus unbounded. `--runner dataflow` submits the same pipeline to
Dataflow (cloud profile); its mode defaults to the schedule in the product's dataproduct.yaml, and
`--dry-run` prints the complete Dataflow options instead of submitting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshkit.cli._common import render_summary, settings_from
from meshkit.errors import ConfigError

RUNNERS = {"direct": "DirectRunner", "dataflow": "DataflowRunner"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", help="<domain>/<product>, e.g. payments/transactions")
    parser.add_argument(
        "--from-file", type=Path, help="replay a JSON-lines file of change-feed items (either Cosmos format)"
    )
    parser.add_argument(
        "--runner",
        default="direct",
        help="direct (default; in-process) or dataflow (the cloud profile; see --dry-run)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--bounded",
        dest="mode",
        action="store_const",
        const="bounded",
        help="read what is on the bus now, write it, commit, exit (the default with --runner direct)",
    )
    mode.add_argument(
        "--streaming",
        dest="mode",
        action="store_const",
        const="streaming",
        help="read the bus unbounded until stopped (with --runner dataflow the default follows the "
        "product's schedule in dataproduct.yaml)",
    )
    parser.add_argument(
        "--until-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --streaming on the direct runner: stop after the bus has been idle this long",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --streaming: window of enqueue time per key group and per offset commit (default 10)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --runner dataflow: print the complete Dataflow options as JSON and submit nothing",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    if args.runner not in RUNNERS:
        raise ConfigError(f"unknown runner {args.runner!r}", hint=f"Valid values are: {', '.join(RUNNERS)}.")
    if args.dry_run and args.runner != "dataflow":
        raise ConfigError("--dry-run needs --runner dataflow", hint="The direct runner has nothing to submit.")
    from meshkit.products.discovery import find_product

    settings = settings_from(args)
    product = find_product(settings.domains_dir, args.product)
    if args.runner == "dataflow":
        streaming = (args.mode or product.schedule.mode) == "streaming"
        if args.from_file is not None:
            raise ConfigError(
                "--from-file replays a local file; Dataflow workers cannot read it",
                hint="Replay locally (--runner direct), or relay the file onto the bus first.",
            )
        if args.dry_run:
            from pipelines.runners.dataflow import describe

            print(json.dumps(describe(settings, product, streaming=streaming), indent=2))
            return 0
        if settings.profile != "cloud":
            raise ConfigError(
                f"--runner dataflow submits to Google Cloud, but the profile is {settings.profile!r}",
                hint="Use --profile cloud (or MESHKIT_PROFILE=cloud) with gcp_project and the dataflow_* settings, "
                "or add --dry-run to see the options offline.",
            )
        from pipelines.runners.dataflow import submit

        submitted = submit(settings, product, streaming=streaming).to_dict()
        print(json.dumps(submitted, indent=2) if args.format == "json" else _render_submitted(submitted))
        return 0
    streaming = args.mode == "streaming"
    if args.until_idle is not None and not streaming:
        raise ConfigError("--until-idle needs --streaming", hint="A bounded run (the default) always stops by itself.")
    if args.window <= 0 or (args.until_idle is not None and args.until_idle <= 0):
        raise ConfigError("--window and --until-idle take a positive number of seconds", hint="E.g. --window 10.")
    # Beam loads only once the product is known: a mistyped name fails in a fraction of a second
    from pipelines.runners.local import Streaming, run_product

    summary = run_product(
        settings,
        product,
        from_file=args.from_file,
        runner=RUNNERS["direct"],
        streaming=Streaming(window_seconds=args.window, idle_stop_seconds=args.until_idle) if streaming else None,
    ).to_dict()
    print(json.dumps(summary, indent=2) if args.format == "json" else render_summary(summary))
    return 0


def _render_submitted(submitted: dict[str, object]) -> str:
    return (
        f"{submitted['product']}  {submitted['mode']} Dataflow job {submitted['job_name']} submitted "
        f"(id {submitted['job_id']}, state {submitted['state']}); it commits the bus offsets itself."
    )
