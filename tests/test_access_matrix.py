"""The access matrix on a real gateway: for each role and each Operation, allowed or
``AccessDenied``, over two sites and several principals, with boto3 and the artifact API;
users made with the IAM API, roles granted with the CLI (``pagewright-gateway sites grant``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.api import API_PREFIX
from tests.support.artifact_api import artifact_bytes, create_api_key, upload
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.servers import require_tool

ROLES = ("reader", "deployer", "writer", "owner")

READ = {
    "GetObject",
    "HeadObject",
    "ListObjectsV2",
    "GetBucketLocation",
    "ListMultipartUploads",
    "api:ListArtifacts",
    "api:GetArtifact",
    "api:ListArtifactVersions",
    "api:GetUsage",
    "api:GetPolicy",
}
DEPLOY = {"api:PinArtifact", "api:UpdateArtifact"}
WRITE = {
    "PutObject",
    "PostObject",
    "CopyObject",
    "CreateMultipartUpload",
    "DeleteObject",
    "DeleteObjects",
}
WRITE_API = {"api:DeleteArtifacts"}
OWN = {
    "GetBucketPolicy",
    "PutBucketAcl",
    "GetBucketAcl",
    "PutPublicAccessBlock",
    "PutBucketCors",
    "GetBucketCors",
    "api:PutPolicy",
}

#: What each role may do on its own site: the oracle, written apart from policy/roles.py.
EXPECTED = {
    "reader": READ,
    "deployer": READ | DEPLOY,
    "writer": READ | WRITE | WRITE_API,
    "owner": READ | DEPLOY | WRITE | WRITE_API | OWN,
}
ALL = READ | DEPLOY | WRITE | WRITE_API | OWN


@dataclass
class Caller:
    """One principal's clients: S3 (None: anonymous) and the API (None: no key)."""

    name: str
    s3: Any
    api_key: str | None


@dataclass
class World:
    gateway: InProcessGateway
    site_a: str
    site_b: str
    callers: dict[str, Caller]


def _s3(gateway: InProcessGateway, key: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=gateway.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _cli(gateway: InProcessGateway, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", *args, "--data-dir", str(gateway.data_dir)],
        env=gateway.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run = uuid.uuid4().hex[:8]
    with in_process_gateway(tmp_path_factory.mktemp("matrix") / "data") as gateway:
        root = make_s3_client(gateway)
        iam = boto3.client(
            "iam",
            endpoint_url=gateway.endpoint,
            aws_access_key_id=gateway.access_key,
            aws_secret_access_key=gateway.secret_key,
            region_name=gateway.region,
        )
        site_a, site_b = f"site-a-{run}", f"site-b-{run}"
        for site in (site_a, site_b):
            root.create_bucket(Bucket=site)
            root.put_object(Bucket=site, Key="index.html", Body=b"<h1>site</h1>")
            upload(root, site, "b1")
        callers: dict[str, Caller] = {}
        for role in (*ROLES, "nobody"):
            name = f"{role}-{run}"
            iam.create_user(UserName=name)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            if role != "nobody":
                _cli(gateway, "sites", "grant", site_a, name, role)
            callers[role] = Caller(
                name,
                _s3(gateway, key["AccessKeyId"], key["SecretAccessKey"]),
                create_api_key(gateway, name),
            )
        yield World(gateway, site_a, site_b, callers)


def _api(world: World, caller: Caller, method: str, path: str, body: Any = None) -> int:
    response = httpx.request(
        method,
        f"{world.gateway.endpoint}{API_PREFIX}{path}",
        headers={"Authorization": f"Bearer {caller.api_key}"},
        json=body,
    )
    return response.status_code


Case = Callable[[World, Caller, str], int | None]


def _s3_case(call: Callable[[Any, str], Any]) -> Case:
    def run(world: World, caller: Caller, site: str) -> int | None:
        try:
            call(caller.s3, site)
        except ClientError as error:
            denied = error.response["Error"]["Code"] in ("AccessDenied", "403")  # HEAD: no body
            return 403 if denied else None
        return None

    return run


def _api_case(method: str, path: str, body: Any = None) -> Case:
    def run(world: World, caller: Caller, site: str) -> int | None:
        status = _api(world, caller, method, path.format(site=site), body)
        return 403 if status == 403 else None

    return run


def _delete_objects(s3: Any, site: str) -> None:
    result = s3.delete_objects(Bucket=site, Delete={"Objects": [{"Key": "gone-1"}]})
    if result.get("Errors"):
        raise ClientError({"Error": {"Code": result["Errors"][0]["Code"]}}, "DeleteObjects")


def _post_object(s3: Any, site: str) -> None:
    form = s3.generate_presigned_post(site, "posted.txt")
    answer = httpx.post(form["url"], data=form["fields"], files={"file": ("f", b"posted")})
    if answer.status_code != 204:
        code = "AccessDenied" if b"<Code>AccessDenied</Code>" in answer.content else "Other"
        raise ClientError({"Error": {"Code": code}}, "PostObject")


def _get_cors(s3: Any, site: str) -> None:
    try:
        s3.get_bucket_cors(Bucket=site)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchCORSConfiguration":
            raise


_ANY_ORIGIN_RULES = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}


def _multipart(s3: Any, site: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=site, Key="mp")["UploadId"]
    s3.abort_multipart_upload(Bucket=site, Key="mp", UploadId=upload_id)


CASES: dict[str, Case] = {
    "GetObject": _s3_case(lambda s3, site: s3.get_object(Bucket=site, Key="index.html")),
    "HeadObject": _s3_case(lambda s3, site: s3.head_object(Bucket=site, Key="index.html")),
    "ListObjectsV2": _s3_case(lambda s3, site: s3.list_objects_v2(Bucket=site)),
    "GetBucketLocation": _s3_case(lambda s3, site: s3.get_bucket_location(Bucket=site)),
    "ListMultipartUploads": _s3_case(lambda s3, site: s3.list_multipart_uploads(Bucket=site)),
    "PutObject": _s3_case(lambda s3, site: s3.put_object(Bucket=site, Key="w", Body=b"w")),
    "PostObject": _s3_case(_post_object),
    "PutBucketCors": _s3_case(
        lambda s3, site: s3.put_bucket_cors(Bucket=site, CORSConfiguration=_ANY_ORIGIN_RULES)
    ),
    "GetBucketCors": _s3_case(_get_cors),
    "CopyObject": _s3_case(
        lambda s3, site: s3.copy_object(
            Bucket=site, Key="copy", CopySource={"Bucket": site, "Key": "index.html"}
        )
    ),
    "CreateMultipartUpload": _s3_case(_multipart),
    "DeleteObject": _s3_case(lambda s3, site: s3.delete_object(Bucket=site, Key="gone")),
    "DeleteObjects": _s3_case(_delete_objects),
    "GetBucketPolicy": _s3_case(
        lambda s3, site: _ignore_missing(lambda: s3.get_bucket_policy(Bucket=site))
    ),
    "GetBucketAcl": _s3_case(lambda s3, site: s3.get_bucket_acl(Bucket=site)),
    "PutBucketAcl": _s3_case(lambda s3, site: s3.put_bucket_acl(Bucket=site, ACL="private")),
    "PutPublicAccessBlock": _s3_case(
        lambda s3, site: s3.put_public_access_block(
            Bucket=site,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    ),
    "api:ListArtifacts": _api_case("GET", "/sites/{site}/artifacts"),
    "api:GetArtifact": _api_case("GET", "/sites/{site}/artifacts/b1"),
    "api:ListArtifactVersions": _api_case("GET", "/sites/{site}/artifacts/b1/versions"),
    "api:GetUsage": _api_case("GET", "/sites/{site}/usage"),
    "api:GetPolicy": _api_case("GET", "/sites/{site}/policy"),
    "api:PinArtifact": _api_case("POST", "/sites/{site}/artifacts/b1/pin"),
    "api:UpdateArtifact": _api_case("PATCH", "/sites/{site}/artifacts/b1", {"status": "live"}),
    "api:DeleteArtifacts": _api_case(
        "POST", "/sites/{site}/artifacts:delete", {"build_ids": ["never-built"]}
    ),
    "api:PutPolicy": _api_case("PUT", "/sites/{site}/policy", {"overrides": {}}),
}
assert set(CASES) == ALL


def _ignore_missing(call: Callable[[], Any]) -> None:
    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucketPolicy":
            raise


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", sorted(ALL))
def test_a_role_allows_exactly_its_operations_on_its_own_site(
    world: World, role: str, operation: str
) -> None:
    denied = CASES[operation](world, world.callers[role], world.site_a)
    if operation in EXPECTED[role]:
        assert denied is None, f"{role} was refused {operation}"
    else:
        assert denied == 403, f"{role} was allowed {operation}"


@pytest.mark.parametrize("role", [*ROLES, "nobody"])
@pytest.mark.parametrize("operation", sorted(ALL))
def test_nothing_is_allowed_on_another_site(world: World, role: str, operation: str) -> None:
    assert CASES[operation](world, world.callers[role], world.site_b) == 403


def test_listing_buckets_shows_only_a_callers_sites(world: World) -> None:
    for role in ROLES:
        names = [b["Name"] for b in world.callers[role].s3.list_buckets()["Buckets"]]
        assert names == [world.site_a]
    assert world.callers["nobody"].s3.list_buckets()["Buckets"] == []


def test_a_user_who_creates_a_site_owns_it(world: World, tmp_path: Path) -> None:
    caller = world.callers["nobody"]
    with pytest.raises(ClientError) as caught:
        caller.s3.create_bucket(Bucket=f"mine-{uuid.uuid4().hex[:8]}")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    writer = world.callers["writer"]
    # Allowed to create sites by an inline policy, the creator becomes the site's owner.
    root_iam = boto3.client(
        "iam",
        endpoint_url=world.gateway.endpoint,
        aws_access_key_id=world.gateway.access_key,
        aws_secret_access_key=world.gateway.secret_key,
        region_name=world.gateway.region,
    )
    root_iam.put_user_policy(
        UserName=writer.name,
        PolicyName="create-sites",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": "s3:CreateBucket", "Resource": "arn:aws:s3:::team-*"}]}',
    )
    site = f"team-{uuid.uuid4().hex[:8]}"
    writer.s3.create_bucket(Bucket=site)
    writer.s3.put_bucket_acl(Bucket=site, ACL="private")  # an owner's right
    writer.s3.delete_bucket(Bucket=site)
    with pytest.raises(ClientError) as caught:
        writer.s3.create_bucket(Bucket=f"other-{uuid.uuid4().hex[:8]}")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def test_a_revoked_role_stops_working(world: World) -> None:
    run = uuid.uuid4().hex[:8]
    root_iam = boto3.client(
        "iam",
        endpoint_url=world.gateway.endpoint,
        aws_access_key_id=world.gateway.access_key,
        aws_secret_access_key=world.gateway.secret_key,
        region_name=world.gateway.region,
    )
    name = f"temp-{run}"
    root_iam.create_user(UserName=name)
    key = root_iam.create_access_key(UserName=name)["AccessKey"]
    _cli(world.gateway, "sites", "grant", world.site_b, name, "reader")
    s3 = _s3(world.gateway, key["AccessKeyId"], key["SecretAccessKey"])
    assert s3.get_object(Bucket=world.site_b, Key="index.html")["Body"].read() == b"<h1>site</h1>"
    _cli(world.gateway, "sites", "revoke", world.site_b, name)
    world.gateway.app.access.forget(user=name)  # the CLI changed another process's cache
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=world.site_b, Key="index.html")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.server
def test_aws_cli_as_a_worker_uploads_to_its_site_only(world: World, tmp_path: Path) -> None:
    """The README's session with the aws cli: root makes a user and its key with
    ``aws iam``; the worker, a writer of one site, uploads a build there and is refused on
    the other."""
    executable = require_tool("aws")
    home = tmp_path / "aws-home"
    home.mkdir()

    def aws(*args: str, key: str, secret: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_ENDPOINT_URL": world.gateway.endpoint,
            "AWS_DEFAULT_REGION": world.gateway.region,
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
        return subprocess.run(
            [executable, *args], env=env, capture_output=True, text=True, check=False
        )

    root = {"key": world.gateway.access_key, "secret": world.gateway.secret_key}
    name = f"worker-{uuid.uuid4().hex[:8]}"
    assert aws("iam", "create-user", "--user-name", name, **root).returncode == 0
    made = aws("iam", "create-access-key", "--user-name", name, "--output", "json", **root)
    assert made.returncode == 0, made.stderr
    pair = json.loads(made.stdout)["AccessKey"]
    worker = {"key": pair["AccessKeyId"], "secret": pair["SecretAccessKey"]}
    _cli(world.gateway, "sites", "grant", world.site_a, name, "writer")
    build = tmp_path / "b2.tar.gz"
    build.write_bytes(artifact_bytes(f"{world.site_a}/b2"))
    own = aws("s3", "cp", str(build), f"s3://{world.site_a}/builds/b2.tar.gz", **worker)
    assert own.returncode == 0, own.stderr
    other = aws("s3", "cp", str(build), f"s3://{world.site_b}/builds/b2.tar.gz", **worker)
    assert other.returncode != 0
    assert "AccessDenied" in other.stderr
    listed = aws("s3", "ls", f"s3://{world.site_a}/builds/", **worker)
    assert "b2.tar.gz" in listed.stdout
    refused = aws("iam", "list-users", **worker)
    assert refused.returncode != 0
    assert "AccessDenied" in refused.stderr


def test_an_inline_policy_with_a_prefix_condition(world: World) -> None:
    """A user may list one prefix of a site (StringLike on s3:prefix) and read under it, and
    nothing else there; the condition key comes from the request's own query."""
    root_iam = boto3.client(
        "iam",
        endpoint_url=world.gateway.endpoint,
        aws_access_key_id=world.gateway.access_key,
        aws_secret_access_key=world.gateway.secret_key,
        region_name=world.gateway.region,
    )
    name = f"prefix-{uuid.uuid4().hex[:8]}"
    root_iam.create_user(UserName=name)
    key = root_iam.create_access_key(UserName=name)["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListBuilds",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{world.site_b}",
                "Condition": {"StringLike": {"s3:prefix": "builds/*"}},
            },
            {
                "Sid": "ReadBuilds",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{world.site_b}/builds/*",
            },
        ],
    }
    root_iam.put_user_policy(UserName=name, PolicyName="builds", PolicyDocument=json.dumps(policy))
    s3 = _s3(world.gateway, key["AccessKeyId"], key["SecretAccessKey"])
    listed = s3.list_objects_v2(Bucket=world.site_b, Prefix="builds/")
    assert [o["Key"] for o in listed["Contents"]] == ["builds/b1.tar.gz"]
    assert s3.get_object(Bucket=world.site_b, Key="builds/b1.tar.gz")["ContentLength"] > 0
    refused: tuple[Callable[[], Any], ...] = (
        lambda: s3.list_objects_v2(Bucket=world.site_b),
        lambda: s3.list_objects_v2(Bucket=world.site_b, Prefix="index"),
        lambda: s3.get_object(Bucket=world.site_b, Key="index.html"),
        lambda: s3.put_object(Bucket=world.site_b, Key="builds/x", Body=b"x"),
    )
    for call in refused:
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
