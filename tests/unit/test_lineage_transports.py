"""Transport resolution: the NDJSON file by default, the user's OpenLineage configuration when there is one,
a ConfigError (never the console) when it cannot be built; and the spool's on-disk guarantees."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.transport.http import HttpTransport

from meshkit.config import Settings
from meshkit.errors import ConfigError
from monitoring.lineage.spool import LineageSpool
from monitoring.lineage.transports import SpoolingTransport, client_for


@pytest.fixture
def ol_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No OpenLineage configuration from the user's real environment, home or working directory.

    openlineage-python copies OPENLINEAGE_URL into OPENLINEAGE__TRANSPORT__TRANSPORTS__DEFAULT_HTTP__*
    behind monkeypatch's back, so every OPENLINEAGE* variable is removed again afterwards.
    """
    before = {k: v for k, v in os.environ.items() if k.startswith("OPENLINEAGE")}
    for key in before:
        monkeypatch.delenv(key)
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    yield tmp_path / "cwd"
    for key in [k for k in os.environ if k.startswith("OPENLINEAGE") and k not in before]:
        del os.environ[key]


@pytest.fixture
def settings(tmp_path: Path, ol_env: Path) -> Settings:
    return Settings(root=tmp_path, workspace=tmp_path / "ws")


def event(i: int) -> RunEvent:
    return RunEvent(
        eventType=RunState.START,
        eventTime=f"2024-05-01T10:00:{i:02d}+00:00",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="meshkit-test", name=f"customers.users.step{i}"),
        producer="urn:meshkit:test",
    )


def test_default_appends_ndjson_to_the_lineage_path(settings: Settings) -> None:
    client = client_for(settings)
    assert client.transport.kind == "file"
    client.emit(event(1))
    client.emit(event(2))
    lines = settings.lineage_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["job"]["name"] for x in lines] == ["customers.users.step1", "customers.users.step2"]
    assert all("environmentVariables" not in json.loads(x)["run"].get("facets", {}) for x in lines)
    assert not (settings.workspace_dir / "lineage" / "spool.ndjson").exists()


def test_openlineage_url_selects_http_behind_a_spool(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", "http://alice:s3cret@127.0.0.1:9")
    client = client_for(settings)
    assert isinstance(client.transport, SpoolingTransport)
    assert isinstance(client.transport.inner, HttpTransport)
    assert client.transport.backend == "http://127.0.0.1:9/api/v1/lineage"  # no credentials in logs
    assert client.transport.spool.path == settings.workspace_dir / "lineage" / "spool.ndjson"


@pytest.mark.parametrize("where", ["cwd", "OPENLINEAGE_CONFIG", "home"])
def test_openlineage_yml_is_found_where_openlineage_looks(
    settings: Settings, ol_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    text = "transport:\n  type: http\n  url: http://127.0.0.1:9\n"
    if where == "cwd":
        (ol_env / "openlineage.yml").write_text(text, encoding="utf-8")
    elif where == "home":
        (tmp_path / "home" / ".openlineage").mkdir()
        (tmp_path / "home" / ".openlineage" / "openlineage.yml").write_text(text, encoding="utf-8")
    else:
        (tmp_path / "elsewhere.yml").write_text(text, encoding="utf-8")
        monkeypatch.setenv("OPENLINEAGE_CONFIG", str(tmp_path / "elsewhere.yml"))
    transport = client_for(settings).transport
    assert isinstance(transport, SpoolingTransport)
    assert transport.backend == "http://127.0.0.1:9/api/v1/lineage"


def test_console_when_asked_for_is_used_and_not_spooled(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "console")
    assert client_for(settings).transport.kind == "console"


def test_disabled_is_an_announced_noop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    with caplog.at_level(logging.WARNING, logger="monitoring.lineage.transports"):
        client = client_for(settings)
        client_for(settings)
    assert client.transport.kind == "noop"
    assert sum("no lineage events are emitted" in r.getMessage() for r in caplog.records) <= 1
    client.emit(event(1))
    assert not settings.lineage_path.exists()


def test_unknown_type_in_yaml_names_the_key_and_valid_values(settings: Settings, ol_env: Path) -> None:
    (ol_env / "openlineage.yml").write_text("transport:\n  type: htp\n  url: http://x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        client_for(settings)
    message = str(err.value)
    assert "'htp'" in message and "`transport.type`" in message and "openlineage.yml" in message
    for valid in ("file", "http", "console", "composite", "kafka"):
        assert valid in message


def test_unknown_type_in_environment_names_the_variable(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "bogus")
    with pytest.raises(ConfigError, match="OPENLINEAGE__TRANSPORT__TYPE"):
        client_for(settings)


def test_unknown_composite_child_is_named(settings: Settings, ol_env: Path) -> None:
    (ol_env / "openlineage.yml").write_text(
        "transport:\n  type: composite\n  transports:\n    lake:\n      type: fiel\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"'fiel' at `transport\.transports\.lake\.type`"):
        client_for(settings)


def test_http_without_url_is_a_config_error(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    with pytest.raises(ConfigError, match="url"):
        client_for(settings)


def test_transport_without_type_is_a_config_error(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="no `type`"):
        client_for(settings)


def test_broken_yaml_is_an_error_not_the_default(settings: Settings, ol_env: Path) -> None:
    (ol_env / "openlineage.yml").write_text("transport:\n  type: http\n  url: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"openlineage\.yml:\d"):
        client_for(settings)


def test_a_torn_last_line_is_set_aside_and_later_lines_stay_readable(tmp_path: Path) -> None:
    spool = LineageSpool(tmp_path)
    spool.append('{"n": 1}')
    with spool.path.open("a", encoding="utf-8") as handle:
        handle.write('{"n": 2, "tor')  # a crash mid-write
    spool.append('{"n": 3}')
    assert [json.loads(x)["n"] for x in spool.pending()] == [1, 3]
    rejected = [json.loads(x) for x in spool.rejected_path.read_text(encoding="utf-8").splitlines()]
    assert rejected[0]["event"] == '{"n": 2, "tor' and "torn" in rejected[0]["reason"]


def test_acknowledged_lines_are_dropped_even_if_the_rewrite_never_happened(tmp_path: Path) -> None:
    spool = LineageSpool(tmp_path)
    for n in (1, 2, 3):
        spool.append(json.dumps({"n": n}))
    spool.mark_sent(json.dumps({"n": 1}))  # acknowledged, then the process died before the rewrite
    assert [json.loads(x)["n"] for x in LineageSpool(tmp_path).pending()] == [2, 3]
    assert [json.loads(x)["n"] for x in spool.path.read_text(encoding="utf-8").splitlines()] == [2, 3]


def test_spool_names_come_from_transport_names_only(tmp_path: Path) -> None:
    assert LineageSpool(tmp_path, "marquez/prod:1").path.name == "spool-marquez_prod_1.ndjson"
    assert LineageSpool(tmp_path).rejected_path.name == "rejected.ndjson"


def test_errors_do_not_repeat_credentials(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", "alice:s3cret@no-scheme")
    with pytest.raises(ConfigError) as err:
        client_for(settings)
    assert "s3cret" not in str(err.value) and "valid url" in str(err.value)


def test_a_spool_left_by_a_removed_backend_is_announced(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    spool = LineageSpool(settings.workspace_dir / "lineage")
    spool.append(json.dumps({"n": 1}))
    with caplog.at_level(logging.WARNING, logger="monitoring.lineage.transports"):
        assert client_for(settings).transport.kind == "file"
    assert str(spool.path) in caplog.text and "no longer configured" in caplog.text
