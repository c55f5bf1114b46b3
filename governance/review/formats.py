"""Renderers of the one review model: HTML, Markdown, JSON, JUnit XML and SARIF 2.1.0.

Each format is a function `Review -> str` registered by name with its file name; `write_formats`
writes the chosen ones. JUnit and SARIF are for CI: a testcase / result per check, paths relative
to the repository root so code-scanning annotations land on the right line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from governance.review.report import Review, render_html, render_markdown
from governance.review.scorecards import domain_scorecards, product_scorecards
from meshkit.checks import Check, Severity, Status
from meshkit.errors import ConfigError

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/meshkit/meshkit"


def check_level(check: Check) -> str | None:
    """error / warning / note, or None for a plain pass (not a finding)."""
    if check.status in (Status.FAILED, Status.ERROR):
        return "error"
    if check.status is Status.WARNING:
        return "warning"
    return "note" if check.severity is Severity.INFO else None


def render_json(review: Review) -> str:
    """Everything in the review, with stable keys (sorted) for diffs and machines."""
    document: dict[str, Any] = {
        "generated_at": review.generated_at,
        "ok": review.ok,
        "base_revision": review.base_revision,
        "totals": dict(review.totals.__dict__),
        "scorecards": {
            "products": [c.to_dict() for c in product_scorecards(review)],
            "domains": [c.to_dict() for c in domain_scorecards(review)],
        },
        "mesh_checks": [c.to_dict() for c in review.mesh_checks],
        "products": [
            {
                "ref": p.ref,
                "domain": p.domain,
                "name": p.name,
                "status": str(p.status),
                "owner": p.owner,
                "lifecycle": p.lifecycle,
                "contract_id": p.contract_id,
                "contract_version": p.contract_version,
                "description": p.description,
                "column_count": p.column_count,
                "personal_columns": [c.__dict__ for c in p.personal_columns],
                "upstream": list(p.upstream),
                "downstream": list(p.downstream),
                "load_error": p.load_error,
                "checks": [c.to_dict() for c in p.checks],
                "section_checks": [c.to_dict() for c in p.section_checks],
                "last_run": p.last_run.to_dict() if p.last_run else None,
                "slos": p.slos.to_dict() if p.slos else None,
            }
            for p in review.products
        ],
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "summary": s.summary,
                "checks": [c.to_dict() for c in s.checks],
                "per_product": {ref: [c.to_dict() for c in cs] for ref, cs in s.per_product.items()},
                "tables": [{"columns": list(t.columns), "rows": [list(r) for r in t.rows]} for t in s.tables],
                "data": s.data,
            }
            for s in review.sections
        ],
        "edges": [list(e) for e in review.edges],
    }
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


def _suites(review: Review) -> Iterable[tuple[str, Sequence[Check]]]:
    yield "mesh", review.mesh_checks
    for p in review.products:
        load = [Check("product.load", Status.FAILED, p.load_error)] if p.load_error else []
        yield f"product:{p.ref}", [*load, *p.checks]
    for s in review.sections:
        yield f"section:{s.key}", s.checks


def render_junit(review: Review) -> str:
    """A testsuite per product and per section (plus `mesh`), a testcase per check: failure for
    failed/error, skipped for info notes; warnings pass with their reason in system-out."""
    root = ET.Element("testsuites", name="meshkit review")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for name, checks in _suites(review):
        suite = ET.SubElement(root, "testsuite", name=name)
        failures = skipped = 0
        for i, check in enumerate(checks):
            case = ET.SubElement(suite, "testcase", classname=name, name=f"{check.rule} #{i + 1}")
            if check.file:
                case.set("file", check.file)
            if check.line is not None:
                case.set("line", str(check.line))
            level = check_level(check)
            if level == "error":
                failures += 1
                failure = ET.SubElement(case, "failure", message=check.reason, type=check.rule)
                failure.text = "\n".join(x for x in (check.where, check.hint) if x)
            elif level == "note":
                skipped += 1
                ET.SubElement(case, "skipped", message=check.reason)
            elif level == "warning":
                ET.SubElement(case, "system-out").text = f"warning: {check.reason}"
        suite.set("tests", str(len(checks)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        totals["tests"] += len(checks)
        totals["failures"] += failures
        totals["skipped"] += skipped
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_sarif(review: Review) -> str:
    """One SARIF 2.1.0 run: a rule per check rule id (help = the first hint seen), a result per finding."""
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for check in review.all_checks:
        level = check_level(check)
        if level is None:
            continue
        rule = rules.setdefault(
            check.rule, {"id": check.rule, "shortDescription": {"text": check.rule}, "help": {"text": ""}}
        )
        if check.hint and not rule["help"]["text"]:
            rule["help"]["text"] = check.hint
        result: dict[str, Any] = {"ruleId": check.rule, "level": level, "message": {"text": check.reason}}
        location: dict[str, Any] = {"artifactLocation": {"uri": check.file or "."}}
        if check.line is not None:
            location["region"] = {"startLine": check.line}
        result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    for rule in rules.values():
        rule["help"]["text"] = rule["help"]["text"] or rule["id"]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "meshkit review",
                        "informationUri": INFORMATION_URI,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


# name on the command line -> (key in the returned paths, file name, renderer)
FORMATS: dict[str, tuple[str, str, Callable[[Review], str]]] = {
    "html": ("html", "review.html", render_html),
    "md": ("markdown", "review.md", render_markdown),
    "json": ("json", "review.json", render_json),
    "junit": ("junit", "review.junit.xml", render_junit),
    "sarif": ("sarif", "review.sarif", render_sarif),
}


def parse_formats(text: str) -> tuple[str, ...]:
    """`html,md` -> ("html", "md"); unknown names are an error listing the valid ones."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ConfigError(
            f"unknown review format {', '.join(unknown) or '(none)'}",
            hint=f"Valid values are: {', '.join(FORMATS)} (comma-separated).",
        )
    return names


def write_formats(review: Review, out_dir: Path, formats: Iterable[str] = tuple(FORMATS)) -> dict[str, Path]:
    """Write each chosen format into `out_dir`; returns {key: path} (keys: html, markdown, json, junit, sarif)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in formats:
        key, file_name, render = FORMATS[name]
        path = out_dir / file_name
        path.write_text(render(review), encoding="utf-8")
        paths[key] = path
    return paths
