"""The identity commands (``users``, ``keys``, ``sites``, and ``api-key`` for users), run
through ``commands.cli.main`` against the in-process gateway's data directory."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from commands.cli import main
from policy.catalog import SqlCatalog
from tests.support.gateway import InProcessGateway

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(gateway: InProcessGateway, capsys: pytest.CaptureFixture[str]) -> Run:
    """``pagewright-gateway ARGS --data-dir <the gateway's>``: (status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            status = main([*args, "--data-dir", str(gateway.data_dir)])
        except SystemExit as exited:
            status = int(exited.code or 0)
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def user(run: Run) -> str:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    status, out, _ = run("users", "create", name)
    assert status == 0
    assert name in out
    return name


def s3_for(gateway: InProcessGateway, key: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=gateway.region,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def created_key(out: str) -> tuple[str, str]:
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]


def refused(s3: Any) -> bool:
    try:
        s3.list_buckets()
    except ClientError as error:
        code = error.response["Error"]["Code"]
    else:
        return False
    if code != "InvalidAccessKeyId":
        raise AssertionError(f"refused with {code}, not InvalidAccessKeyId")
    return True


def eventually(condition: Callable[[], bool], seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the credential cache's lifetime"
        time.sleep(0.25)


def test_users_create_list_delete(run: Run, user: str) -> None:
    status, out, _ = run("users", "list")
    assert status == 0
    assert any(line.startswith(f"{user}  AIDA") for line in out.splitlines())
    assert run("users", "create", user)[0] == 1
    status, _, err = run("users", "create", user.upper())
    assert status == 1
    assert "already exists" in err
    status, _, err = run("users", "create", "bad name")
    assert status == 1
    assert "userName" in err
    assert run("users", "delete", user)[0] == 0
    status, _, err = run("users", "delete", user)
    assert status == 1
    assert "cannot be found" in err
    assert user not in run("users", "list")[1]


def test_keys_authenticate_until_deactivated_or_deleted(
    gateway: InProcessGateway, run: Run, user: str
) -> None:
    status, out, _ = run("keys", "create", user)
    assert status == 0
    key_id, secret = created_key(out)
    s3 = s3_for(gateway, key_id, secret)
    assert s3.list_buckets()["Owner"]["DisplayName"] == user
    status, out, _ = run("keys", "list", user)
    assert status == 0
    assert f"{key_id}  Active" in out
    assert secret not in out

    assert run("keys", "deactivate", user, key_id)[0] == 0
    assert f"{key_id}  Inactive" in run("keys", "list", user)[1]
    eventually(lambda: refused(s3))
    assert run("keys", "activate", user, key_id)[0] == 0
    eventually(lambda: not refused(s3))
    status, _, err = run("users", "delete", user)
    assert status == 1
    assert "access keys" in err
    assert run("keys", "delete", user, key_id)[0] == 0
    eventually(lambda: refused(s3))
    status, _, err = run("keys", "delete", user, key_id)
    assert status == 1
    assert key_id in err
    assert run("users", "delete", user)[0] == 0


def test_an_expiring_key_stops_at_its_time(gateway: InProcessGateway, run: Run, user: str) -> None:
    expires = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    status, out, _ = run("keys", "create", user, "--expires", expires)
    assert status == 0
    assert "# expires " in out
    s3 = s3_for(gateway, *created_key(out))
    assert not refused(s3)
    eventually(lambda: refused(s3))


def test_keys_refusals(run: Run, user: str) -> None:
    status, _, err = run("keys", "create", "no-such-user")
    assert status == 1
    assert "no-such-user" in err
    run("keys", "create", user)
    run("keys", "create", user)
    status, _, err = run("keys", "create", user)
    assert status == 1
    assert "AccessKeysPerUser" in err
    status, _, err = run("keys", "create", user, "--expires", "2001-01-01")
    assert status == 2
    assert "already past" in err
    status, _, err = run("keys", "create", user, "--expires", "soon")
    assert status == 2
    assert "not a date" in err


def test_site_grants(run: Run, user: str) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    assert run("sites", "grant", site, user, "writer")[0] == 0
    assert run("sites", "grant", site, user, "owner")[0] == 0
    status, out, _ = run("sites", "grants", site)
    assert status == 0
    assert out == f"{site}  {user}  owner\n"
    assert f"{site}  {user}  owner" in run("sites", "grants")[1]
    status, _, err = run("sites", "grant", site, user, "admin")
    assert status == 2
    assert "invalid choice: 'admin'" in err
    status, _, err = run("sites", "grant", "Not_A_Bucket", user, "reader")
    assert status == 2
    assert "Bucket names are 3 to 63 characters" in err
    status, _, err = run("sites", "grant", site, "no-such-user", "reader")
    assert status == 1
    assert "no-such-user" in err
    assert run("sites", "revoke", site, user)[0] == 0
    status, _, err = run("sites", "revoke", site, user)
    assert status == 1
    assert "has no role" in err
    assert run("sites", "grants", site)[1] == ""


def test_api_keys_for_users_and_their_expiry(
    gateway: InProcessGateway, run: Run, user: str
) -> None:
    status, out, _ = run("api-key", "create", user)
    assert status == 0
    secret = out.strip()
    sites = httpx.get(
        f"{gateway.endpoint}/_pagewright/v1/sites", headers={"Authorization": f"Bearer {secret}"}
    )
    assert sites.status_code != 401  # authenticated as the user (what it may do is RBAC's)
    status, _, err = run("api-key", "create", "no-such-user")
    assert status == 1
    assert "no user" in err
    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    status, out, _ = run("api-key", "create", "--principal", user, "--expires", expires)
    assert status == 0
    expiring = out.strip()
    assert "expires" in run("api-key", "list", "--principal", user)[1]

    def rejected() -> bool:
        answer = httpx.get(
            f"{gateway.endpoint}/_pagewright/v1/sites",
            headers={"Authorization": f"Bearer {expiring}"},
        )
        return answer.status_code == 401

    assert not rejected()
    eventually(rejected)
    status, _, err = run("users", "delete", user)
    assert status == 1
    assert "API keys" in err


def test_commands_need_the_gateways_master_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def make_catalog() -> None:
        catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
        await catalog.start()
        await catalog.close()

    asyncio.run(make_catalog())
    capsys.readouterr()
    assert main(["users", "list", "--data-dir", str(tmp_path)]) == 2
    assert "no master key" in capsys.readouterr().err
    assert not (tmp_path / "master.key").exists()  # a command never makes one


def test_a_granted_role_is_what_the_access_decision_reads(
    gateway: InProcessGateway, run: Run, user: str, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>")
    theirs = s3_for(gateway, *created_key(run("keys", "create", user)[1]))

    def reads() -> bool:
        try:
            theirs.get_object(Bucket=bucket, Key="page.html")
        except ClientError as error:
            if error.response["Error"]["Code"] != "AccessDenied":
                raise
            return False
        return True

    assert not reads()
    assert run("sites", "grant", bucket, user, "reader")[0] == 0
    eventually(reads)
    assert run("sites", "revoke", bucket, user)[0] == 0
    eventually(lambda: not reads())
