"""Two real gateway processes on one PostgreSQL catalog: a job runs once, on exactly one
of them, and a frequent job's runs are shared, never doubled."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from policy import catalog_jobs
from policy.catalog import SqlCatalog
from tests.support.artifact_api import ApiClient, create_api_key
from tests.support.postgres import fresh_schema
from tests.support.servers import running_gateway
from tests.support.waiting import wait_until

#: Needs real gateway processes (see tests/conftest.py).
pytestmark = pytest.mark.server

HOURLY = "3600"


def test_a_job_runs_once_across_two_gateways(tmp_path: Path) -> None:
    with fresh_schema() as catalog_url, ExitStack() as stack:
        env = {
            "PWG_CATALOG_URL": catalog_url,
            "PWG_BACKEND": "memory://",
            "PWG_LOG_LEVEL": "info",
            "PWG_SCRUB_INTERVAL_SECONDS": "0",
            "PWG_RETENTION_INTERVAL_SECONDS": HOURLY,
            "PWG_RECLAIM_INTERVAL_SECONDS": HOURLY,
            "PWG_ABANDONED_UPLOAD_INTERVAL_SECONDS": HOURLY,
            "PWG_SWEEP_INTERVAL_SECONDS": "0.3",
        }
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
        servers = [
            stack.enter_context(running_gateway(tmp_path / name / "data", env=env))
            for name in ("a", "b")
        ]
        client = stack.enter_context(ApiClient(servers[1], create_api_key(servers[1])))

        def jobs() -> dict[str, int]:
            response = client.get("/jobs")
            assert response.status_code == 200
            return {job["name"]: job["runs"] for job in response.json()["jobs"]}

        assert wait_until(lambda: jobs()["sweep-staging"] >= 6)
        runs = jobs()
        assert runs["retention"] == 1
        for server in servers:
            server.stop()
        logs = [server.log_path.read_text() for server in servers]
        ran_retention = ["jobs: retention finished" in log for log in logs]
        assert sorted(ran_retention) == [False, True]  # on exactly one of them
        sweeps = sum(log.count("jobs: sweep-staging finished") for log in logs)
        recorded = anyio.run(_recorded_runs, catalog_url)
        assert recorded["retention"] == 1
        # Every run was recorded once (a run cut short by a stop may miss its record).
        assert recorded["sweep-staging"] <= sweeps <= recorded["sweep-staging"] + 2


async def _recorded_runs(url: str) -> dict[str, int]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        records = await catalog.database.run(False, catalog_jobs.read_all)
    finally:
        await catalog.close()
    return {record.name: record.runs for record in records}
