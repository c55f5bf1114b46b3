"""The access section of the review: who holds which role of each product, why, and until when.

Reads each product's access.yaml with governance.validation.access's parser; bindings that expired
or state no purpose are warnings on the product's scorecard (validation reports format errors).
"""

from __future__ import annotations

from governance.review.sections import ReviewContext, ReviewSection, ReviewTable
from governance.validation.access import _lifecycle_checks, parse_access
from meshkit.checks import Check, Status
from meshkit.errors import MeshkitError
from meshkit.products.model import ACCESS_FILE
from meshkit.yamlio import load_yaml

KEY = "access"
COLUMNS = ("Product", "Role", "Purpose", "Expires", "GCP principals", "Azure principals")
_REPORTED = {"access.purpose", "access.expired"}


def review_section(context: ReviewContext) -> ReviewSection:
    """One row per binding; expired bindings and bindings without purpose as warnings."""
    rows: list[tuple[str, ...]] = []
    per_product: dict[str, tuple[Check, ...]] = {}
    data: dict[str, list[dict[str, object]]] = {}
    root = context.settings.root.resolve()
    without_file = 0
    for product in context.products:
        path = product.directory / ACCESS_FILE
        if not path.is_file():
            without_file += 1
            continue
        try:
            document = load_yaml(path)
        except MeshkitError:
            continue  # validation reports the syntax error with its line
        bindings, _ = parse_access(document)
        if bindings is None:
            continue
        shown = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else str(path)
        checks: list[Check] = []
        for i, binding in enumerate(bindings.bindings):
            rows.append(
                (
                    product.ref,
                    binding.role,
                    binding.purpose or "–",
                    binding.expires or "never",
                    ", ".join(binding.gcp) or "–",
                    ", ".join(binding.azure) or "–",
                )
            )
            data.setdefault(product.ref, []).append(binding.model_dump())
            for check in _lifecycle_checks(document, i, binding, context.today):
                if check.rule in _REPORTED:
                    checks.append(Check(**{**check.__dict__, "file": shown}))
        if checks:
            per_product[product.ref] = tuple(checks)
    all_checks = tuple(c for checks in per_product.values() for c in checks)
    warnings = sum(c.status is Status.WARNING for c in all_checks)
    summary = (
        f"{len(rows)} role bindings across {len(data)} products; {warnings} expired or without purpose"
        + (f"; {without_file} products without {ACCESS_FILE}" if without_file else "")
        + "."
    )
    return ReviewSection(
        key=KEY,
        title="Access",
        summary=summary,
        checks=all_checks,
        per_product=per_product,
        tables=(ReviewTable(COLUMNS, tuple(rows)),),
        data={"bindings": data},
    )
