"""The IAM API at the S3 endpoint, through boto3's ``iam`` client against the in-process
gateway: every action, IAM's errors, root-only access, and users' keys on S3 requests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lxml import etree

from gateway.settings import Settings
from tests.support.gateway import GatewayEndpoint, InProcessGateway, in_process_gateway
from tests.support.servers import GatewayServer

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


def allowing(action: str, bucket: str) -> str:
    """A policy document allowing ``action`` on the objects of ``bucket``."""
    statement = {"Effect": "Allow", "Action": action, "Resource": f"arn:aws:s3:::{bucket}/*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def client(service: Literal["iam", "s3"], gateway: GatewayEndpoint, key: str, secret: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=gateway.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=gateway.region,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="module")
def iam(gateway: InProcessGateway) -> Any:
    return client("iam", gateway, gateway.access_key, gateway.secret_key)


@pytest.fixture
def user(iam: Any) -> str:
    name = f"user-{uuid.uuid4().hex[:10]}"
    iam.create_user(UserName=name)
    return name


def error_of(call: Callable[..., Any], **params: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        str(response["Error"].get("Type", "")),
    )


def test_create_get_list_and_delete_users(iam: Any) -> None:
    prefix = f"/t{uuid.uuid4().hex[:8]}/"
    names = [f"pager-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    for name in names:
        created = iam.create_user(UserName=name, Path=prefix)["User"]
        assert created["UserName"] == name
        assert created["Path"] == prefix
        assert created["Arn"] == f"arn:aws:iam::000000000000:user{prefix}{name}"
        assert created["UserId"].startswith("AIDA")
    assert iam.get_user(UserName=names[0])["User"]["UserId"].startswith("AIDA")
    first = iam.list_users(PathPrefix=prefix, MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == sorted(names)[:2]
    assert first["IsTruncated"] is True
    rest = iam.list_users(PathPrefix=prefix, MaxItems=2, Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == sorted(names)[2:]
    assert rest["IsTruncated"] is False
    paginated = iam.get_paginator("list_users").paginate(
        PathPrefix=prefix, PaginationConfig={"PageSize": 1}
    )
    assert sorted(u["UserName"] for page in paginated for u in page["Users"]) == sorted(names)
    iam.delete_user(UserName=names[0])
    assert error_of(iam.get_user, UserName=names[0]) == ("NoSuchEntity", 404, "Sender")


def test_get_user_without_a_name_is_the_caller(iam: Any) -> None:
    root = iam.get_user()["User"]
    assert root["Arn"] == "arn:aws:iam::000000000000:root"


def test_user_errors(iam: Any, user: str) -> None:
    assert error_of(iam.create_user, UserName=user) == ("EntityAlreadyExists", 409, "Sender")
    assert error_of(iam.create_user, UserName="bad name") == ("ValidationError", 400, "Sender")
    assert error_of(iam.delete_user, UserName="no-such-user")[:2] == ("NoSuchEntity", 404)
    assert error_of(iam.list_users, MaxItems=5000)[:2] == ("ValidationError", 400)


def test_access_keys(iam: Any, user: str) -> None:
    first = iam.create_access_key(UserName=user)["AccessKey"]
    assert first["UserName"] == user
    assert first["Status"] == "Active"
    assert first["AccessKeyId"].startswith("AKIA")
    assert len(first["SecretAccessKey"]) == 40
    second = iam.create_access_key(UserName=user)["AccessKey"]
    assert error_of(iam.create_access_key, UserName=user) == ("LimitExceeded", 409, "Sender")
    listed = iam.list_access_keys(UserName=user)
    assert {k["AccessKeyId"] for k in listed["AccessKeyMetadata"]} == {
        first["AccessKeyId"],
        second["AccessKeyId"],
    }
    assert all("SecretAccessKey" not in k for k in listed["AccessKeyMetadata"])
    assert listed["IsTruncated"] is False
    iam.update_access_key(UserName=user, AccessKeyId=first["AccessKeyId"], Status="Inactive")
    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    }
    assert statuses[first["AccessKeyId"]] == "Inactive"
    assert error_of(
        iam.update_access_key, UserName=user, AccessKeyId=first["AccessKeyId"], Status="Off"
    )[:2] == ("ValidationError", 400)
    iam.delete_access_key(UserName=user, AccessKeyId=first["AccessKeyId"])
    assert error_of(iam.delete_access_key, UserName=user, AccessKeyId=first["AccessKeyId"]) == (
        "NoSuchEntity",
        404,
        "Sender",
    )
    assert error_of(iam.list_access_keys, UserName="no-such-user")[:2] == ("NoSuchEntity", 404)
    assert error_of(iam.create_access_key)[:2] == ("ValidationError", 400)  # root's: config


def test_delete_user_conflicts_while_it_has_keys_or_policies(iam: Any, user: str) -> None:
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    assert error_of(iam.delete_user, UserName=user) == ("DeleteConflict", 409, "Sender")
    iam.delete_access_key(UserName=user, AccessKeyId=key)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=POLICY)
    assert error_of(iam.delete_user, UserName=user)[:2] == ("DeleteConflict", 409)
    iam.delete_user_policy(UserName=user, PolicyName="read")
    iam.delete_user(UserName=user)


def test_inline_policies(iam: Any, user: str) -> None:
    iam.put_user_policy(UserName=user, PolicyName="b-read", PolicyDocument=POLICY)
    iam.put_user_policy(UserName=user, PolicyName="a-read", PolicyDocument=POLICY)
    got = iam.get_user_policy(UserName=user, PolicyName="b-read")
    assert got["UserName"] == user
    assert got["PolicyName"] == "b-read"
    assert got["PolicyDocument"] == json.loads(POLICY)  # botocore decodes IAM's URL-encoding
    page = iam.list_user_policies(UserName=user, MaxItems=1)
    assert page["PolicyNames"] == ["a-read"]
    assert page["IsTruncated"] is True
    rest = iam.list_user_policies(UserName=user, Marker=page["Marker"])
    assert rest["PolicyNames"] == ["b-read"]
    assert rest["IsTruncated"] is False
    assert error_of(
        iam.put_user_policy, UserName=user, PolicyName="bad", PolicyDocument="{not json"
    ) == ("MalformedPolicyDocument", 400, "Sender")
    big = json.dumps({"Version": "2012-10-17", "Statement": [], "Sid": "x" * 2100})
    assert error_of(iam.put_user_policy, UserName=user, PolicyName="big", PolicyDocument=big)[
        :2
    ] == ("LimitExceeded", 409)
    assert error_of(iam.get_user_policy, UserName=user, PolicyName="none")[:2] == (
        "NoSuchEntity",
        404,
    )
    iam.delete_user_policy(UserName=user, PolicyName="a-read")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["b-read"]
    assert error_of(iam.delete_user_policy, UserName=user, PolicyName="a-read")[:2] == (
        "NoSuchEntity",
        404,
    )


def test_iam_calls_are_decided_by_the_callers_policies(
    gateway: InProcessGateway, iam: Any, user: str
) -> None:
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = client("iam", gateway, key["AccessKeyId"], key["SecretAccessKey"])
    assert error_of(theirs.list_users) == ("AccessDenied", 403, "Sender")
    assert error_of(theirs.create_user, UserName=f"{user}-2")[:2] == ("AccessDenied", 403)
    assert error_of(theirs.get_user)[:2] == ("AccessDenied", 403)
    # A user allowed to manage its own keys, by the ${aws:username} variable.
    own_keys = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["iam:GetUser", "iam:*AccessKey*"],
                "Resource": "arn:aws:iam::000000000000:user/${aws:username}",
            }
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="own-keys", PolicyDocument=json.dumps(own_keys))
    assert theirs.get_user()["User"]["UserName"] == user
    listed = theirs.list_access_keys()["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert error_of(theirs.get_user, UserName="someone-else")[:2] == ("AccessDenied", 403)
    assert error_of(theirs.list_users)[:2] == ("AccessDenied", 403)
    assert error_of(theirs.put_user_policy, UserName=user, PolicyName="more", PolicyDocument="{}")[
        :2
    ] == ("AccessDenied", 403)
    unknown = client("iam", gateway, "AKIAUNKNOWN000000000", "x" * 40)
    assert error_of(unknown.list_users)[:2] == ("InvalidClientTokenId", 403)
    wrong_secret = client("iam", gateway, gateway.access_key, "not-the-secret")
    assert error_of(wrong_secret.list_users)[:2] == ("SignatureDoesNotMatch", 403)


def test_a_users_keys_authenticate_s3_until_inactive_or_deleted(
    gateway: InProcessGateway, iam: Any, user: str, bucket: str, s3: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello")
    iam.put_user_policy(
        UserName=user, PolicyName="read", PolicyDocument=allowing("s3:GetObject", bucket)
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = client("s3", gateway, key["AccessKeyId"], key["SecretAccessKey"])
    assert theirs.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello"
    presigned_v2 = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=gateway.region,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    ).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hello.txt"})
    assert "AWSAccessKeyId=" in presigned_v2
    assert httpx.get(presigned_v2).content == b"hello"
    presigned_v4 = theirs.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "hello.txt"}
    )
    assert httpx.get(presigned_v4).content == b"hello"

    # A policy removed over IAM applies at once on this replica (the decision's cache forgets).
    iam.delete_user_policy(UserName=user, PolicyName="read")
    assert error_of(theirs.get_object, Bucket=bucket, Key="hello.txt")[:2] == ("AccessDenied", 403)
    policy = allowing("s3:GetObject", bucket)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=policy)
    assert theirs.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello"

    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert error_of(theirs.get_object, Bucket=bucket, Key="hello.txt")[:2] == (
        "InvalidAccessKeyId",
        403,
    )
    assert httpx.get(presigned_v4).status_code == 403
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert theirs.head_object(Bucket=bucket, Key="hello.txt")["ContentLength"] == 5
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    assert error_of(theirs.head_object, Bucket=bucket, Key="hello.txt")[:2] == (
        "403",
        403,
    )


def signed(gateway: InProcessGateway, body: str, service: str = "iam") -> httpx.Response:
    request = AWSRequest(
        "POST",
        gateway.endpoint + "/",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(
        Credentials(gateway.access_key, gateway.secret_key), service, gateway.region
    ).add_auth(request)
    return httpx.post(
        gateway.endpoint + "/", content=request.body, headers=dict(request.headers.items())
    )


def code_of(response: httpx.Response) -> str:
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NAMESPACE}}}ErrorResponse"
    assert root.findtext(f"{{{NAMESPACE}}}RequestId")
    return str(root.findtext(f"{{{NAMESPACE}}}Error/{{{NAMESPACE}}}Code"))


def test_the_query_protocol_refuses_what_it_does_not_know(gateway: InProcessGateway) -> None:
    answer = signed(gateway, "Action=ListUsers&Version=2010-05-08")
    assert answer.status_code == 200
    assert b"<ListUsersResponse" in answer.content
    assert b"<RequestId>" in answer.content
    unknown = signed(gateway, "Action=Frobnicate&Version=2010-05-08")
    assert (unknown.status_code, code_of(unknown)) == (400, "InvalidAction")
    wrong_version = signed(gateway, "Action=ListUsers&Version=2006-03-01")
    assert (wrong_version.status_code, code_of(wrong_version)) == (400, "InvalidAction")
    no_action = signed(gateway, "Version=2010-05-08")
    assert (no_action.status_code, code_of(no_action)) == (400, "MissingAction")
    s3_scoped = signed(gateway, "Action=ListUsers&Version=2010-05-08", service="s3")
    assert (s3_scoped.status_code, code_of(s3_scoped)) == (400, "IncompleteSignature")
    unsigned = httpx.post(
        gateway.endpoint + "/",
        content=b"Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (unsigned.status_code, code_of(unsigned)) == (403, "AccessDenied")
    huge = signed(gateway, "Action=ListUsers&Version=2010-05-08&Pad=" + "x" * 70_000)
    assert (huge.status_code, code_of(huge)) == (413, "RequestEntityTooLarge")


def test_a_tampered_body_does_not_pass(gateway: InProcessGateway, iam: Any) -> None:
    request = AWSRequest(
        "POST",
        gateway.endpoint + "/",
        data=b"Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    SigV4Auth(Credentials(gateway.access_key, gateway.secret_key), "iam", gateway.region).add_auth(
        request
    )
    tampered = httpx.post(
        gateway.endpoint + "/",
        content=b"Action=CreateUser&Version=2010-05-08&UserName=mallory",
        headers=dict(request.headers.items()),
    )
    assert (tampered.status_code, code_of(tampered)) == (403, "SignatureDoesNotMatch")
    assert error_of(iam.get_user, UserName="mallory")[0] == "NoSuchEntity"


def test_iam_on_a_gateway_process(process_gateway: GatewayServer) -> None:
    """The served command (``pagewright-gateway serve``, filesystem store): a user made over
    IAM signs S3 requests with its key; the key sealed in the catalog, never plain."""
    root_iam = client(
        "iam", process_gateway, process_gateway.access_key, process_gateway.secret_key
    )
    name = f"proc-{uuid.uuid4().hex[:8]}"
    root_iam.create_user(UserName=name)
    key = root_iam.create_access_key(UserName=name)["AccessKey"]
    root_s3 = client("s3", process_gateway, process_gateway.access_key, process_gateway.secret_key)
    bucket = f"iam-{uuid.uuid4().hex[:12]}"
    root_s3.create_bucket(Bucket=bucket)
    policy = allowing("s3:PutObject", bucket)
    root_iam.put_user_policy(UserName=name, PolicyName="write", PolicyDocument=policy)
    theirs = client("s3", process_gateway, key["AccessKeyId"], key["SecretAccessKey"])
    theirs.put_object(Bucket=bucket, Key="by-user", Body=b"x")
    assert root_s3.head_object(Bucket=bucket, Key="by-user")["ContentLength"] == 1
    for stored in process_gateway.data_dir.glob("catalog.sqlite3*"):  # the WAL too
        assert key["SecretAccessKey"].encode() not in stored.read_bytes()
    assert (process_gateway.data_dir / "master.key").is_file()
    iam_denied = client("s3", process_gateway, key["AccessKeyId"], key["SecretAccessKey"])
    assert error_of(iam_denied.get_object, Bucket=bucket, Key="by-user")[:2] == (
        "AccessDenied",
        403,
    )  # its policy allows writing only
    root_iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    assert error_of(theirs.list_buckets)[:2] == ("InvalidAccessKeyId", 403)


def test_failed_iam_signatures_throttle_their_source(tmp_path: Path) -> None:
    settings = Settings(log_level="warning", auth_failure_limit=2, auth_failure_window_seconds=600)
    with in_process_gateway(tmp_path / "data", settings) as server:
        root = client("iam", server, server.access_key, server.secret_key)
        wrong = client("iam", server, server.access_key, "not-the-secret")
        assert root.list_users()["Users"] == []
        assert error_of(wrong.list_users)[0] == "SignatureDoesNotMatch"
        assert error_of(wrong.list_users)[0] == "SignatureDoesNotMatch"
        with pytest.raises(ClientError) as caught:
            root.list_users()  # the right key too, from this source, for the window
        response = caught.value.response
        assert response["Error"]["Code"] == "Throttling"
        assert int(response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) > 500
