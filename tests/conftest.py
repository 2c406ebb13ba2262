"""Shared fixtures: one real gateway per test session (per xdist worker), real S3 clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import GatewayServer, make_tls_files, running_gateway
from tests.support.clients import make_s3_client


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with running_gateway(tmp_path_factory.mktemp("gateway") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway serving HTTPS: boto3 sends aws-chunked trailers only over TLS."""
    directory = tmp_path_factory.mktemp("tls-gateway")
    with running_gateway(directory / "data", tls=make_tls_files(directory)) as server:
        yield server


@pytest.fixture(scope="session")
def s3(gateway: GatewayServer) -> Any:
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
