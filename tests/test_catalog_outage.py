"""Outages of a real PostgreSQL catalog, stopped and started again with ``pg_ctl`` on its port.

A gateway started while its catalog is down serves, not ready, answers what needs the
catalog 503 at once, and becomes ready within 10 s of the catalog's return, without a
restart (policy.catalog_start). A catalog stopped under a running gateway with a few
clients writing and reading through it (``tests.test_outage.Load``): no 500; reads of
existing objects go on; the first write is refused (503) within 1 s of the stop; a user's
key (which lives in the catalog) gets 503, never 403; writes are acknowledged again within
10 s of the catalog's return; every object acknowledged with 200 reads back byte for byte;
and each has its catalog row (the writes in flight when the catalog went are recorded on its
return: policy.catalog_backend). The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text

from policy.catalog_database import normalize_url
from tests.support.artifact_api import ApiClient
from tests.support.clients import make_s3_client
from tests.support.postgres import private_server
from tests.support.servers import GatewayServer, running_gateway
from tests.test_outage import Load, Outcome, readyz, wait_ready

pytestmark = pytest.mark.server

#: An access key id this gateway could have issued, held by nobody.
UNKNOWN_USER_KEY = "AKIAPWTESTNOBODY0001"


def _refusal(call: Any) -> tuple[ClientError, float]:
    """The error ``call()`` fails with, and how long it took."""
    started = time.monotonic()
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value, time.monotonic() - started


def _status(error: ClientError) -> tuple[int, str]:
    return (
        int(error.response["ResponseMetadata"]["HTTPStatusCode"]),
        str(error.response["Error"]["Code"]),
    )


def _s3_as(server: GatewayServer, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_a_gateway_started_while_its_postgresql_catalog_is_down_becomes_ready_when_it_is_back(
    tmp_path: Path,
) -> None:
    with private_server() as postgres:
        postgres.stop()
        env = {"PWG_CATALOG_URL": postgres.url}
        with running_gateway(tmp_path / "data", env=env) as server:
            status, report = readyz(server)
            assert status == 503
            assert report["failed"] == ["catalog"]
            assert report["checks"]["catalog"]["state"] == "starting"
            client = make_s3_client(server)
            refused, refused_in = _refusal(lambda: client.create_bucket(Bucket="site"))
            assert _status(refused) == (503, "ServiceUnavailable")  # its access settings
            refused, refused_in = _refusal(
                lambda: client.put_object(Bucket="site", Key="a", Body=b"before")
            )
            assert _status(refused) == (503, "ServiceUnavailable")
            assert refused.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
            assert refused_in < 1.0
            # A user's key lives in the catalog: it cannot be looked up, which is not "unknown".
            stranger = _s3_as(server, UNKNOWN_USER_KEY, "x" * 40)
            assert _status(_refusal(lambda: stranger.list_buckets())[0]) == (
                503,
                "ServiceUnavailable",
            )
            # So do the artifact API's keys, in its JSON shape.
            api = ApiClient(server, "pwg_nobody_secret")
            reply = api.get("/sites/site/usage")
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"]["code"] == "ServiceUnavailable"
            assert reply.headers["retry-after"] == "1"
            api.close()

            back = time.monotonic()
            postgres.start()
            returned_in = time.monotonic() - back
            ready_after = wait_ready(server, timeout=15)
            print(
                f"\n[catalog down at start] a PUT refused (503) in {refused_in:.3f} s; "
                f"ready {ready_after} s after the catalog answered again "
                f"(pg_ctl start took {returned_in:.2f} s)"
            )
            assert ready_after is not None
            assert ready_after <= 10.0
            client.create_bucket(Bucket="site")
            client.put_object(Bucket="site", Key="a", Body=b"after")
            assert client.get_object(Bucket="site", Key="a")["Body"].read() == b"after"
            assert _status(_refusal(lambda: stranger.list_buckets())[0]) == (
                403,
                "InvalidAccessKeyId",
            )
            stranger.close()
            client.close()
            # The late start took the reservation lease and started the background jobs.
            deadline = time.monotonic() + 5
            while _rows(postgres.url, "jobs") == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _rows(postgres.url, "jobs") > 0
            assert _rows(postgres.url, "leases") == 1


def _grant(server: GatewayServer, site: str, user: str, role: str) -> None:
    """``pagewright-gateway sites grant`` on ``server``'s catalog."""
    command = [sys.executable, "-m", "commands.cli", "sites", "grant", site, user, role]
    done = subprocess.run(
        [*command, "--data-dir", str(server.data_dir)],
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _catalog_keys(url: str, site: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT key FROM objects WHERE site = :site"), {"site": site})
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def _rows(url: str, table: str) -> int:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _put_refused(outcome: Outcome) -> bool:
    return outcome.operation == "PutObject" and outcome.status == 503


def _put_ok(outcome: Outcome) -> bool:
    return outcome.operation == "PutObject" and outcome.status == 200


def test_a_postgresql_catalog_stopped_under_load_and_started_again(tmp_path: Path) -> None:
    with private_server() as postgres:
        env = {"PWG_CATALOG_URL": postgres.url}
        with running_gateway(tmp_path / "data", env=env) as server:
            client = make_s3_client(server)
            client.create_bucket(Bucket="site")
            existing = {f"page-{n}.html": os.urandom(2048 + n) for n in range(5)}
            for key, body in existing.items():
                client.put_object(Bucket="site", Key=key, Body=body)
            iam = boto3.client(
                "iam",
                endpoint_url=server.endpoint,
                aws_access_key_id=server.access_key,
                aws_secret_access_key=server.secret_key,
                region_name=server.region,
            )
            iam.create_user(UserName="reader")
            made = iam.create_access_key(UserName="reader")["AccessKey"]
            iam.close()
            _grant(server, "site", "reader", "reader")
            reader = _s3_as(server, made["AccessKeyId"], made["SecretAccessKey"])
            assert reader.get_object(Bucket="site", Key="page-0.html")["Body"].read()
            reader_used = time.monotonic()

            load = Load(server)
            with load.running():
                assert load.wait_for(0, _put_ok, timeout=10) is not None
                time.sleep(1.0)
                stop = time.monotonic()
                postgres.stop()  # pg_ctl stop -m fast: connections cut, the server gone
                stopped_in = time.monotonic() - stop
                first_refusal = load.wait_for(stop, _put_refused, timeout=5)
                assert first_refusal is not None, "no write refused within 5 s of the stop"
                time_to_503 = first_refusal.ended - stop
                status, report = readyz(server)
                assert status == 503
                assert report["failed"] == ["catalog"]
                assert report["checks"]["catalog"]["state"] == "unavailable"
                reads, read_failures = 0, []
                while time.monotonic() - stop < 6.0:  # past the caches' freshness (2 s, 5 s)
                    for key, body in existing.items():
                        reads += 1
                        try:
                            got = client.get_object(Bucket="site", Key=key)["Body"].read()
                        except ClientError as error:
                            read_failures.append(_status(error))
                        else:
                            assert got == body
                    time.sleep(0.3)
                # The user's key is no longer cached: it cannot be looked up now, so 503.
                assert time.monotonic() - reader_used > 5.0
                user_refused = _status(
                    _refusal(lambda: reader.get_object(Bucket="site", Key="page-0.html"))[0]
                )
                back = time.monotonic()
                postgres.start()
                returned = time.monotonic()
                recovered = load.wait_for(returned, _put_ok, timeout=15)
                assert recovered is not None, "no write acknowledged within 15 s of the return"
                time_to_recover = recovered.ended - returned
                time.sleep(0.5)
            outcomes = list(load.outcomes)
            assert reader.get_object(Bucket="site", Key="page-0.html")["Body"].read()
            reader.close()

            failures = [o for o in outcomes if o.status not in (200, 503)]
            refusals = [o for o in outcomes if o.status == 503]
            gets_refused = [o for o in refusals if o.operation == "GetObject"]
            # Once a write was refused, none is acknowledged until the catalog is back.
            acknowledged_while_down = [
                o
                for o in outcomes
                if _put_ok(o) and o.started > first_refusal.ended and o.ended < back
            ]
            assert readyz(server)[0] == 200
            lost = []
            for key, digest in load.acknowledged.items():
                body = client.get_object(Bucket="site", Key=key)["Body"].read()
                if hashlib.sha256(body).hexdigest() != digest:
                    lost.append(key)
            client.close()
            unrecorded = set(load.acknowledged) - _catalog_keys(postgres.url, "site")
            leftover_reservations = _rows(postgres.url, "reservations")
            print(
                f"\n[catalog stopped] requests {len(outcomes)}, acknowledged PUTs "
                f"{len(load.acknowledged)}, 503s {len(refusals)} "
                f"({sorted({o.code for o in refusals})}; GETs among them {len(gets_refused)}), "
                f"other failures {len(failures)}; pg_ctl stop took {stopped_in:.2f} s; first "
                f"write refused {time_to_503:.3f} s after the stop; reads of existing objects "
                f"while down {reads}, failed {len(read_failures)}; the user's key: "
                f"{user_refused}; first write acknowledged {time_to_recover:.3f} s after "
                f"the catalog's return; acknowledged but not readable (lost) {len(lost)}; "
                f"acknowledged but not in the catalog {len(unrecorded)}; quota reservations "
                f"left {leftover_reservations}"
            )
            assert failures == [], failures[:5]
            assert time_to_503 <= 1.0
            assert read_failures == []
            assert gets_refused == []
            assert user_refused == (503, "ServiceUnavailable")
            assert acknowledged_while_down == []
            assert time_to_recover <= 10.0
            assert load.torn == []
            assert lost == []
            assert unrecorded == set()  # writes the catalog missed are recorded on its return
