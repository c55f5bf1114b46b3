"""Renderers of a `ContractTestRun`: text for people, JSON for tools, JUnit XML for CI."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from governance.testing.model import CheckOutcome, ContractTestRun

_MARK = {"passed": "ok  ", "failed": "FAIL", "warning": "warn", "skipped": "skip", "error": "ERR "}


def render_text(run: ContractTestRun, *, verbose: bool = False) -> str:
    """One line per check that did not pass (every check with `verbose`), then the totals."""
    lines = [f"{run.product} (contract {run.contract_version}) on {run.server}: {run.dataset}"]
    shown = [o for o in run.outcomes if verbose or o.status not in ("passed", "skipped")]
    width = max((len(o.check.id) for o in shown), default=0)
    for o in shown:
        threshold = str(o.check.threshold)
        line = f"  {_MARK[o.status]}  {o.check.id:<{width}}  {threshold:<14} measured {o.measured_text}"
        if o.status in ("skipped", "error") or (o.status != "passed" and o.measured is None):
            line = f"  {_MARK[o.status]}  {o.check.id:<{width}}  {o.reason}"
        lines.append(line)
        if o.sample_keys:
            lines.append(f"  {'':4}  {'':<{width}}  failing keys: {', '.join(o.sample_keys)}")
    if not verbose:
        skipped: dict[str, list[str]] = {}
        for o in run.outcomes:
            if o.status == "skipped":
                skipped.setdefault(o.reason, []).append(o.check.kind)
        for reason, kinds in skipped.items():
            lines.append(f"  {_MARK['skipped']}  {', '.join(kinds)}: {reason}")
    counts = ", ".join(
        f"{run.count(s)} {s}" for s in ("passed", "failed", "warning", "skipped", "error") if run.count(s)
    )
    sli = ""
    if run.validity is not None or run.completeness is not None:
        parts = [f"{name} {value:.4%}" for name, value in (("validity", run.validity),
                 ("completeness", run.completeness)) if value is not None]  # fmt: skip
        sli = f"; {', '.join(parts)}"
    lines.append(
        f"{len(run.outcomes)} checks on {run.rows:,} rows in {run.duration_seconds:.2f} s "
        f"({run.queries} SQL statements): {counts}{sli}"
    )
    lines += [f"note: {n}" for n in run.notes]
    lines.append("PASSED" if run.ok else "FAILED: a check of error severity failed")
    return "\n".join(lines)


def render_json(run: ContractTestRun) -> str:
    return json.dumps(run.to_dict(), indent=2, sort_keys=False)


def _message(o: CheckOutcome) -> str:
    if o.measured is None:
        return o.reason
    text = f"expected {o.check.threshold}, measured {o.measured_text}"
    if o.sample_keys:
        text += f"; failing keys: {', '.join(o.sample_keys)}"
    return text


def render_junit(run: ContractTestRun) -> str:
    """One testsuite per product, one testcase per check: failures carry threshold and measured value;
    warnings pass with a system-out line; skipped checks are <skipped/>."""
    suites = ET.Element("testsuites", name="meshkit test")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=run.product,
        tests=str(len(run.outcomes)),
        failures=str(run.count("failed")),
        errors=str(run.count("error")),
        skipped=str(run.count("skipped")),
        time=f"{run.duration_seconds:.3f}",
        timestamp=run.started_at,
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("server", run.server), ("dataset", run.dataset), ("rows", str(run.rows)),
                        ("contract_version", run.contract_version), ("run_id", run.run_id)):  # fmt: skip
        ET.SubElement(props, "property", name=name, value=value)
    for o in run.outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"{run.product}.{o.check.kind}", name=o.check.id, time="0")
        if o.status == "failed":
            node = ET.SubElement(case, "failure", message=_message(o), type=o.check.kind)
            node.text = o.reason
        elif o.status == "error":
            node = ET.SubElement(case, "error", message=o.reason, type=o.check.kind)
        elif o.status == "skipped":
            ET.SubElement(case, "skipped", message=o.reason)
        elif o.status == "warning":
            ET.SubElement(case, "system-out").text = f"warning: {_message(o)}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


RENDERERS = {"text": render_text, "json": render_json, "junit": render_junit}
