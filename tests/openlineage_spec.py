"""Validation of emitted events against the official OpenLineage schemas the tests carry
(tests/fixtures/openlineage, see its README) and meshkit's own facet schemas, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "tests" / "fixtures" / "openlineage"
CUSTOM_SCHEMAS = ROOT / "monitoring" / "lineage" / "schemas"


def spec_validator() -> Callable[[dict[str, Any]], None]:
    """Validates an event against OpenLineage.json and each facet against the schema its `_schemaURL`
    names (by file name: the fixtures may hold another patch version), offline, formats checked."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for
    from referencing import Registry, Resource

    files = [SPEC_DIR / "OpenLineage.json", *SPEC_DIR.glob("facets/*.json"), *CUSTOM_SCHEMAS.glob("*.json")]
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in files}
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
    formats = FormatChecker()
    formats.checks("uri", raises=ValueError)(lambda v: not isinstance(v, str) or bool(urlsplit(v).scheme))
    formats.checks("date-time", raises=ValueError)(lambda v: not isinstance(v, str) or bool(datetime.fromisoformat(v)))

    def check(schema: dict[str, Any], instance: Any) -> None:
        validator_for(schemas["OpenLineage.json"])(schema, registry=registry, format_checker=formats).validate(instance)

    def validate(event: dict[str, Any]) -> None:
        check(schemas["OpenLineage.json"], event)
        for facet in event_facets(event):
            url, _, pointer = facet["_schemaURL"].partition("#")
            check({"$ref": f"{schemas[url.rsplit('/', 1)[1]]['$id']}#{pointer}"}, facet)

    return validate


def event_facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run, job and dataset facet of an event."""
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for kind in ("facets", "inputFacets", "outputFacets"):
            facets += dataset.get(kind, {}).values()
    return facets
