"""The lineage emitter writes valid OpenLineage run events, one JSON object per line, and no values."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.transport.file import FileTransport
from openlineage_spec import event_facets, spec_validator

from meshkit.config import Settings, load_settings
from meshkit.errors import ConfigError, TerminalError
from meshkit.products.discovery import find_product
from monitoring.lineage import naming
from monitoring.lineage.emitter import LineageEmitter, file_transport_config, job_name, scrub_error
from monitoring.lineage.run import Heartbeat, LineageRun

REPO = Path(__file__).resolve().parents[2]
# copies of the official OpenLineage schemas (tests/fixtures/openlineage/README.md says where from)
CPF_EXAMPLE = "52998224725"
NAME_EXAMPLE = "Maria Exemplo da Silva"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A copy of domains/ whose users contract carries example values, and a tmp workspace."""
    for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray openlineage.yml in the working directory
    root = tmp_path / "root"
    shutil.copytree(REPO / "domains", root / "domains")
    contract = root / "domains" / "customers" / "users" / "datacontract.yaml"
    text = contract.read_text(encoding="utf-8")
    text = text.replace("      - name: cpf\n", f"      - name: cpf\n        examples: ['{CPF_EXAMPLE}']\n")
    text = text.replace("      - name: full_name\n", f"      - name: full_name\n        examples: ['{NAME_EXAMPLE}']\n")
    contract.write_text(text, encoding="utf-8")
    return load_settings(root, overrides={"workspace": str(tmp_path / "ws")}, environ={})


def _events(settings: Settings) -> list[dict[str, Any]]:
    lines = settings.lineage_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _run(settings: Settings, ref: str = "customers/users", parent: tuple[str, str] | None = None) -> str:
    product = find_product(settings.domains_dir, ref)
    emitter = LineageEmitter.from_settings(settings)
    run_id = str(uuid.uuid4())
    inputs = {"app-users-change-feed": naming.eventlog_dataset(settings.eventlog_dir, "customers.users")}
    outputs = {
        "changelog": naming.warehouse_dataset(settings.warehouse_path, "customers", "users_changelog"),
        "curated": naming.lake_zone_dataset(settings.lake_dir, settings.bucket("curated"), "customers", "users"),
    }
    emitter.start(product, "pipeline", run_id, inputs=inputs, outputs=outputs, parent=parent)
    emitter.complete(
        product,
        "pipeline",
        run_id,
        inputs=inputs,
        outputs=outputs,
        output_rows={"changelog": 95, "curated": 95},
        input_rows={"app-users-change-feed": 100},
        parent=parent,
    )
    emitter.close()
    return run_id


def test_events_are_ndjson_start_then_complete_with_one_run_id(settings: Settings) -> None:
    run_id = _run(settings)
    raw = settings.lineage_path.read_text(encoding="utf-8")
    assert raw.endswith("\n") and raw.count("\n") == 2  # exactly one line per event
    start, complete = _events(settings)
    assert [start["eventType"], complete["eventType"]] == ["START", "COMPLETE"]
    assert start["run"]["runId"] == complete["run"]["runId"] == run_id
    for event in (start, complete):
        assert event["job"] == {**event["job"], "namespace": "meshkit-dev", "name": "customers.users.pipeline"}
        for key in ("eventTime", "producer", "schemaURL"):
            assert event[key]
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 95
    assert complete["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"] == 100


def test_events_append_across_emitters(settings: Settings) -> None:
    _run(settings)
    _run(settings)
    assert len(_events(settings)) == 4


def test_schema_ownership_and_documentation_come_from_the_contract(settings: Settings) -> None:
    _run(settings)
    contract = find_product(settings.domains_dir, "customers/users").contract
    event = _events(settings)[1]
    for output in event["outputs"]:
        fields = output["facets"]["schema"]["fields"]
        assert [f["name"] for f in fields] == [c.name for c in contract.columns]
        assert [f["type"] for f in fields] == [c.logical_type for c in contract.columns]
        assert fields[0]["description"] == contract.columns[0].description
    job = event["job"]["facets"]
    assert {"name": "user:ana.souza@fintech.example", "type": "owner"} in job["ownership"]["owners"]
    assert job["documentation"]["description"].startswith("Every customer of the app")
    assert job["jobType"]["processingType"] == "BATCH"


def test_no_personal_values_in_events(settings: Settings) -> None:
    _run(settings)
    text = settings.lineage_path.read_text(encoding="utf-8")
    assert CPF_EXAMPLE not in text
    assert NAME_EXAMPLE not in text
    assert "examples" not in text
    assert "validValues" not in text and "pattern" not in text


def test_dataset_names_follow_the_naming_spec(settings: Settings) -> None:
    _run(settings)
    event = _events(settings)[0]
    changelog, curated = event["outputs"]
    assert changelog["namespace"] == "duckdb://warehouse.duckdb"
    assert changelog["name"] == "customers.users_changelog"
    assert curated["namespace"] == "file"
    assert curated["name"] == str((settings.lake_dir / "meshkit-lake-curated" / "customers" / "users").resolve())
    assert event["inputs"][0]["namespace"] == "file"


def test_refined_input_carries_the_upstream_schema_and_parent(settings: Settings) -> None:
    product = find_product(settings.domains_dir, "risk/customer-exposure")
    parent = ("meshkit.demo", str(uuid.uuid4()))
    emitter = LineageEmitter.from_settings(settings)
    inputs = {"users": naming.warehouse_dataset(settings.warehouse_path, "customers", "users_current")}
    outputs = {"current": naming.warehouse_dataset(settings.warehouse_path, "risk", "customer_exposure_current")}
    emitter.start(product, "pipeline", str(uuid.uuid4()), inputs=inputs, outputs=outputs, parent=parent)
    event = _events(settings)[0]
    users_contract = find_product(settings.domains_dir, "customers/users").contract
    names = [f["name"] for f in event["inputs"][0]["facets"]["schema"]["fields"]]
    assert names == [c.name for c in users_contract.columns]
    assert event["run"]["facets"]["parent"]["run"]["runId"] == parent[1]
    parent_job = event["run"]["facets"]["parent"]["job"]
    assert (parent_job["namespace"], parent_job["name"]) == ("meshkit-dev", "meshkit.demo")


def test_fail_records_a_scrubbed_reason(settings: Settings) -> None:
    product = find_product(settings.domains_dir, "customers/users")
    emitter = LineageEmitter.from_settings(settings)
    error = f"cpf {CPF_EXAMPLE} of ana@example.com rejected; AccountKey=abc123==\nTraceback (most recent call last)"
    emitter.fail(product, "pipeline", str(uuid.uuid4()), inputs={}, outputs={}, error=error)
    event = _events(settings)[0]
    message = event["run"]["facets"]["errorMessage"]["message"]
    assert event["eventType"] == "FAIL"
    assert CPF_EXAMPLE not in message and "ana@example.com" not in message and "abc123" not in message
    assert "Traceback" not in message
    assert message.startswith("cpf <number> of <email> rejected")


def test_events_validate_against_the_openlineage_spec(settings: Settings) -> None:
    validate = spec_validator()
    _run(settings, parent=("meshkit.demo", str(uuid.uuid4())))
    product = find_product(settings.domains_dir, "customers/users")
    emitter = LineageEmitter.from_settings(settings)
    emitter.fail(product, "pipeline", str(uuid.uuid4()), inputs={}, outputs={}, error="boom")
    emitter.abort(product, "pipeline", str(uuid.uuid4()), inputs={}, outputs={})
    events = _events(settings)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "FAIL", "ABORT"]
    for event in events:
        assert event_facets(event)
        validate(event)


def test_the_validator_rejects_a_broken_event_and_a_broken_facet(settings: Settings) -> None:
    validate = spec_validator()
    _run(settings)
    event = _events(settings)[1]
    validate(event)
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        validate({**event, "eventType": "FINISHED"})
    broken = json.loads(json.dumps(event))
    broken["outputs"][0]["facets"]["dataContract"]["blocking"] = "yes"
    with pytest.raises(ValidationError):
        validate(broken)
    broken = json.loads(json.dumps(event))
    del broken["outputs"][0]["facets"]["columnLineage"]["fields"]["cpf"]["inputFields"][0]["field"]
    with pytest.raises(ValidationError):
        validate(broken)


def _lineage_run(settings: Settings, interval: float = 60.0) -> LineageRun:
    product = find_product(settings.domains_dir, "customers/users")
    inputs = {"app-users-change-feed": naming.eventlog_dataset(settings.eventlog_dir, "customers.users")}
    outputs = {"current": naming.warehouse_dataset(settings.warehouse_path, "customers", "users_current")}
    emitter = LineageEmitter.from_settings(settings)
    return LineageRun(emitter, product, "pipeline", inputs=inputs, outputs=outputs, heartbeat_seconds=interval)


def test_a_lineage_run_sends_running_while_it_lasts_then_complete(settings: Settings) -> None:
    with _lineage_run(settings, interval=0.02) as run:
        deadline = time.monotonic() + 5
        while run.heartbeat.beats < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    types = [e["eventType"] for e in _events(settings)]
    assert types[0] == "START" and types[-1] == "COMPLETE"
    assert set(types[1:-1]) == {"RUNNING"} and len(types) >= 4
    assert {e["run"]["runId"] for e in _events(settings)} == {run.run_id}


def test_ctrl_c_ends_a_run_as_abort_even_when_wrapped(settings: Settings) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set from the main thread")
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), _lineage_run(settings):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler raises before this ends
    with pytest.raises(KeyboardInterrupt) as raised, _lineage_run(settings):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt as exc:  # what Beam does to a Ctrl-C inside a DoFn
            raise RuntimeError("KeyboardInterrupt [while running 'Map']") from exc
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert [e["eventType"] for e in _events(settings)] == ["START", "ABORT", "START", "ABORT"]
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back


def test_an_error_ends_a_run_as_fail_with_a_scrubbed_reason(settings: Settings) -> None:
    with pytest.raises(TerminalError), _lineage_run(settings):
        raise TerminalError(f"cpf {CPF_EXAMPLE} rejected")
    with pytest.raises(ValueError, match="boom"), _lineage_run(settings):
        raise ValueError("boom")
    start, fail, _, fail2 = _events(settings)
    assert (start["eventType"], fail["eventType"], fail2["eventType"]) == ("START", "FAIL", "FAIL")
    assert fail["run"]["facets"]["errorMessage"]["message"] == "cpf <number> rejected"
    assert fail2["run"]["facets"]["errorMessage"]["message"] == "ValueError: boom"


def test_heartbeat_keeps_beating_after_a_failed_beat() -> None:
    calls: list[int] = []

    def beat() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("backend down")

    with Heartbeat(beat, interval=0.01) as heartbeat:
        deadline = time.monotonic() + 5
        while heartbeat.beats < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert heartbeat.beats >= 2 and len(calls) >= 3
    with pytest.raises(ConfigError):
        Heartbeat(beat, interval=0)


def test_transport_comes_from_openlineages_factory(settings: Settings) -> None:
    emitter = LineageEmitter.from_settings(settings)
    transport = emitter.client.transport
    assert isinstance(transport, FileTransport)
    assert transport.config.append is True
    assert file_transport_config(settings.lineage_path)["log_file_path"] == str(settings.lineage_path)
    assert LineageEmitter("ns", {"type": "noop"}).client.transport.kind == "noop"
    with pytest.raises(ConfigError, match="no `type`"):
        LineageEmitter("ns", {})


def test_job_name_and_stage_validation(settings: Settings) -> None:
    product = find_product(settings.domains_dir, "risk/customer-exposure")
    assert job_name(product, "pipeline") == "risk.customer-exposure.pipeline"
    with pytest.raises(ConfigError):
        job_name(product, "Bad Stage")


def test_scrub_error_keeps_the_reason() -> None:
    assert scrub_error("decode failed: missing field 'id'") == "decode failed: missing field 'id'"
    assert scrub_error("password=hunter2 rejected") == "password=<redacted> rejected"
    assert scrub_error("") == "unknown error"


def test_cloud_names_follow_the_naming_spec() -> None:
    cosmos = naming.cosmos_dataset("fintech-app-br", "app", "users")
    assert (cosmos.namespace, cosmos.name) == (
        "azurecosmos://fintech-app-br.documents.azure.com/dbs/app",
        "colls/users",
    )
    hub = naming.eventhubs_dataset("mesh-bus", "customers.users")
    assert (hub.namespace, hub.name) == ("kafka://mesh-bus.servicebus.windows.net:9093", "customers.users")
    gcs = naming.gcs_dataset("meshkit-lake-curated", "/customers/users/")
    assert (gcs.namespace, gcs.name) == ("gs://meshkit-lake-curated", "customers/users")
    bq = naming.bigquery_dataset("fintech-lake-prod", "customers", "users_current")
    assert (bq.namespace, bq.name) == ("bigquery", "fintech-lake-prod.customers.users_current")
    with pytest.raises(ConfigError, match="account"):
        naming.cosmos_dataset("", "app", "users")
