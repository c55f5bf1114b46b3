"""Renderers of the access matrix and the drift report: table, CSV, JSON, HTML (one model, four views)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from governance.access.drift import DriftReport
from governance.access.matrix import AccessMatrix, AccessRow
from governance.iam.model import Binding
from meshkit.templating import report_environment

COLUMNS = tuple(f.name for f in fields(AccessRow))
TEMPLATES = Path(__file__).parent / "templates"


def binding_row(b: Binding) -> dict[str, Any]:
    return {
        "cloud": b.cloud,
        "product": b.product,
        "principal": b.principal,
        "role": b.role,
        "resource_kind": b.resource_kind,
        "resource": b.resource,
        "columns": list(b.columns),
        "privilege": b.privilege,
        "condition": b.condition,
        "contract_role": b.contract_role,
        "note": b.note,
    }


def _drift_lines(drift: DriftReport) -> list[str]:
    lines = [
        f"Drift ({', '.join(drift.compared)}): {len(drift.of('undeclared'))} undeclared, "
        f"{len(drift.of('missing'))} missing, {len(drift.of('unverifiable'))} not verifiable"
    ]
    for item in drift.items:
        lines.append(
            f"  {item.kind.upper():<12} {item.cloud} {item.principal} {item.role} on {item.resource} "
            f"[{item.product}]: {item.detail}"
        )
    return lines


def render_table(matrix: AccessMatrix, drift: DriftReport | None) -> str:
    shown = ("principal", "product", "resource", "column", "privilege", "contract_role", "expires", "status")
    rows = [tuple(str(getattr(r, c)) for c in shown) for r in matrix.rows]
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(shown)]
    out = ["  ".join(c.upper().ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    principals = len({r.principal for r in matrix.rows})
    out.append(f"{len(matrix.rows)} privileges of {principals} principals on {len(matrix.plans)} products.")
    return "\n".join(out + (_drift_lines(drift) if drift else []))


def render_csv(matrix: AccessMatrix, drift: DriftReport | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([tuple(getattr(r, c) for c in COLUMNS) for r in matrix.rows])
    return buffer.getvalue().rstrip("\n")


def render_json(matrix: AccessMatrix, drift: DriftReport | None) -> str:
    payload: dict[str, Any] = {
        "rows": [asdict(r) for r in matrix.rows],
        "bindings": [binding_row(b) for b in matrix.bindings],
        "checks": [c.to_dict() for c in matrix.checks],
    }
    if drift is not None:
        payload["drift"] = {
            "compared": list(drift.compared),
            "clean": drift.clean,
            "items": [asdict(i) for i in drift.items],
        }
    return json.dumps(payload, indent=2)


def render_html(matrix: AccessMatrix, drift: DriftReport | None) -> str:
    template = report_environment(TEMPLATES).get_template("access.html.j2")
    return template.render(columns=COLUMNS, rows=[asdict(r) for r in matrix.rows], matrix=matrix, drift=drift)


RENDERERS = {"table": render_table, "csv": render_csv, "json": render_json, "html": render_html}
