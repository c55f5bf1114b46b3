"""The change-feed reader's pure parts: start positions, range ids, partition keys, lag, tokens, errors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from meshkit.config import Settings
from meshkit.contracts.model import SourceSpec
from meshkit.errors import ConfigError, TerminalError, TransientError
from pipelines.sources.cosmos import feed
from pipelines.sources.cosmos.feed import ChangeFeedReader, FeedRange, StartFrom, parse_start, partition_key_of

SPEC = SourceSpec("cosmosdb", "app", "shop", "orders", "/customerId", "latestVersion", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beginning", StartFrom("beginning")),
        (" Now ", StartFrom("now")),
        ("2026-03-02T12:00:00Z", StartFrom("time", datetime(2026, 3, 2, 12, tzinfo=UTC))),
        ("2026-03-02T09:00:00-03:00", StartFrom("time", datetime(2026, 3, 2, 12, tzinfo=UTC))),
    ],
)
def test_parse_start(text: str, expected: StartFrom) -> None:
    assert parse_start(text) == expected


@pytest.mark.parametrize("text", ["2026-03-02T12:00:00", "yesterday", ""])
def test_parse_start_rejects_what_it_cannot_place_and_says_what_works(text: str) -> None:
    with pytest.raises(ConfigError, match="Valid values are: beginning, now"):
        parse_start(text)


def _raw(low: str, high: str) -> dict[str, Any]:
    return {"Range": {"min": low, "max": high, "isMinInclusive": True, "isMaxInclusive": False}}


def test_feed_range_ids_are_stable_and_safe_as_blob_names() -> None:
    assert FeedRange.from_raw(_raw("", "FF")).id == "00-FF"
    assert FeedRange.from_raw(_raw("", "3F")).id == "00-3F"
    mid = "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
    assert FeedRange.from_raw(_raw(mid, "FF")).id == f"{mid}-FF"
    odd = {"PK": '["cust/1"]', "Range": {"min": "a/b", "max": "c"}}
    assert FeedRange.from_raw(odd).id == FeedRange.from_raw(dict(odd)).id
    assert FeedRange.from_raw(odd).id.isalnum()
    assert FeedRange.from_raw(_raw("", "FF")) == FeedRange("00-FF", {})  # equality is by id


def test_partition_key_of_latest_version_and_all_versions_items() -> None:
    assert partition_key_of({"id": "1", "customerId": "c-1"}, "/customerId") == "c-1"
    assert partition_key_of({"id": "1", "customer": {"id": 42}}, "/customer/id") == "42"
    assert partition_key_of({"id": "1", "flag": True}, "/flag") == "true"
    assert partition_key_of({"id": "1"}, "/customerId") == ""  # Cosmos' undefined key
    meta = {"operationType": "replace", "lsn": 9, "crts": 1}
    assert partition_key_of({"current": {"customerId": "c-2"}, "metadata": meta}, "/customerId") == "c-2"
    assert partition_key_of({"previous": {"customerId": "c-3"}, "metadata": meta}, "/customerId") == "c-3"
    delete = {"operationType": "delete", "lsn": 10, "crts": 1, "id": "1", "partitionKey": {"customerId": "c-4"}}
    assert partition_key_of({"metadata": delete}, "/customerId") == "c-4"
    # a document that merely has a field called metadata is still a latest-version document
    assert partition_key_of({"customerId": "c-5", "metadata": {"x": 1}}, "/customerId") == "c-5"


@pytest.mark.parametrize(
    ("headers", "lsn"),
    [
        ({"x-ms-session-token": "0:-1#123"}, 123),
        ({"x-ms-session-token": "3:2#456#1=450#2=449"}, 456),
        ({"lsn": "77"}, 77),
        ({}, None),
    ],
)
def test_latest_lsn_from_the_session_token_or_lsn_header(headers: dict[str, str], lsn: int | None) -> None:
    assert feed._latest_lsn(headers) == lsn


def _token(start: dict[str, Any]) -> str:
    state = {"v": "v2", "containerRid": "AAAAAA==", "mode": "LatestVersion", "startFrom": start, "continuation": {}}
    return base64.b64encode(json.dumps(state).encode()).decode()


def test_point_in_time_tokens_are_rewritten_so_the_installed_sdk_can_load_them() -> None:
    from azure.cosmos._change_feed.change_feed_start_from import ChangeFeedStartFromInternal

    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    written_by_sdk = _token({"Type": "PointInTime", "PointInTimeMs": int(at.timestamp() * 1000)})
    fixed = feed._readable_by_sdk(written_by_sdk)
    start = json.loads(base64.b64decode(fixed))["startFrom"]
    loaded = ChangeFeedStartFromInternal.from_json(start)  # raised "year ... is out of range" before
    assert loaded.to_dict() == {"Type": "PointInTime", "PointInTimeMs": int(at.timestamp() * 1000)}
    assert feed._readable_by_sdk(fixed) == fixed  # idempotent
    beginning = _token({"Type": "Beginning"})
    assert feed._readable_by_sdk(beginning) == beginning
    assert feed._readable_by_sdk('"42"') == '"42"'  # a bare etag is left to the SDK


def test_sdk_failures_become_meshkit_errors_naming_what_was_read() -> None:
    from azure.core.exceptions import ServiceRequestError
    from azure.cosmos.exceptions import CosmosHttpResponseError

    for status in (429, 503, 500, 408):
        with pytest.raises(TransientError, match=f"read range r1: HTTP {status}"), feed._sdk_errors("read range r1"):
            raise CosmosHttpResponseError(status_code=status, message="busy")
    with pytest.raises(TerminalError, match=r"HTTP 404: .*gone") as caught, feed._sdk_errors("read range r1"):
        raise CosmosHttpResponseError(status_code=404, message="gone\nstack")
    assert not isinstance(caught.value, TransientError)
    with pytest.raises(TransientError, match="connection failed"), feed._sdk_errors("read range r1"):
        raise ServiceRequestError("refused")
    unusable = pytest.raises(TerminalError, match=r"continuation is not usable here .*Mismatch collection rid")
    with unusable, feed._sdk_errors("read range r1"):
        raise ValueError("Invalid continuation: [Mismatch collection rid]")


def test_open_container_names_the_missing_setting() -> None:
    with pytest.raises(ConfigError, match="cosmos_endpoint") as caught:
        feed.open_container(Settings(profile="emulators"), SPEC)
    assert "MESHKIT_COSMOS_ENDPOINT" in str(caught.value)


class _ClientStub:
    made: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.made.append((url, kwargs))

    def get_database_client(self, name: str) -> _ClientStub:
        self.database = name
        return self

    def get_container_client(self, name: str) -> tuple[str, str]:
        return (self.database, name)


def test_open_container_uses_the_emulator_key_locally_and_azure_ad_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.cosmos
    import azure.identity

    monkeypatch.setattr(azure.cosmos, "CosmosClient", _ClientStub)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: "azure-ad")
    _ClientStub.made.clear()
    monkeypatch.setenv("MESHKIT_COSMOS_KEY", "a2V5")
    local = Settings(profile="emulators", cosmos_endpoint="http://127.0.0.1:8081/")
    assert feed.open_container(local, SPEC) == ("shop", "orders")
    _, kwargs = _ClientStub.made[-1]
    assert kwargs["credential"] == "a2V5" and kwargs["enable_endpoint_discovery"] is False
    monkeypatch.delenv("MESHKIT_COSMOS_KEY")
    cloud = Settings(profile="cloud", cosmos_endpoint="https://acct.documents.azure.com:443/", cosmos_database="ops")
    assert feed.open_container(cloud, SPEC) == ("ops", "orders")
    _, kwargs = _ClientStub.made[-1]
    assert kwargs["credential"] == "azure-ad" and kwargs["connection_verify"] is True
    monkeypatch.setenv("MESHKIT_COSMOS_KEY", "a2V5")
    with pytest.raises(ConfigError, match="MESHKIT_COSMOS_KEY is set but the profile is 'cloud'"):
        feed.open_container(cloud, SPEC)


def test_reader_rejects_an_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="Valid values are: LatestVersion, AllVersionsAndDeletes"):
        ChangeFeedReader(object(), "/customerId", "Incremental")  # type: ignore[arg-type]
