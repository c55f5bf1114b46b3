"""What operational policies read about the whole mesh, loaded once per review (not once per product).

Lineage: the newest COMPLETE event per pipeline job in the NDJSON file at `settings.lineage_path`.
SLOs: every product's objectives judged on the metrics store at the end of the review day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from governance.review.sections import ReviewContext
from monitoring.metrics.store import MetricsStore
from monitoring.slo.status import ProductSlos, judge


def pipeline_job(product_ref: str) -> str:
    """The OpenLineage job name of a product's pipeline: `<domain>.<product>.pipeline`."""
    return f"{product_ref.replace('/', '.')}.pipeline"


def _event_time(value: object) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def latest_complete_events(path: Path) -> dict[str, datetime]:
    """Job name -> time of its newest COMPLETE event; an absent file means no lineage yet (empty)."""
    latest: dict[str, datetime] = {}
    if not path.exists():
        return latest
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn last line while a pipeline writes; the review reads what is complete
            if not isinstance(event, dict) or event.get("eventType") != "COMPLETE":
                continue
            job = event.get("job")
            name = job.get("name") if isinstance(job, dict) else None
            when = _event_time(event.get("eventTime"))
            if isinstance(name, str) and when is not None and (name not in latest or when > latest[name]):
                latest[name] = when
    return latest


def review_moment(today: date) -> datetime:
    """The instant a review dated `today` judges: the end of that day, UTC."""
    return datetime.combine(today, time.max, tzinfo=UTC)


@dataclass(frozen=True)
class MeshFacts:
    lineage: dict[str, datetime]
    slos: dict[str, ProductSlos]


_CACHE: dict[int, tuple[ReviewContext, MeshFacts]] = {}


def mesh_facts(context: ReviewContext) -> MeshFacts:
    """Facts for `context`, read on first use and kept while the same context object is reviewed."""
    cached = _CACHE.get(id(context))
    if cached is not None and cached[0] is context:
        return cached[1]
    settings = context.settings
    runs = MetricsStore(settings.metrics_path).runs()
    slos = judge(list(context.products), runs, review_moment(context.today))
    facts = MeshFacts(lineage=latest_complete_events(settings.lineage_path), slos={s.product: s for s in slos})
    _CACHE.clear()  # one review at a time; holding the context keeps its id from being reused
    _CACHE[id(context)] = (context, facts)
    return facts
