"""``GET /_pagewright/readyz`` (gateway.readiness) checks the storage, the catalog database,
Redis and the free space, and names what failed: against real gateways whose catalog file is
deleted, whose catalog is locked by another writer, and whose PostgreSQL catalog stops.
(A full volume: tests/test_free_space.py; a read-only or vanished store:
tests/test_fs_errors.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from core.errors import S3Error
from gateway import readiness
from policy.forwarding import BACKEND_METHODS, ForwardingBackend
from policy.model import SitePolicy
from policy.rate_limits import RateLimitConfig
from policy.stack import build_stack
from tests.support.artifact_api import ApiClient, create_api_key
from tests.support.postgres import private_server
from tests.support.servers import GatewayServer, free_port, running_gateway
from translators.memory.backend import MemoryBackend

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def readyz(server: GatewayServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.endpoint}/_pagewright/readyz", timeout=30)
    return response.status_code, response.json()


def test_a_healthy_gateway_reports_every_check(process_gateway: GatewayServer) -> None:
    status, report = readyz(process_gateway)
    assert status == 200
    assert report["ready"] is True
    assert report["failed"] == []
    assert report["backend"] == "filesystem"
    checks = report["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {
        "backend": True,
        "catalog": True,
        "free_space": True,
    }
    assert {check["state"] for check in checks.values()} == {"ok"}
    assert "breaker" not in checks["backend"]  # a local backend has no circuit breaker
    assert checks["free_space"]["free_bytes"] >= checks["free_space"]["min_free_bytes"] > 0


def test_a_deleted_catalog_database_is_not_ready(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "data") as server:
        assert readyz(server)[0] == 200
        for suffix in ("", "-wal", "-shm"):
            (server.data_dir / f"catalog.sqlite3{suffix}").unlink(missing_ok=True)
        status, report = readyz(server)
        assert status == 503
        assert report["ready"] is False
        assert report["failed"] == ["catalog"]
        assert "missing" in report["checks"]["catalog"]["error"]
        assert report["checks"]["backend"]["ok"] is True


def test_a_locked_catalog_database_is_not_ready(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "data") as server:
        holder = sqlite3.connect(server.data_dir / "catalog.sqlite3", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
            status, report = readyz(server)
            assert status == 503
            assert report["failed"] == ["catalog"]
            assert "locked" in report["checks"]["catalog"]["error"]
            holder.execute("ROLLBACK")
            assert readyz(server)[0] == 200
        finally:
            holder.close()


def test_an_unreachable_postgresql_catalog_is_not_ready(tmp_path: Path) -> None:
    with private_server() as postgres:
        env = {"PWG_CATALOG_URL": postgres.url}
        with running_gateway(tmp_path / "data", env=env) as server:
            assert readyz(server)[0] == 200
            postgres.stop()
            status, report = readyz(server)
            assert status == 503
            assert report["failed"] == ["catalog"]
            error = report["checks"]["catalog"]["error"]
            assert error == "The catalog database cannot be used."
            assert "127.0.0.1" not in error  # hosts go to the log, not to the probe


def test_the_api_answers_a_documented_503_while_the_catalog_is_down(tmp_path: Path) -> None:
    with private_server() as postgres:
        env = {"PWG_CATALOG_URL": postgres.url}
        with running_gateway(tmp_path / "data", env=env) as server:
            api = ApiClient(server, create_api_key(server))
            assert api.get("/sites/outage/usage").status_code == 200
            postgres.stop()
            # The client checks that the status is documented for the operation and that
            # the body matches its schema.
            for reply in (api.get("/sites/outage/usage"), api.put("/sites/outage/policy")):
                assert reply.status_code == 503, reply.text
                assert reply.json()["error"]["code"] == "ServiceUnavailable"
            api.close()


class Unreachable(ForwardingBackend, passes_through=BACKEND_METHODS - {"start", "check_ready"}):
    """The memory translator posing as a remote (S3) one that is down while ``down`` is set."""

    down = True

    def __init__(self) -> None:
        super().__init__(MemoryBackend())
        self.name = "s3"

    async def start(self) -> None:
        if self.down:
            raise S3Error("ServiceUnavailable", "The storage backend cannot be reached.")
        await self.inner.start()

    async def check_ready(self) -> None:
        if self.down:
            raise S3Error("ServiceUnavailable", "The storage backend cannot be reached.")
        await self.inner.check_ready()


@pytest.mark.anyio
async def test_the_backend_state_goes_starting_ok_unavailable(tmp_path: Path) -> None:
    translator = Unreachable()
    catalog = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(
        translator, catalog, SitePolicy(), 1024, breaker_failures=2, breaker_reset_s=60
    )
    async with anyio.create_task_group() as background:
        await stack.run(background)  # a backend down at start does not stop the gateway
        ready, document = await readiness.report(stack)
        assert not ready
        assert document["failed"] == ["backend"]
        assert document["checks"]["backend"]["state"] == "starting"
        assert document["checks"]["catalog"] == {"ok": True, "state": "ok"}
        translator.down = False
        for _ in range(300):  # the background start retries every 0.5 s, up to 5 s apart
            ready, document = await readiness.report(stack)
            if ready:
                break
            await anyio.sleep(0.1)
        assert document["checks"]["backend"] == {"ok": True, "state": "ok", "breaker": "closed"}
        translator.down = True
        for _ in range(2):
            assert not (await readiness.report(stack))[0]
        ready, document = await readiness.report(stack)
        assert document["checks"]["backend"]["state"] == "unavailable"
        assert document["checks"]["backend"]["breaker"] == "open"
        background.cancel_scope.cancel()
    await stack.close()


@pytest.mark.anyio
async def test_redis_out_is_reported_degraded_without_failing_readiness(tmp_path: Path) -> None:
    config = RateLimitConfig(
        principal_requests_per_second=1.0, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    catalog = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(MemoryBackend(), catalog, SitePolicy(), 1024, rate_limits=config)
    async with anyio.create_task_group() as background:
        await stack.run(background)
        ready, document = await readiness.report(stack)
        assert ready
        assert document["checks"]["redis"] == {"ok": True, "state": "ok"}
        assert stack.limiter is not None
        assert (await stack.limiter.admit("someone", None)).allowed  # Redis fails: local
        ready, document = await readiness.report(stack)
        assert ready
        assert document["checks"]["redis"] == {
            "ok": True,
            "state": "degraded: per-process limits",
        }
        background.cancel_scope.cancel()
    await stack.close()
