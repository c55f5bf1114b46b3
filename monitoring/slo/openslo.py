"""Objectives as OpenSLO v1 documents (Service, DataSource, SLI, SLO), one YAML file per product.

The shape follows the OpenSLO v1 specification; `validate_documents` checks what we write against
its required fields and enumerations, so a consumer (an OpenSLO converter, Nobl9, Sloth-style
generators) reads the file as written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover, find_product
from monitoring.slo.budget import MEASURED_IN
from monitoring.slo.derive import derive_slos
from monitoring.slo.model import Objective

API_VERSION = "openslo/v1"
FILE_NAME = "openslo.yaml"
DATA_SOURCE = "meshkit-metrics"
ANNOTATION = "meshkit"  # annotation key prefix: `meshkit/<name>`
KINDS = frozenset({"Service", "DataSource", "SLI", "SLO", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"})
BUDGETING_METHODS = frozenset({"Occurrences", "Timeslices", "RatioTimeslices"})
OPERATORS = frozenset({"lte", "gte", "lt", "gt"})
MAX_NAME, MAX_DESCRIPTION = 63, 1050
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^[1-9]\d*[mhdwMQY]$")
# a frequency slice is judged once a minute: fine enough for the shortest contract frequency (1 min)
TIME_SLICE_WINDOW = "1m"

# what each SLI counts in the metrics meshkit records (RunSummary figures, same names in Cloud Monitoring)
_RATIO_QUERIES: dict[str, tuple[str, str]] = {
    "freshness": ("completed runs whose max_source_lag_seconds <= threshold", "completed runs with changes"),
    "availability": ("runs with status completed", "runs with status completed or failed"),
    "validity": ("events_in - dead_letters of completed runs", "events_in of completed runs"),
    "completeness": (
        "rows_written.changelog + duplicates_dropped + replayed of completed runs",
        "events_in - dead_letters of completed runs",
    ),
}


def resource_name(text: str) -> str:
    """An RFC 1123 label (lowercase, digits, '-', at most 63 characters) for `text`; long names keep a
    hash of the whole so two products never collide."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"


def _metric(product: str, kind: str, measure: str, query: str) -> dict[str, Any]:
    return {
        "metricSource": {
            "metricSourceRef": DATA_SOURCE,
            "type": "meshkit",
            "spec": {"product": product, "sli": kind, "measure": measure, "query": query},
        }
    }


def _sli(objective: Objective) -> dict[str, Any]:
    o = objective
    spec: dict[str, Any] = {"description": o.description[:MAX_DESCRIPTION]}
    if o.kind == "frequency":
        spec["thresholdMetric"] = _metric(
            o.product, o.kind, "seconds_since_last_completed_run", "now - ended_at of the newest completed run"
        )
    else:
        good, total = _RATIO_QUERIES[o.kind]
        spec["ratioMetric"] = {
            "counter": False,  # per-run figures (deltas), summed over the window; not running totals
            "good": _metric(o.product, o.kind, "good", good),
            "total": _metric(o.product, o.kind, "total", total),
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "SLI",
        "metadata": {"name": resource_name(f"{o.name}-sli"), "displayName": f"{o.product} {o.kind}"},
        "spec": spec,
    }


def _slo(objective: Objective, service: str, sli_name: str) -> dict[str, Any]:
    o = objective
    annotations = {
        f"{ANNOTATION}/contract-property": o.source_property,
        f"{ANNOTATION}/measured-in": MEASURED_IN[o.kind],
    }
    if o.threshold_seconds is not None:
        annotations[f"{ANNOTATION}/threshold-seconds"] = f"{o.threshold_seconds:g}"
    if o.element:
        annotations[f"{ANNOTATION}/element"] = o.element
    target: dict[str, Any] = {"displayName": f"{o.kind} {o.target * 100:g}%", "target": o.target}
    if o.kind == "frequency":
        assert o.threshold_seconds is not None
        target.update(op="lte", value=o.threshold_seconds, timeSliceTarget=1.0, timeSliceWindow=TIME_SLICE_WINDOW)
    return {
        "apiVersion": API_VERSION,
        "kind": "SLO",
        "metadata": {
            "name": resource_name(o.name),
            "displayName": f"{o.product} {o.kind}",
            "labels": {"product": resource_name(o.product), "sli": o.kind},
            "annotations": annotations,
        },
        "spec": {
            "description": o.description[:MAX_DESCRIPTION],
            "service": service,
            "indicatorRef": sli_name,
            "timeWindow": [{"duration": f"{o.window_days}d", "isRolling": True}],
            "budgetingMethod": "Timeslices" if o.kind == "frequency" else "Occurrences",
            "objectives": [target],
        },
    }


def openslo_documents(
    product: str, objectives: Sequence[Objective], description: str | None = None
) -> list[dict[str, Any]]:
    """The product as an OpenSLO Service, the metrics source, and one SLI and one SLO per objective."""
    service = resource_name(product)
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"name": service, "displayName": product},
            "spec": {"description": (description or f"Data product {product}")[:MAX_DESCRIPTION]},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "DataSource",
            "metadata": {"name": DATA_SOURCE, "displayName": "meshkit run metrics"},
            "spec": {
                "description": "Run figures meshkit records per product: the local metrics store, or Cloud "
                "Monitoring custom metrics on the cloud profile.",
                "type": "meshkit",
                "connectionDetails": {"local": "metrics.sqlite", "cloud": "custom.googleapis.com/meshkit"},
            },
        },
    ]
    for objective in objectives:
        sli = _sli(objective)
        docs.append(sli)
        docs.append(_slo(objective, service, sli["metadata"]["name"]))
    return docs


def to_yaml(docs: Sequence[dict[str, Any]], source: str | None = None) -> str:
    header = f"# Generated by `meshkit slo export` from {source}; do not edit.\n" if source else ""
    return header + yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, explicit_start=True)


# --- validation against the OpenSLO v1 specification --------------------------------------------------


def validate_documents(docs: Sequence[Any]) -> list[str]:
    """Problems with the documents' shape per the OpenSLO v1 spec (empty when they conform)."""
    problems: list[str] = []
    slis = {d["metadata"]["name"] for d in docs if isinstance(d, dict) and d.get("kind") == "SLI" and _named(d)}
    for i, doc in enumerate(docs):
        where = f"document {i}"
        if not isinstance(doc, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if doc.get("apiVersion") != API_VERSION:
            problems.append(f"{where}: apiVersion must be {API_VERSION}")
        kind = doc.get("kind")
        if kind not in KINDS:
            problems.append(f"{where}: unknown kind {kind!r}")
        if not _named(doc):
            problems.append(f"{where}: metadata.name must be an RFC 1123 label of at most {MAX_NAME} characters")
        else:
            where = f"{kind} {doc['metadata']['name']}"
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            problems.append(f"{where}: spec must be a mapping")
            continue
        if len(str(spec.get("description", ""))) > MAX_DESCRIPTION:
            problems.append(f"{where}: description longer than {MAX_DESCRIPTION} characters")
        if kind == "SLI":
            problems += [f"{where}: {p}" for p in _sli_problems(spec)]
        elif kind == "SLO":
            problems += [f"{where}: {p}" for p in _slo_problems(spec, slis)]
        elif kind == "DataSource" and not spec.get("type"):
            problems.append(f"{where}: spec.type is required")
    return problems


def _named(doc: dict[str, Any]) -> bool:
    name = (doc.get("metadata") or {}).get("name")
    return isinstance(name, str) and len(name) <= MAX_NAME and bool(_NAME.match(name))


def _metric_problems(metric: Any, label: str) -> list[str]:
    source = metric.get("metricSource") if isinstance(metric, dict) else None
    if not isinstance(source, dict) or not isinstance(source.get("spec"), dict):
        return [f"{label}.metricSource.spec is required"]
    if not (source.get("type") or source.get("metricSourceRef")):
        return [f"{label}.metricSource needs a type or a metricSourceRef"]
    return []


def _sli_problems(spec: dict[str, Any]) -> list[str]:
    threshold, ratio = spec.get("thresholdMetric"), spec.get("ratioMetric")
    if (threshold is None) == (ratio is None):
        return ["exactly one of thresholdMetric and ratioMetric is required"]
    if threshold is not None:
        return _metric_problems(threshold, "thresholdMetric")
    if not isinstance(ratio, dict):
        return ["ratioMetric must be a mapping"]
    if "raw" in ratio:
        problems = [] if ratio.get("rawType") in ("success", "failure") else ["rawType must be success or failure"]
        return problems + _metric_problems(ratio["raw"], "ratioMetric.raw")
    if not isinstance(ratio.get("counter"), bool):
        return ["ratioMetric.counter must be true or false"]
    if ("good" in ratio) == ("bad" in ratio) or "total" not in ratio:
        return ["ratioMetric needs total and exactly one of good and bad"]
    numerator = "good" if "good" in ratio else "bad"
    return [
        *_metric_problems(ratio[numerator], f"ratioMetric.{numerator}"),
        *_metric_problems(ratio["total"], "ratioMetric.total"),
    ]


def _slo_problems(spec: dict[str, Any], slis: set[str]) -> list[str]:
    problems: list[str] = []
    if not isinstance(spec.get("service"), str) or not spec["service"]:
        problems.append("spec.service is required")
    if ("indicator" in spec) == ("indicatorRef" in spec):
        problems.append("exactly one of indicator and indicatorRef is required")
    elif "indicatorRef" in spec and spec["indicatorRef"] not in slis:
        problems.append(f"indicatorRef {spec['indicatorRef']!r} names no SLI in the file")
    method = spec.get("budgetingMethod")
    if method not in BUDGETING_METHODS:
        problems.append(f"budgetingMethod must be one of {', '.join(sorted(BUDGETING_METHODS))}")
    windows = spec.get("timeWindow")
    if windows is not None:
        if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
            problems.append("timeWindow must hold exactly one item")
        else:
            if not _DURATION.match(str(windows[0].get("duration", ""))):
                problems.append("timeWindow[0].duration must be a duration shorthand such as 30d")
            if not isinstance(windows[0].get("isRolling", False), bool):
                problems.append("timeWindow[0].isRolling must be true or false")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        return [*problems, "objectives must be a non-empty list"]
    for j, objective in enumerate(objectives):
        problems += [f"objectives[{j}]: {p}" for p in _objective_problems(objective, method)]
    return problems


def _objective_problems(objective: Any, method: Any) -> list[str]:
    if not isinstance(objective, dict):
        return ["must be a mapping"]
    problems: list[str] = []
    has_target, has_percent = "target" in objective, "targetPercent" in objective
    if has_target == has_percent:
        problems.append("exactly one of target and targetPercent is required")
    elif has_target and not 0.0 <= float(objective["target"]) < 1.0:
        problems.append("target must lie in [0, 1)")
    elif has_percent and not 0.0 <= float(objective["targetPercent"]) < 100.0:
        problems.append("targetPercent must lie in [0, 100)")
    if "op" in objective and objective["op"] not in OPERATORS:
        problems.append(f"op must be one of {', '.join(sorted(OPERATORS))}")
    if method == "Timeslices":
        slice_target = objective.get("timeSliceTarget")
        if not isinstance(slice_target, int | float) or not 0.0 < float(slice_target) <= 1.0:
            problems.append("timeSliceTarget in (0, 1] is required with Timeslices")
    if method in ("Timeslices", "RatioTimeslices"):
        window = objective.get("timeSliceWindow")
        if not (isinstance(window, int | float) or _DURATION.match(str(window))):
            problems.append("timeSliceWindow is required with Timeslices and RatioTimeslices")
    return problems


# --- files -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedProduct:
    product: str
    path: Path | None
    objectives: int
    error: str | None = None


def export_openslo(
    settings: Settings, out_dir: Path | None = None, product: str | None = None
) -> list[ExportedProduct]:
    """Write `<out>/<domain>/<product>/openslo.yaml` for every product (or one); out defaults to the build
    folder. A product whose contract cannot load is reported, not written."""
    base = out_dir or settings.build_dir
    products = [find_product(settings.domains_dir, product)] if product else discover(settings.domains_dir)
    exported: list[ExportedProduct] = []
    for p in products:
        try:
            derivation = derive_slos(p.contract, p.ref)
        except MeshkitError as exc:
            exported.append(ExportedProduct(p.ref, None, 0, error=exc.message))
            continue
        purpose = p.contract.odcs.description.purpose if p.contract.odcs.description else None
        docs = openslo_documents(p.ref, derivation.objectives, purpose.strip() if purpose else None)
        problems = validate_documents(docs)
        if problems:  # a bug in this module, not in the contract
            raise MeshkitError(
                f"the OpenSLO documents of {p.ref} do not conform: {'; '.join(problems)}",
                hint="This is a bug in meshkit's OpenSLO export; please report it with the contract.",
            )
        path = base / p.domain / p.name / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        source = p.contract_path.relative_to(settings.root) if p.contract_path.is_relative_to(settings.root) else None
        path.write_text(to_yaml(docs, source.as_posix() if source else p.ref), encoding="utf-8")
        exported.append(ExportedProduct(p.ref, path, len(derivation.objectives)))
    return exported
