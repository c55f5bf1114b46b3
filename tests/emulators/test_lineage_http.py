"""Lineage over HTTP against a Marquez-compatible receiver started by the test (POST /api/v1/lineage -> 201).

When the backend is down, answers 5xx or refuses an event, the run goes on: events wait in the spool and
reach the backend, in order and exactly once, on the next emit or run; refused events go to rejected.ndjson.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from meshkit.config import Settings
from monitoring.lineage.transports import DeliveryPolicy, SpoolingTransport, client_for

pytestmark = pytest.mark.emulator
LOGGER = "monitoring.lineage.transports"


class LineageReceiver:
    """A Marquez-compatible lineage endpoint on 127.0.0.1 that can be told to fail or be stopped."""

    def __init__(self) -> None:
        self.port = 0
        self.status = 201
        self.received: list[bytes] = []  # bodies answered with 2xx, in arrival order
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status if self.path == "/api/v1/lineage" else 404
                if status < 300:
                    receiver.received.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def job_names(self) -> list[str]:
        return [json.loads(body)["job"]["name"] for body in self.received]


@pytest.fixture
def receiver() -> Iterator[LineageReceiver]:
    server = LineageReceiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A throwaway workspace; no OpenLineage configuration from the real environment, home or cwd."""
    before = {k for k in os.environ if k.startswith("OPENLINEAGE")}
    for key in before:
        monkeypatch.delenv(key)
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    yield Settings(root=tmp_path, workspace=tmp_path / "ws")
    for key in [k for k in os.environ if k.startswith("OPENLINEAGE") and k not in before]:
        del os.environ[key]  # openlineage-python aliases OPENLINEAGE_URL into more variables


def event(name: str) -> RunEvent:
    return RunEvent(
        eventType=RunState.START,
        eventTime="2024-05-01T10:00:00+00:00",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="meshkit-test", name=name),
        producer="urn:meshkit:test",
    )


def spooled_names(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(x)["job"]["name"] for x in path.read_text(encoding="utf-8").splitlines()]


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "did not accept events" in r.getMessage()]


def test_openlineage_url_sends_each_event_once(
    settings: Settings, receiver: LineageReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    client = client_for(settings)
    sent = event("a")
    client.emit(sent)
    client.close()
    assert receiver.received == [Serde.to_json(sent).encode("utf-8")]
    assert not settings.lineage_path.exists()


def test_openlineage_yml_selects_http(settings: Settings, receiver: LineageReceiver) -> None:
    Path("openlineage.yml").write_text(f"transport:\n  type: http\n  url: {receiver.url}\n", encoding="utf-8")
    client_for(settings).emit(event("a"))
    assert receiver.job_names() == ["a"]


def test_backend_down_then_back_every_event_arrives_once_in_order(
    settings: Settings, receiver: LineageReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://marquez:s3cret@127.0.0.1:{receiver.port}")
    spool = settings.workspace_dir / "lineage" / "spool.ndjson"
    receiver.stop()
    first_run = client_for(settings)  # default policy: bounded, the run must not hang
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for name in ("a", "b", "c"):
            first_run.emit(event(name))  # does not raise
    assert time.monotonic() - started < 5
    assert spooled_names(spool) == ["a", "b", "c"]
    [warning] = outage_warnings(caplog)
    assert f"http://127.0.0.1:{receiver.port}/api/v1/lineage" in warning and str(spool) in warning
    assert "s3cret" not in caplog.text

    spooled = spool.read_bytes().splitlines()
    receiver.start()  # same port
    second_run = client_for(settings)  # re-sends the spool before the run emits anything
    assert receiver.received == spooled  # byte for byte what was spooled, oldest first
    second_run.emit(event("d"))
    assert receiver.job_names() == ["a", "b", "c", "d"]
    assert not spool.exists()


@pytest.mark.parametrize("status", [503, 500, 429])
def test_retryable_answers_are_spooled_and_sent_before_the_next_event(
    settings: Settings, receiver: LineageReceiver, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    client = client_for(settings, DeliveryPolicy(attempts=2, backoff_s=0.01, cooldown_s=0))
    receiver.status = status
    client.emit(event("a"))
    assert receiver.received == []
    receiver.status = 201
    client.emit(event("b"))
    assert receiver.job_names() == ["a", "b"]
    assert not (settings.workspace_dir / "lineage" / "spool.ndjson").exists()


def test_a_refused_event_goes_to_rejected_and_is_not_resent(
    settings: Settings, receiver: LineageReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    client = client_for(settings)
    receiver.status = 400
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        client.emit(event("malformed"))
    assert "refused an event (HTTPError (HTTP 400))" in caplog.text
    receiver.status = 201
    client.emit(event("fine"))
    client_for(settings).emit(event("next-run"))
    assert receiver.job_names() == ["fine", "next-run"]
    lineage = settings.workspace_dir / "lineage"
    [record] = [json.loads(x) for x in (lineage / "rejected.ndjson").read_text(encoding="utf-8").splitlines()]
    assert record["status"] == 400 and record["event"]["job"]["name"] == "malformed"
    assert not (lineage / "spool.ndjson").exists()


def test_composite_writes_the_file_and_spools_only_the_http_part(
    settings: Settings, receiver: LineageReceiver, tmp_path: Path
) -> None:
    local = tmp_path / "local" / "events.ndjson"
    Path("openlineage.yml").write_text(
        "transport:\n  type: composite\n  transports:\n"
        f"    local:\n      type: file\n      log_file_path: {local}\n      append: true\n"
        f"    marquez:\n      type: http\n      url: {receiver.url}\n",
        encoding="utf-8",
    )
    lineage = settings.workspace_dir / "lineage"
    receiver.stop()
    client_for(settings).emit(event("a"))
    assert spooled_names(local) == ["a"]
    assert spooled_names(lineage / "spool-marquez.ndjson") == ["a"]
    assert sorted(p.name for p in lineage.glob("*.ndjson")) == ["spool-marquez.ndjson"]

    receiver.start()
    client = client_for(settings)
    assert isinstance(client.transport.transports[1], SpoolingTransport)  # type: ignore[attr-defined]
    client.emit(event("b"))
    assert receiver.job_names() == ["a", "b"]
    assert spooled_names(local) == ["a", "b"]  # the file got each event once
    assert not (lineage / "spool-marquez.ndjson").exists()


def test_an_event_acknowledged_just_before_a_crash_is_not_sent_again(
    settings: Settings, receiver: LineageReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    receiver.stop()
    client = client_for(settings)
    client.emit(event("a"))
    client.emit(event("b"))
    spooler = client.transport
    assert isinstance(spooler, SpoolingTransport)
    first_line = spooler.spool.pending()[0]
    receiver.start()
    spooler.inner.emit(json.loads(first_line))  # the backend acknowledges "a" ...
    spooler.spool.mark_sent(first_line)  # ... the sent-ledger records it, and the process dies here
    client_for(settings)
    assert receiver.job_names() == ["a", "b"]
