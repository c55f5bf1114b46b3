"""The Kafka transport (Event Hubs' Kafka surface) against a real Kafka-protocol broker (Tansu).

Also: the configuration Event Hubs needs (SASL_SSL PLAIN with `$ConnectionString`, or OAUTHBEARER in
the cloud profile) and the factory that picks the transport from settings.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import ROOT

from meshkit.config import load_settings
from meshkit.errors import ConfigError, TransientError
from meshkit.secrets import EVENTHUBS_CONNECTION_STRING_ENV
from pipelines.transports.base import EventRecord, EventTransport
from pipelines.transports.factory import TransportSpec, open_transport, transport_spec
from pipelines.transports.kafka import AzureTokenCallback, kafka_config
from pipelines.transports.local_log import LocalEventLog

if TYPE_CHECKING:
    from kafka_service import KafkaBroker

pytestmark = pytest.mark.emulator
pytest_plugins = ("kafka_service",)  # the session broker fixture `kafka_broker`


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def _events(n: int, keys: int, seed: int) -> list[tuple[str, bytes, dict[str, str]]]:
    rng = random.Random(seed)
    seq: dict[str, int] = {}
    out = []
    for _ in range(n):
        key = f"user-{rng.randrange(keys)}"
        seq[key] = seq.get(key, 0) + 1
        out.append(
            (key, json.dumps({"id": key, "_lsn": seq[key]}).encode(), {"source": "cosmos", "lsn": str(seq[key])})
        )
    return out


def _read_all(transport: EventTransport) -> list[EventRecord]:
    ends = transport.end_offsets()
    return [r for p, e in ends.items() for batch in transport.read(p, 0, e, max_batch=100) for r in batch]


def test_publish_then_read_round_trip_keeps_properties_keys_and_bodies(kafka_broker: KafkaBroker) -> None:
    events = _events(500, 40, seed=1)
    with closing(open_transport(kafka_broker.spec(_topic(), 4))) as transport:
        placed = transport.publish(events)
        assert len(placed) == len(events)
        records = _read_all(transport)
    assert len(records) == len(events)
    by_place = {(r.partition, r.offset): r for r in records}
    for (key, body, props), place in zip(events, placed, strict=True):
        record = by_place[place]
        assert (record.key, record.body, record.properties) == (key, body, props)
        assert abs(record.timestamp_ms - time.time() * 1000) < 60_000  # enqueued time, epoch ms


def test_per_key_order_is_kept_across_partitions(kafka_broker: KafkaBroker) -> None:
    events = _events(3000, 97, seed=7)
    with closing(open_transport(kafka_broker.spec(_topic(), 6))) as transport:
        for chunk in range(0, len(events), 700):  # several publish calls, like a relay
            transport.publish(events[chunk : chunk + 700])
        records = _read_all(transport)
    partitions_of: dict[str, set[int]] = {}
    seen: dict[str, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        partitions_of.setdefault(r.key, set()).add(r.partition)
        seen.setdefault(r.key, []).append(int(r.properties["lsn"]))
    assert all(len(p) == 1 for p in partitions_of.values()), "a key spread over partitions"
    assert len({p for ps in partitions_of.values() for p in ps}) == 6
    assert all(lsns == list(range(1, len(lsns) + 1)) for lsns in seen.values())


def test_same_key_goes_to_the_same_partition_in_another_process(kafka_broker: KafkaBroker) -> None:
    topic = _topic()
    keys = [f"k-{i}" for i in range(200)]
    with closing(open_transport(kafka_broker.spec(topic, 8))) as transport:
        here = [p for p, _ in transport.publish([(k, b"{}", {}) for k in keys])]
    script = (
        "import json, sys\n"
        "from pipelines.transports.factory import TransportSpec, open_transport\n"
        "spec = TransportSpec('kafka', sys.argv[1], 8, (('bootstrap', sys.argv[2]),))\n"
        "with open_transport(spec) as t:\n"
        "    print(json.dumps([p for p, _ in t.publish([(k, b'{}', {}) for k in json.loads(sys.argv[3])])]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, topic, kafka_broker.bootstrap, json.dumps(keys)],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert len(set(here)) == 8


def test_commit_and_committed_per_group(kafka_broker: KafkaBroker) -> None:
    topic = _topic()
    with closing(open_transport(kafka_broker.spec(topic, 3))) as transport:
        transport.publish(_events(90, 30, seed=3))
        ends = transport.end_offsets()
        assert transport.committed("pipeline") == {0: 0, 1: 0, 2: 0}
        transport.commit("pipeline", {0: ends[0], 2: 1})
        assert transport.committed("pipeline") == {0: ends[0], 1: 0, 2: 1}
        assert transport.committed("other") == {0: 0, 1: 0, 2: 0}
        with pytest.raises(ValueError, match="valid offsets are"):
            transport.commit("pipeline", {1: ends[1] + 5})
    with closing(open_transport(kafka_broker.spec(topic, 3))) as reopened:
        assert reopened.committed("pipeline") == {0: ends[0], 1: 0, 2: 1}


def test_end_offsets_are_the_next_offsets_to_write(kafka_broker: KafkaBroker) -> None:
    with closing(open_transport(kafka_broker.spec(_topic(), 4))) as transport:
        assert transport.end_offsets() == {0: 0, 1: 0, 2: 0, 3: 0}
        placed = transport.publish(_events(200, 50, seed=4))
        expected = dict.fromkeys(range(4), 0)
        for partition, offset in placed:
            expected[partition] = max(expected[partition], offset + 1)
        assert transport.end_offsets() == expected
        assert sum(expected.values()) == 200
        # a sub-range reads exactly its offsets
        p = max(expected, key=lambda k: expected[k])
        middle = [r.offset for b in transport.read(p, 3, expected[p] - 2, max_batch=7) for r in b]
        assert middle == list(range(3, expected[p] - 2))


def test_a_topic_with_another_partition_count_is_refused(kafka_broker: KafkaBroker) -> None:
    topic = _topic()
    open_transport(kafka_broker.spec(topic, 4)).close()
    with pytest.raises(ConfigError, match="has 4 partitions, but was opened with 8") as info:
        open_transport(kafka_broker.spec(topic, 8))
    assert "per-key order" in (info.value.hint or "")


def test_a_failed_delivery_raises_a_transient_error_naming_the_topic() -> None:
    from kafka_service import running_broker  # a broker of its own: this test stops it

    with running_broker() as broker:
        topic = _topic()
        spec = TransportSpec(
            "kafka", topic, 2,
            (("bootstrap", broker.bootstrap), ("kafka.message.timeout.ms", "1500"), ("publish_attempts", "2")),
        )  # fmt: skip
        transport = open_transport(spec)
        try:
            assert len(transport.publish(_events(10, 5, seed=5))) == 10
            broker.stop()
            started = time.monotonic()
            with pytest.raises(TransientError, match=f"topic '{topic}'.*not delivered after 2 attempts"):
                transport.publish(_events(10, 5, seed=6))
            assert time.monotonic() - started < 20
        finally:
            transport.close()


def test_eventhubs_security_uses_sasl_ssl_plain_with_the_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Endpoint=sb://mesh.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc="
    monkeypatch.setenv(EVENTHUBS_CONNECTION_STRING_ENV, secret)
    config = kafka_config(None, "eventhubs", namespace="mesh.servicebus.windows.net", profile="emulators")
    assert config["bootstrap.servers"] == "mesh.servicebus.windows.net:9093"
    assert (config["security.protocol"], config["sasl.mechanism"]) == ("SASL_SSL", "PLAIN")
    assert (config["sasl.username"], config["sasl.password"]) == ("$ConnectionString", secret)
    assert config["message.max.bytes"] <= 1_046_528
    assert config["connections.max.idle.ms"] < 240_000 and config["metadata.max.age.ms"] < 240_000


def test_cloud_profile_uses_azure_ad_tokens_and_refuses_connection_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENTHUBS_CONNECTION_STRING_ENV, raising=False)
    config = kafka_config(None, "eventhubs", namespace="mesh.servicebus.windows.net", profile="cloud")
    assert config["sasl.mechanism"] == "OAUTHBEARER" and "sasl.password" not in config
    assert isinstance(config["oauth_cb"], AzureTokenCallback)
    assert config["oauth_cb"].scope == "https://mesh.servicebus.windows.net/.default"
    monkeypatch.setenv(EVENTHUBS_CONNECTION_STRING_ENV, "Endpoint=sb://x/;SharedAccessKey=y")
    with pytest.raises(ConfigError, match="profile is 'cloud'"):
        kafka_config(None, "eventhubs", namespace="mesh.servicebus.windows.net", profile="cloud")


def test_missing_settings_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENTHUBS_CONNECTION_STRING_ENV, raising=False)
    with pytest.raises(ConfigError, match="'kafka_bootstrap' is not set"):
        kafka_config(None)
    with pytest.raises(ConfigError, match=EVENTHUBS_CONNECTION_STRING_ENV):
        kafka_config("h:9093", "eventhubs", profile="emulators")


def test_the_spec_follows_settings_and_never_holds_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENTHUBS_CONNECTION_STRING_ENV, "Endpoint=sb://x/;SharedAccessKey=y")
    overrides = {"workspace": str(tmp_path), "bus": "kafka", "kafka_bootstrap": "h:9093",
                 "kafka_security": "eventhubs", "profile": "emulators"}  # fmt: skip
    spec = transport_spec(load_settings(ROOT, overrides=overrides, environ={}), "payments.transactions")
    assert (spec.kind, spec.topic, spec.partitions) == ("kafka", "payments.transactions", 8)
    assert dict(spec.options) == {
        "bootstrap": "h:9093",
        "security": "eventhubs",
        "profile": "emulators",
        "create": "false",
    }
    assert "SharedAccessKey" not in repr(spec)
    with pytest.raises(ConfigError, match="looks like a credential"):
        TransportSpec("kafka", "t", 1, (("kafka.sasl.password", "x"),))
    amqp = transport_spec(load_settings(ROOT, overrides={**overrides, "bus": "eventhubs"}, environ={}), "a.b")
    assert dict(amqp.options) == {
        "checkpoint_root": str(tmp_path / "checkpoints"),
        "checkpoint_store": "file",
        "checkpoint_container": "meshkit-checkpoints",
        "consumer_group": "a-b-pipeline",  # the consumer group terraform/modules/azure-platform creates
        "profile": "emulators",
    }
    local = transport_spec(load_settings(ROOT, overrides={"workspace": str(tmp_path)}, environ={}), "a.b")
    with closing(open_transport(local)) as log:
        assert isinstance(log, LocalEventLog) and log.path == tmp_path / "eventlog" / "a.b"
