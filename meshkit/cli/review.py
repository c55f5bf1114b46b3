"""`meshkit review`: write the governance review (HTML and Markdown) and fail when a check failed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshkit.config import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="folder for review.html and review.md (default: reports dir)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="what to print (default: text)")


def run(args: argparse.Namespace) -> int:
    from governance.review.report import build_review, write_review

    root = Path(args.root) if getattr(args, "root", None) else None
    settings = load_settings(root, overrides={"profile": getattr(args, "profile", None)})
    review = build_review(settings)
    paths = write_review(review, Path(args.out) if args.out else settings.reports_dir)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "ok": review.ok,
                    "reports": {kind: str(path) for kind, path in paths.items()},
                    "products": [
                        {"ref": p.ref, "status": str(p.status), "findings": len(p.findings)} for p in review.products
                    ],
                },
                indent=2,
            )
        )
    else:
        t = review.totals
        for path in paths.values():
            print(path)
        print(f"{t.products} products: {t.passed} passed, {t.warning} with warnings, {t.failed} failed")
    return 0 if review.ok else 1
