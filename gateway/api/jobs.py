"""The background jobs endpoint: each job's schedule, current holder and last run.

An admin route over no site: the access decision is on resource ``*`` (the root principal,
or a user whose policy allows ``pagewright:ListJobs``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from core.errors import S3Error
from gateway.api import render
from gateway.api.services import ApiServices
from policy.jobs import JobStatus


def _time(value: datetime | None) -> str | None:
    return None if value is None else render.timestamp(value)


def job_document(status: JobStatus) -> dict[str, Any]:
    """One job (the ``Job`` schema)."""
    record = status.record
    return {
        "name": status.name,
        "interval_seconds": status.interval_s,
        "enabled": status.interval_s > 0,
        "holder": record.holder,
        "lease_expires_at": _time(record.expires_at if record.holder else None),
        "last_started_at": _time(record.last_started_at),
        "last_finished_at": _time(record.last_finished_at),
        "last_duration_seconds": record.last_duration_s,
        "last_outcome": record.last_outcome,
        "runs": record.runs,
        "failures": record.failures,
        "next_due_at": _time(status.next_due_at),
    }


class JobHandlers:
    """The jobs endpoint over ``services`` (see the module docstring)."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    async def list_jobs(self, request: Request) -> Response:
        """GET /jobs: every background job, by name."""
        scheduler = self._services.jobs
        if scheduler is None:
            raise S3Error("ServiceUnavailable", "Background jobs do not run in this gateway.")
        statuses = await scheduler.statuses()
        return render.json_response(
            request, {"jobs": [job_document(status) for status in statuses]}
        )
