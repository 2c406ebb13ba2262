"""GET /_pagewright/v1/jobs on a gateway whose jobs run every fraction of a second: every
job is listed with its schedule and last run (checked against ``openapi.json``), an
abandoned multipart upload is aborted by its job, and only the root principal (or a policy
allowing ``pagewright:ListJobs`` on ``*``) may look."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from gateway.settings import Settings
from tests.support.artifact_api import ApiClient, create_api_key
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.waiting import wait_until

JOBS = {
    "abort-abandoned-uploads",
    "lifecycle",
    "reclaim-reservations",
    "retention",
    "scrub",
    "sweep-staging",
}


@pytest.fixture(scope="module")
def fast_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    settings = Settings(
        log_level="warning",
        scrub_interval_seconds=0,
        retention_interval_seconds=0.2,
        reclaim_interval_seconds=0.2,
        sweep_interval_seconds=0.2,
        abandoned_upload_interval_seconds=0.1,
        abandoned_upload_seconds=0.5,
        job_lease_seconds=5,
    )
    with in_process_gateway(tmp_path_factory.mktemp("jobs") / "data", settings) as server:
        yield server


@pytest.fixture(scope="module")
def api(fast_gateway: InProcessGateway) -> Iterator[ApiClient]:
    with ApiClient(fast_gateway, create_api_key(fast_gateway)) as client:
        yield client


def _jobs(api: ApiClient) -> dict[str, dict[str, Any]]:
    response = api.get("/jobs")
    assert response.status_code == 200
    return {job["name"]: job for job in response.json()["jobs"]}


def test_every_job_is_listed_with_its_schedule_and_last_run(api: ApiClient) -> None:
    assert set(_jobs(api)) == JOBS
    assert wait_until(
        lambda: all(job["runs"] >= 1 for job in _jobs(api).values() if job["enabled"])
    )
    jobs = _jobs(api)
    assert jobs["scrub"]["enabled"] is False
    assert jobs["scrub"]["runs"] == 0
    assert jobs["scrub"]["last_outcome"] is None
    retention = jobs["retention"]
    assert retention["interval_seconds"] == 0.2
    assert retention["last_outcome"] == "ok"
    assert retention["failures"] == 0
    assert retention["last_duration_seconds"] >= 0
    # A run in progress (every 0.2 s here) has started after the last one finished.
    assert (
        retention["last_started_at"] <= retention["last_finished_at"]
        or retention["holder"] is not None
    )
    assert retention["next_due_at"] is not None


def test_an_abandoned_multipart_upload_is_aborted(
    fast_gateway: InProcessGateway, api: ApiClient
) -> None:
    s3 = make_s3_client(fast_gateway)
    s3.create_bucket(Bucket="abandoned")
    s3.create_multipart_upload(Bucket="abandoned", Key="big.bin")
    s3.create_multipart_upload(Bucket="abandoned", Key="builds/7.tar.gz")  # staged

    def uploads() -> list[str]:
        listed = s3.list_multipart_uploads(Bucket="abandoned")
        return [upload["Key"] for upload in listed.get("Uploads", [])]

    assert sorted(uploads()) == ["big.bin", "builds/7.tar.gz"]
    assert wait_until(lambda: uploads() == [])
    assert _jobs(api)["abort-abandoned-uploads"]["last_outcome"] == "ok"


def test_only_root_or_a_policy_allowing_it_may_list_jobs(fast_gateway: InProcessGateway) -> None:
    with ApiClient(fast_gateway, create_api_key(fast_gateway, principal="ci-bot")) as client:
        response = client.get("/jobs")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "AccessDenied"
    with ApiClient(fast_gateway, create_api_key(fast_gateway, principal="ops")) as client:
        boto3.client(
            "iam",
            endpoint_url=fast_gateway.endpoint,
            aws_access_key_id=fast_gateway.access_key,
            aws_secret_access_key=fast_gateway.secret_key,
            region_name=fast_gateway.region,
        ).put_user_policy(
            UserName="ops",
            PolicyName="jobs",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "pagewright:ListJobs", "Resource": "*"}]}',
        )
        response = client.get("/jobs")
    assert response.status_code == 200
    assert {job["name"] for job in response.json()["jobs"]} == JOBS
