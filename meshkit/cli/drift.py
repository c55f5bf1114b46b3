"""`meshkit drift <domain>/<product>`: fields and types the source sends that the contract lacks, or
that no longer appear, from the pipeline's document profiles; the proposed contract change as a diff
with the version bump it needs. Exit 1 when the contract must change (CI gates on it), 0 otherwise."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from meshkit.cli._common import settings_from

if TYPE_CHECKING:
    from governance.drift import DriftReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", metavar="<domain>/<product>", help="the product, e.g. payments/transactions")
    parser.add_argument("--runs", type=int, default=10, metavar="N", help="merge the latest N run profiles")
    parser.add_argument(
        "--format", choices=("text", "json", "diff"), default="text",
        help="diff: only the proposed contract change (apply with `patch -p0` or `git apply -p0`)",
    )  # fmt: skip
    parser.add_argument(
        "--remove-vanished", action="store_true",
        help="propose removing columns that no longer appear (a major change) instead of marking them",
    )  # fmt: skip


def render_text(report: DriftReport) -> str:
    from governance.drift import BAD_VALUE_SHARE, REQUIRED_SHARE, VANISHED_SHARE
    from pipelines.transforms.profile import SAMPLE_HEAD

    runs = len(report.runs)
    lines = [
        f"{report.product} (contract {report.contract_version}): {report.documents:,} documents profiled "
        f"over {runs} run{'s' if runs != 1 else ''} (deletes excluded; each decode worker profiles its first "
        f"{SAMPLE_HEAD:,} documents, then 1 in {report.sample_every})",
        f"  required = has a value in >= {REQUIRED_SHARE:.1%} of them; vanished = in < {VANISHED_SHARE:.0%}; "
        f"unexpected kinds or missing required values in < {BAD_VALUE_SHARE:.0%} are bad values (a note)",
    ]
    for finding in report.findings:
        mark = "DRIFT" if finding.drift else "note "
        lines.append(f"  {mark} {finding.code:<18} {finding.message}")
        if finding.proposed:
            lines.append(f"  {'':<5} {'':<18} proposed: {finding.proposed}")
    if not report.findings:
        lines.append("  no drift: every field the documents carry is in the contract, with its type")
    if report.proposal is not None:
        p = report.proposal
        lines.append(
            f"  proposed change to {p.path}: {p.bump} bump, version {p.old_version} -> {p.new_version} "
            "(governance/diff); `--format diff` prints it"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from governance.drift import drift_report

    settings = settings_from(args)
    report = drift_report(settings, args.product, runs=args.runs, remove_vanished=args.remove_vanished)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    elif args.format == "diff":
        if report.proposal is not None:
            print(report.proposal.diff, end="")
    else:
        print(render_text(report))
    return 1 if report.drifted else 0
