"""Every lineage event the demo emits is valid OpenLineage, and says what happened: each run starts
once and ends once (COMPLETE, FAIL or ABORT), RUNNING beats while it lasts, relays parent pipelines,
columns trace back to their sources with masking shown, and no personal value appears anywhere."""

from __future__ import annotations

import _thread
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import apache_beam
import pytest
from openlineage_spec import event_facets, spec_validator

import pipelines.standard
from meshkit.config import Settings, load_settings
from meshkit.errors import TerminalError
from meshkit.products.discovery import find_product
from monitoring.lineage.emitter import LineageEmitter
from pipelines.demo import DemoResult, run_demo
from pipelines.runners.local import run_product

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EVENTS, SEED = 300, 23
CPF_IN_ERROR = "52998224725"
TERMINAL = {"COMPLETE", "FAIL", "ABORT"}


@dataclass(frozen=True)
class Lineage:
    settings: Settings
    demo: DemoResult
    failed: TerminalError
    aborted: KeyboardInterrupt
    events: list[dict[str, Any]]

    def runs(self) -> dict[str, list[dict[str, Any]]]:
        by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            by_run[event["run"]["runId"]].append(event)
        return by_run

    def final(self, job: str, run_id: str | None = None) -> dict[str, Any]:
        """The last COMPLETE event of a job (of one run, when given)."""
        return next(
            e
            for e in reversed(self.events)
            if e["job"]["name"] == job and e["eventType"] == "COMPLETE" and run_id in (None, e["run"]["runId"])
        )


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lineage]:
    """The demo with a fast heartbeat, then a run that fails and a run stopped by Ctrl-C."""
    workspace = tmp_path_factory.mktemp("lineage")
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
            patch.delenv(key)
        patch.chdir(workspace)  # no stray openlineage.yml
        settings = load_settings(ROOT, overrides={"workspace": str(workspace / "ws")}, environ={})
        demo = run_demo(settings, events=EVENTS, seed=SEED, heartbeat_seconds=0.2)
        users = find_product(settings.domains_dir, "customers/users")

        def broken(*_: object) -> None:
            raise ValueError(f"cpf {CPF_IN_ERROR} rejected")

        with pytest.MonkeyPatch.context() as failing, pytest.raises(TerminalError) as failed:
            failing.setattr(pipelines.standard, "build_change_feed_pipeline", broken)
            run_product(settings, users)
        running = LineageEmitter.running
        fired: list[bool] = []

        def ctrl_c_at_first_beat(self: LineageEmitter, *args: Any, **kwargs: Any) -> Any:
            if not fired:
                fired.append(True)
                _thread.interrupt_main()  # what Ctrl-C does: SIGINT handled in the main thread
            return running(self, *args, **kwargs)

        patch.setattr(LineageEmitter, "running", ctrl_c_at_first_beat)
        with pytest.raises(KeyboardInterrupt) as aborted:
            run_product(settings, users, heartbeat_seconds=0.02)
    events = [json.loads(line) for line in settings.lineage_path.read_text(encoding="utf-8").splitlines()]
    yield Lineage(settings, demo, failed.value, aborted.value, events)


def output(event: dict[str, Any], name_suffix: str) -> dict[str, Any]:
    return next(o for o in event["outputs"] if o["name"].endswith(name_suffix))


def transformations(dataset: dict[str, Any], column: str) -> list[tuple[str, str, dict[str, Any]]]:
    fields = dataset["facets"]["columnLineage"]["fields"][column]["inputFields"]
    return [(i["name"], i["field"], t) for i in fields for t in i["transformations"]]


def test_every_event_and_every_facet_validates_against_the_official_schemas(lineage: Lineage) -> None:
    validate = spec_validator()
    assert {e["eventType"] for e in lineage.events} == {"START", "RUNNING", "COMPLETE", "FAIL", "ABORT"}
    schema_files = set()
    for event in lineage.events:
        validate(event)
        schema_files |= {f["_schemaURL"].split("#")[0].rsplit("/", 1)[1] for f in event_facets(event)}
    assert "DataContractDatasetFacet.json" in schema_files and "ColumnLineageDatasetFacet.json" in schema_files
    assert len(schema_files) >= 15


def test_each_run_starts_once_and_ends_once(lineage: Lineage) -> None:
    runs = lineage.runs()
    expected_jobs = {
        "customers.users.relay",
        "customers.users.pipeline",
        "payments.transactions.relay",
        "payments.transactions.pipeline",
        "risk.customer-exposure.pipeline",
    }
    assert {events[0]["job"]["name"] for events in runs.values()} == expected_jobs
    for run_id, events in runs.items():
        types = [e["eventType"] for e in events]
        assert types[0] == "START" and types[-1] in TERMINAL, run_id
        assert set(types[1:-1]) <= {"RUNNING"}, run_id
        assert len({e["job"]["name"] for e in events}) == 1
        times = [datetime.fromisoformat(e["eventTime"]) for e in events]
        assert times == sorted(times)
    for summary in lineage.demo.summaries:
        domain, product = summary.product.split("/")
        assert [e["eventType"] for e in runs[summary.run_id]][-1] == "COMPLETE"
        assert runs[summary.run_id][0]["job"]["name"] == f"{domain}.{product}.pipeline"


def test_the_heartbeat_sends_running_while_pipelines_run(lineage: Lineage) -> None:
    pipeline_runs = [s.run_id for s in lineage.demo.summaries]
    beats = [sum(e["eventType"] == "RUNNING" for e in lineage.runs()[r]) for r in pipeline_runs]
    assert sum(beats) >= len(pipeline_runs), beats  # 0.2 s beats over runs of about a second each


def test_a_failed_run_ends_with_fail_and_a_scrubbed_reason(lineage: Lineage) -> None:
    [fail] = [e for e in lineage.events if e["eventType"] == "FAIL"]
    message = fail["run"]["facets"]["errorMessage"]["message"]
    assert fail["job"]["name"] == "customers.users.pipeline"
    assert "ValueError" in message and "<number>" in message and CPF_IN_ERROR not in message


def test_ctrl_c_ends_the_run_with_abort_and_raises_keyboard_interrupt(lineage: Lineage) -> None:
    [abort] = [e for e in lineage.events if e["eventType"] == "ABORT"]
    events = lineage.runs()[abort["run"]["runId"]]
    types = [e["eventType"] for e in events]
    assert types[0] == "START" and "RUNNING" in types and "COMPLETE" not in types
    assert isinstance(lineage.aborted, KeyboardInterrupt)


def test_relay_runs_are_the_parents_of_the_pipeline_runs_they_feed(lineage: Lineage) -> None:
    for ref, relay_run in lineage.demo.relay_runs.items():
        domain, product = ref.split("/")
        summary = next(s for s in lineage.demo.summaries if s.product == ref)
        pipeline = lineage.final(f"{domain}.{product}.pipeline", summary.run_id)
        parent = pipeline["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == relay_run
        assert parent["job"] == {**parent["job"], "name": f"{domain}.{product}.relay", "namespace": "meshkit-dev"}
        relay = lineage.final(f"{domain}.{product}.relay", relay_run)
        [cosmos] = relay["inputs"]
        assert cosmos["namespace"] == "azurecosmos://fintech-app-br.documents.azure.com/dbs/app"
        assert cosmos["name"] == f"colls/{product}"  # the container is named like the product here
        [bus] = relay["outputs"]
        assert (bus["namespace"], bus["name"]) == (pipeline["inputs"][0]["namespace"], pipeline["inputs"][0]["name"])
        assert bus["outputFacets"]["outputStatistics"]["rowCount"] == lineage.demo.published[ref]


def test_column_lineage_shows_where_cpf_is_hashed(lineage: Lineage) -> None:
    summary = next(s for s in lineage.demo.summaries if s.product == "customers/users")
    event = lineage.final("customers.users.pipeline", summary.run_id)
    topic = event["inputs"][0]["name"]
    for table in ("users_current", "users_changelog", "meshkit-lake-curated/customers/users"):
        [(name, field, how)] = transformations(output(event, table), "cpf")
        assert (name, field) == (topic, "cpf")
        assert how["masking"] is True and how["description"] == "HASHED (HMAC-SHA256)"
    [(_, _, raw)] = transformations(output(event, "meshkit-lake-raw/customers/users"), "cpf")
    assert raw == {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}  # the raw zone keeps it as received
    relay = lineage.final("customers.users.relay", lineage.demo.relay_runs["customers/users"])
    [(source, field, _)] = transformations(relay["outputs"][0], "cpf")
    assert (source, field) == ("colls/users", "cpf")


def test_refined_columns_name_their_sources(lineage: Lineage) -> None:
    event = lineage.final("risk.customer-exposure.pipeline")
    current = output(event, "risk.customer_exposure_current")
    total = transformations(current, "settled_debit_total")
    assert {(n, f) for n, f, _ in total} == {
        ("payments.transactions_current", "amount"),
        ("payments.transactions_current", "status"),
        ("payments.transactions_current", "direction"),
    }
    assert {t["subtype"] for *_, t in total} == {"AGGREGATION"}
    assert transformations(current, "segment")[0][:2] == ("customers.users_current", "segment")
    inputs = {i["name"]: i for i in event["inputs"]}
    assert set(inputs) == {"customers.users_current", "payments.transactions_current"}
    link = inputs["customers.users_current"]["facets"]["symlinks"]["identifiers"][0]
    assert link == {"namespace": "odcs", "name": "urn:meshkit:contract:customers:users", "type": "DATA_CONTRACT"}


def test_figures_and_checks_match_what_the_run_did(lineage: Lineage) -> None:
    for summary in lineage.demo.summaries:
        domain, product = summary.product.split("/")
        event = lineage.final(f"{domain}.{product}.pipeline", summary.run_id)
        current = output(event, "_current")
        assert current["outputFacets"]["outputStatistics"]["rowCount"] == summary.rows_written["current"]
        assert current["facets"]["dataQualityMetrics"]["rowCount"] == summary.rows_written["current"]
        assertions = current["facets"]["dataQualityAssertions"]["assertions"]
        assert assertions and all(a["success"] for a in assertions)
        assert {"has_rows", "user_id_unique"} <= {a["name"] for a in assertions} or product != "users"
        contract = current["facets"]["dataContract"]
        assert contract["checksPassed"] is True and contract["blocking"] is (domain != "risk")
        dead = output(event, "_dead_letters")
        assert dead["outputFacets"]["outputStatistics"]["rowCount"] == summary.dead_letters
        if domain == "risk":
            continue
        source = event["inputs"][0]["inputFacets"]
        assert source["dataQualityMetrics"]["rowCount"] == summary.events_in
        conformance = source["dataQualityAssertions"]["assertions"][-1]
        assert conformance["actual"] == str(summary.dead_letters) and conformance["success"] is False
        curated = output(event, f"meshkit-lake-curated/{domain}/{product}")
        stats = curated["outputFacets"]["outputStatistics"]
        assert stats["rowCount"] == summary.rows_written["curated"] and stats["size"] > 0 and stats["fileCount"] >= 1
        assert set(curated["facets"]["dataQualityMetrics"]["columnMetrics"]) == {
            f["name"] for f in curated["facets"]["schema"]["fields"]
        }


def test_engine_code_and_owners_are_on_every_pipeline_event(lineage: Lineage) -> None:
    for event in (e for e in lineage.events if e["job"]["name"].endswith(".pipeline")):
        engine = event["run"]["facets"]["processing_engine"]
        assert (engine["name"], engine["version"]) == ("Apache Beam", apache_beam.__version__)
        assert event["run"]["facets"]["executionParameters"]["parameters"][0]["key"] == "runner"
        job = event["job"]["facets"]
        assert job["jobType"] == {**job["jobType"], "integration": "MESHKIT", "processingType": "BATCH"}
        assert job["sourceCodeLocation"]["url"].endswith("/pipeline.py")
        assert job["ownership"]["owners"] and job["documentation"]["description"]


def test_no_personal_value_appears_in_any_event(lineage: Lineage) -> None:
    personal = set().union(*(feed.personal_values for feed in lineage.demo.feeds.values()))
    assert len(personal) > 50
    text = lineage.settings.lineage_path.read_text(encoding="utf-8")
    assert [v for v in personal if v in text] == []
    assert CPF_IN_ERROR not in text
    assert '"validValues"' not in text and '"examples"' not in text and '"pattern"' not in text
