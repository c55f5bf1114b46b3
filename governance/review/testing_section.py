"""The contract tests section of the review: each product's latest `meshkit test` results.

Reads the JSON each test run leaves in `<workspace>/reports/tests/` (one small file per product, so
a thousand products stay fast); failed checks of error severity are failures on the product's
scorecard, warnings are warnings, and a product never tested is counted, not failed.
"""

from __future__ import annotations

import json
from typing import Any

from governance.review.sections import ReviewContext, ReviewSection, ReviewTable
from meshkit.checks import Check, Severity, Status

KEY = "testing"
COLUMNS = ("Product", "Server", "Rows", "Checks", "Failed", "Warnings", "Validity", "Completeness", "Tested at")


def _share(value: Any) -> str:
    return f"{float(value):.2%}" if isinstance(value, int | float) else "–"


def review_section(context: ReviewContext) -> ReviewSection:
    from governance.testing.publish import results_path

    rows: list[tuple[str, ...]] = []
    per_product: dict[str, tuple[Check, ...]] = {}
    data: dict[str, dict[str, Any]] = {}
    untested = 0
    for product in context.products:
        path = results_path(context.settings, product.ref)
        if not path.is_file():
            untested += 1
            continue
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            untested += 1
            continue
        summary = results.get("summary", {})
        failed = int(summary.get("failed", 0)) + int(summary.get("error", 0))
        rows.append((
            product.ref, str(results.get("server", "")), f"{int(results.get('rows', 0)):,}",
            str(len(results.get("checks", []))), str(failed), str(summary.get("warning", 0)),
            _share(results.get("validity")), _share(results.get("completeness")), str(results.get("ended_at", ""))[:19],
        ))  # fmt: skip
        checks = []
        for c in results.get("checks", []):
            if c.get("status") not in ("failed", "error", "warning"):
                continue
            bad = c["status"] != "warning"
            checks.append(
                Check(
                    rule=f"test.{c.get('kind')}",
                    status=Status.FAILED if bad else Status.WARNING,
                    reason=f"{c.get('id')}: {c.get('reason') or 'failed'}",
                    file=str(product.contract_path),
                    field=c.get("column"),
                    hint=f"Run `meshkit test {product.ref}` for the failing keys; fix the data or the contract.",
                    severity=Severity.ERROR if bad else Severity.WARNING,
                )
            )
        if checks:
            per_product[product.ref] = tuple(checks)
        data[product.ref] = {k: results.get(k) for k in ("server", "rows", "ok", "summary", "validity",
                                                          "completeness", "ended_at", "run_id")}  # fmt: skip
    all_checks = tuple(c for checks in per_product.values() for c in checks)
    failing = sum(1 for r in rows if r[4] != "0")
    text = f"{len(rows)} products tested, {failing} with failed checks"
    text += f"; {untested} never tested (run `meshkit test <product>`)." if untested else "."
    return ReviewSection(
        key=KEY,
        title="Contract tests",
        summary=text,
        checks=all_checks,
        per_product=per_product,
        tables=(ReviewTable(COLUMNS, tuple(rows)),),
        data={"products": data},
    )
