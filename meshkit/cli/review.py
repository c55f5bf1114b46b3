"""`meshkit review`: write the governance review in each chosen format; exit 1 at or above --fail-on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshkit.config import load_settings

FORMAT_NAMES = "html,md,json,junit,sarif"
FAIL_ON = ("error", "warning", "never")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="folder for the reports (default: the reports dir)")
    parser.add_argument(
        "--format",
        default=FORMAT_NAMES,
        help=f"comma-separated report formats to write (default: all of {FORMAT_NAMES})",
    )
    parser.add_argument("--base", default=None, metavar="REV", help="git revision to diff the contracts against")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="error",
        help="exit 1 when any check is at or above this level (default: error; never: always 0)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")


def exit_code(statuses: list[str], fail_on: str) -> int:
    """1 when any check status reaches `fail_on` (failed/error count as error, warning as warning)."""
    if fail_on == "never":
        return 0
    levels = {"error": {"failed", "error"}, "warning": {"failed", "error", "warning"}}[fail_on]
    return 1 if any(s in levels for s in statuses) else 0


def run(args: argparse.Namespace) -> int:
    from governance.review.formats import parse_formats
    from governance.review.report import build_review, write_review

    formats = parse_formats(args.format)
    root = Path(args.root) if getattr(args, "root", None) else None
    settings = load_settings(root, overrides={"profile": getattr(args, "profile", None)})
    review = build_review(settings, base_revision=args.base)
    paths = write_review(review, Path(args.out) if args.out else settings.reports_dir, formats)
    statuses = [str(c.status) for c in review.all_checks]
    statuses += ["failed" for p in review.products if p.load_error]
    code = exit_code(statuses, args.fail_on)
    if args.json:
        summary = {
            "ok": review.ok,
            "exit_code": code,
            "reports": {kind: str(path) for kind, path in paths.items()},
            "products": [{"ref": p.ref, "status": str(p.status), "findings": len(p.findings)} for p in review.products],
        }
        print(json.dumps(summary, indent=2))
    else:
        t = review.totals
        for path in paths.values():
            print(path)
        print(f"{t.products} products: {t.passed} passed, {t.warning} with warnings, {t.failed} failed")
    return code
