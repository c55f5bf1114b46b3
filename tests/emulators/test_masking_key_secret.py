"""The masking key from Secret Manager (`masking_key_secret`), as Dataflow workers read it: the real
google-cloud-secret-manager client against a gRPC endpoint registered under the API's own service and
method names, (de)serialising the API's own messages (Secret Manager has no emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import ROOT
from google.cloud.secretmanager_v1 import types

from meshkit.config import load_settings
from meshkit.errors import ConfigError
from meshkit.secrets import SECRET_MANAGER_ENDPOINT_ENV, _secret_manager_key, masking_key

pytestmark = pytest.mark.emulator
SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
KEY = "k" * 24 + "secret-manager-masking-key"
NAME = "projects/fintech-lake-prod/secrets/meshkit-masking-key/versions/latest"


class SecretManagerFake:
    """AccessSecretVersion only: the named versions answer their payload, others NOT_FOUND."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.requests: list[str] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(
            self._access,
            request_deserializer=types.AccessSecretVersionRequest.deserialize,
            response_serializer=types.AccessSecretVersionResponse.serialize,
        )
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": handler}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _access(
        self, request: types.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> types.AccessSecretVersionResponse:
        self.requests.append(request.name)
        if request.name not in self.secrets:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found")
        payload = types.SecretPayload(data=self.secrets[request.name].encode())
        return types.AccessSecretVersionResponse(name=request.name, payload=payload)


@pytest.fixture
def secret_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretManagerFake]:
    fake = SecretManagerFake({NAME: KEY, NAME.replace("latest", "1"): "tiny-key-value"})
    monkeypatch.setenv(SECRET_MANAGER_ENDPOINT_ENV, f"127.0.0.1:{fake.port}")
    monkeypatch.delenv("MESHKIT_MASKING_KEY", raising=False)
    _secret_manager_key.cache_clear()
    yield fake
    _secret_manager_key.cache_clear()
    fake.server.stop(grace=None)


def test_the_cloud_profile_reads_the_key_from_secret_manager_once(
    secret_manager: SecretManagerFake, tmp_path: Path
) -> None:
    settings = load_settings(
        ROOT, overrides={"profile": "cloud", "masking_key_secret": NAME, "workspace": str(tmp_path)}, environ={}
    )
    assert masking_key(settings) == KEY.encode()
    assert masking_key(settings) == KEY.encode()
    assert secret_manager.requests == [NAME]  # cached per process: one read per worker
    assert not (tmp_path / "secrets").exists()  # nothing written to disk


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (NAME.replace("meshkit-masking-key", "missing"), "secretAccessor"),
        (NAME.replace("latest", "1"), "shorter than 32"),
        ("meshkit-masking-key", "projects/<project>/secrets/<name>/versions/latest"),
    ],
)
def test_an_unusable_secret_is_one_clear_error(
    secret_manager: SecretManagerFake, tmp_path: Path, name: str, expected: str
) -> None:
    settings = load_settings(ROOT, overrides={"profile": "cloud", "masking_key_secret": name}, environ={})
    with pytest.raises(ConfigError) as refused:
        masking_key(settings)
    assert expected in f"{refused.value} {refused.value.hint}"
    assert "tiny-key-value" not in str(refused.value)  # the secret's value is never in a message
