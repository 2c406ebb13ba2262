"""Shared fixtures: one in-process gateway per test session (per xdist worker) and real S3
clients for it; a subprocess gateway for the tests that need a real server process.

Tests that need a real server (a gateway process, an emulator, a real client tool) are marked
``server``: those using a fixture of :data:`SERVER_FIXTURES` here, the others by module or
by test. ``pytest -m 'not server'`` runs everything else, in-process."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import make_s3_client
from tests.support.emulators import Emulator, running, start_fake_gcs, start_moto
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.servers import GatewayServer, make_tls_files, running_gateway

#: Fixtures that start a real server: every test using one is marked ``server``.
SERVER_FIXTURES = frozenset({"process_gateway", "tls_gateway", "moto", "fake_gcs"})


#: Test directories of real servers only: real client tools against gateway processes.
SERVER_DIRECTORIES = (Path(__file__).parent / "e2e",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())) or any(
            directory in item.path.parents for directory in SERVER_DIRECTORIES
        ):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    """The real app over a memory store, served in this process."""
    with in_process_gateway(tmp_path_factory.mktemp("gateway") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def process_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """``pagewright-gateway serve`` as a subprocess over the filesystem store."""
    with running_gateway(tmp_path_factory.mktemp("process-gateway") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway serving HTTPS: boto3 sends aws-chunked trailers only over TLS."""
    directory = tmp_path_factory.mktemp("tls-gateway")
    with running_gateway(directory / "data", tls=make_tls_files(directory)) as server:
        yield server


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A moto_server for one test module."""
    with running(start_moto, tmp_path_factory.mktemp("moto")) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A fake-gcs-server (memory store) for one test module: its store slows as it fills."""
    with running(start_fake_gcs, tmp_path_factory.mktemp("fake-gcs")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def s3(gateway: InProcessGateway) -> Any:
    return make_s3_client(gateway)


@pytest.fixture
def bucket_name() -> Callable[[], str]:
    return lambda: f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def bucket(s3: Any, bucket_name: Callable[[], str]) -> str:
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path
