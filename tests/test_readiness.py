"""``GET /_pagewright/readyz`` (gateway.readiness) checks the storage, the catalog database
and the free space, and names what failed: against real gateways whose catalog file is
deleted, whose catalog is locked by another writer, and whose PostgreSQL catalog stops.
(A full volume: tests/test_free_space.py; a read-only or vanished store:
tests/test_fs_errors.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.artifact_api import ApiClient, create_api_key
from tests.support.postgres import private_server
from tests.support.servers import GatewayServer, running_gateway

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server


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
