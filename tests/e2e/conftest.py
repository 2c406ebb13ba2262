"""The gateway behind each storage backend, for the real-client modules that run on all of them.

A test that uses ``backend_gateway`` (directly, or through ``backend_s3``) runs once per
backend in :data:`BACKENDS`: the filesystem (the session's ``process_gateway``), S3 through
moto_server, Azure Blob through Azurite and GCS through fake-gcs-server. Each remote backend
gets ONE emulator and ONE gateway (``--backend URL``, the emulator's SDK variables in its
environment) per test session; pytest orders the tests so each is started once. A test that
also takes a ``transport`` runs over HTTP on every backend and over HTTPS on the filesystem
only: TLS and aws-chunked trailers are decoded before any backend is reached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import google.cloud.storage as storage
import pytest
from azure.storage.blob import BlobServiceClient
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from tests.support.clients import make_s3_client
from tests.support.emulators import Emulator, start_azurite, start_fake_gcs, start_moto
from tests.support.servers import GatewayServer, running_gateway

BACKENDS = ("filesystem", "s3", "azure", "gcs")
#: The backend bucket/container every gateway bucket lives in (prefix mapping).
CONTAINER = "pagewright-e2e"


@dataclass(frozen=True)
class StorageBackend:
    """Which backend a gateway runs on: its ``--backend`` URL and the SDK environment."""

    name: str
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage_backend" not in metafunc.fixturenames:
        return
    if "transport" in metafunc.fixturenames:
        combinations = [(name, "http") for name in BACKENDS] + [("filesystem", "https")]
        metafunc.parametrize(
            ("storage_backend", "transport"),
            combinations,
            indirect=["storage_backend"],
            scope="session",
            ids=[f"{name}-{transport}" for name, transport in combinations],
        )
    else:
        metafunc.parametrize("storage_backend", BACKENDS, indirect=True, scope="session")


def _create_s3_bucket(emulator: Emulator) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        aws_access_key_id=emulator.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=emulator.env["AWS_SECRET_ACCESS_KEY"],
        region_name=emulator.env["AWS_REGION"],
    )
    client.create_bucket(Bucket=CONTAINER)
    client.close()


def _create_azure_container(emulator: Emulator) -> None:
    service = BlobServiceClient.from_connection_string(
        emulator.env["AZURE_STORAGE_CONNECTION_STRING"]
    )
    with service:
        service.create_container(CONTAINER)


def _create_gcs_bucket(emulator: Emulator) -> None:
    client = storage.Client(
        project=emulator.env["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=emulator.endpoint),
    )
    client.create_bucket(CONTAINER)
    client.close()


_REMOTE: dict[str, tuple[Any, Any, str]] = {
    "s3": (start_moto, _create_s3_bucket, f"s3://{CONTAINER}/gateway"),
    "azure": (start_azurite, _create_azure_container, f"azure://{CONTAINER}/gateway"),
    "gcs": (start_fake_gcs, _create_gcs_bucket, f"gcs://{CONTAINER}/gateway"),
}


@pytest.fixture(scope="session")
def storage_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageBackend]:
    """The backend of this param: for a remote one, its emulator, started once per session
    with the backend bucket/container created in it."""
    name: str = request.param
    if name == "filesystem":
        yield StorageBackend(name)
        return
    start, create_container, url = _REMOTE[name]
    emulator: Emulator = start(tmp_path_factory.mktemp(f"emulator-{name}"))
    try:
        create_container(emulator)
        yield StorageBackend(name, url, dict(emulator.env))
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def backend_gateway(
    request: pytest.FixtureRequest,
    storage_backend: StorageBackend,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayServer]:
    """A gateway over ``storage_backend``; on the filesystem, the session's
    ``process_gateway``."""
    if storage_backend.name == "filesystem":
        yield request.getfixturevalue("process_gateway")
        return
    data_dir = tmp_path_factory.mktemp(f"gateway-{storage_backend.name}") / "data"
    with running_gateway(
        data_dir, "--backend", storage_backend.url, env=storage_backend.env
    ) as server:
        yield server


@pytest.fixture(scope="session")
def backend_s3(backend_gateway: GatewayServer) -> Iterator[Any]:
    """A default boto3 client of ``backend_gateway``."""
    client = make_s3_client(backend_gateway)
    yield client
    with contextlib.suppress(Exception):
        client.close()


@pytest.fixture
def transport_gateway(
    request: pytest.FixtureRequest, transport: str, backend_gateway: GatewayServer
) -> GatewayServer:
    """``backend_gateway`` over HTTP; the filesystem TLS gateway over HTTPS."""
    if transport == "https":
        server: GatewayServer = request.getfixturevalue("tls_gateway")
        return server
    return backend_gateway
