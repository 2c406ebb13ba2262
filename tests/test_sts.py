"""STS AssumeRoleWithWebIdentity end to end: a local OIDC issuer, boto3's STS client against
an in-process gateway, then S3 requests signed with the temporary credentials (header-signed,
presigned, SigV2), and the artifact API taking the same token as a Bearer credential."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet
from lxml import etree

from gateway.query.sts import NS, StsService, assume_role_with_web_identity
from gateway.settings import Settings
from policy.oidc import TokenVerifier
from policy.oidc_config import parse_issuers
from policy.principals import Principal, Role
from policy.secret_box import SecretBox
from policy.sessions import mint_session
from tests.support.artifact_api import artifact_bytes
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.oidc_issuer import LocalIssuer, local_issuer, new_key
from tests.support.signing import Signer
from tests.support.waiting import wait_until

ROLE_ARN = "arn:aws:iam::000000000000:role/ci-deploy"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: Caps every session: whatever a token's roles grant, never a delete.
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                "Resource": "*",
            }
        ],
    }
)
API = "/_pagewright/v1"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with local_issuer() as served:
        yield served


@pytest.fixture(scope="module")
def gateway(issuer: LocalIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(
        log_level="warning",
        oidc_issuers=parse_issuers([issuer.table(default_role="writer")]),
        sts_role_policy=ROLE_POLICY,
    )
    with in_process_gateway(tmp_path_factory.mktemp("sts") / "data", settings) as served:
        root = make_s3_client(served)
        for bucket in ("docs", "blog", "other"):
            root.create_bucket(Bucket=bucket)
        root.put_object(Bucket="other", Key="secret.txt", Body=b"not yours")
        yield served


def sts_client(gateway: InProcessGateway) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=gateway.endpoint,
        region_name=gateway.region,
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1}),
    )


def assume(gateway: InProcessGateway, token: str, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = sts_client(gateway).assume_role_with_web_identity(
        RoleArn=ROLE_ARN, RoleSessionName="build-42", WebIdentityToken=token, **params
    )
    return answer


def session_s3(gateway: InProcessGateway, credentials: dict[str, Any], **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        region_name=gateway.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_ci_job_uploads_with_temporary_credentials(
    gateway: InProcessGateway, issuer: LocalIssuer
) -> None:
    answer = assume(gateway, issuer.token(sub="repo:site-docs", sites=["docs"]))
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert len(credentials["AccessKeyId"]) == 20
    lifetime = credentials["Expiration"] - datetime.now(UTC)
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)
    assert answer["SubjectFromWebIdentityToken"] == "repo:site-docs"
    assert answer["Provider"] == issuer.url
    assert answer["Audience"] == "pagewright-gateway"
    # The ARN policies and the audit log know the session by, after the token's principal.
    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::000000000000:assumed-role/web-identity/oidc:repo:site-docs"
    )
    assert answer["AssumedRoleUser"]["AssumedRoleId"].endswith(":build-42")

    s3 = session_s3(gateway, credentials)
    s3.put_object(Bucket="docs", Key="builds/1/index.html", Body=b"<h1>docs</h1>")
    assert s3.get_object(Bucket="docs", Key="builds/1/index.html")["Body"].read() == (
        b"<h1>docs</h1>"
    )
    # Scoped to the token's sites, and capped by the role policy (no delete, though a
    # writer may delete).
    refused: list[tuple[str, dict[str, Any]]] = [
        ("put_object", {"Bucket": "blog", "Key": "x", "Body": b"x"}),
        ("get_object", {"Bucket": "other", "Key": "secret.txt"}),
        ("copy_object", {"Bucket": "docs", "Key": "stolen", "CopySource": "other/secret.txt"}),
        ("delete_object", {"Bucket": "docs", "Key": "builds/1/index.html"}),
    ]
    for method, params in refused:
        with pytest.raises(ClientError) as excinfo:
            getattr(s3, method)(**params)
        assert error_code(excinfo) == ("AccessDenied", 403), method


def test_a_build_uploaded_with_sts_is_listed_for_the_same_token(
    gateway: InProcessGateway, issuer: LocalIssuer
) -> None:
    token = issuer.token(sub="ci", sites=["docs"])
    credentials = assume(gateway, token)["Credentials"]
    session_s3(gateway, credentials).put_object(
        Bucket="docs", Key="builds/7.tar.gz", Body=artifact_bytes("seven")
    )
    listed = httpx.get(
        f"{gateway.endpoint}{API}/sites/docs/artifacts",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert listed.status_code == 200, listed.text
    assert "7" in [item["build_id"] for item in listed.json()["items"]]


def test_a_bucket_policy_names_a_session_by_its_arn(
    gateway: InProcessGateway, issuer: LocalIssuer
) -> None:
    answer = assume(gateway, issuer.token(sub="release-bot", sites=["docs"]))
    arn = answer["AssumedRoleUser"]["Arn"]
    s3 = session_s3(gateway, answer["Credentials"])
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="blog", Key="release.txt", Body=b"v1")
    assert error_code(excinfo) == ("AccessDenied", 403)
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": arn},
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::blog/release.txt",
            }
        ],
    }
    root = make_s3_client(gateway)
    root.put_bucket_policy(Bucket="blog", Policy=json.dumps(grant))
    try:
        s3.put_object(Bucket="blog", Key="release.txt", Body=b"v1")
    finally:
        root.delete_bucket_policy(Bucket="blog")


def test_a_multipart_upload_with_temporary_credentials(
    gateway: InProcessGateway, issuer: LocalIssuer
) -> None:
    credentials = assume(gateway, issuer.token(sites=["docs"]))["Credentials"]
    s3 = session_s3(gateway, credentials)
    build = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024**2)
    s3.upload_fileobj(io.BytesIO(build), "docs", "assets/video.bin", Config=config)
    head = s3.head_object(Bucket="docs", Key="assets/video.bin")
    assert head["ContentLength"] == len(build)
    assert head["ETag"].endswith('-2"')


def test_presigned_and_sigv2_requests_carry_the_token(
    gateway: InProcessGateway, issuer: LocalIssuer
) -> None:
    credentials = assume(gateway, issuer.token(sites={"docs": "owner"}))["Credentials"]
    session_s3(gateway, credentials).put_object(Bucket="docs", Key="p.txt", Body=b"presigned")
    url = session_s3(gateway, credentials, signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "docs", "Key": "p.txt"}, ExpiresIn=60
    )
    assert "X-Amz-Security-Token=" in url
    assert httpx.get(url).content == b"presigned"
    v2 = session_s3(gateway, credentials, signature_version="s3")
    assert v2.get_object(Bucket="docs", Key="p.txt")["Body"].read() == b"presigned"
    v2_url = v2.generate_presigned_url(
        "get_object", Params={"Bucket": "docs", "Key": "p.txt"}, ExpiresIn=60
    )
    assert "AWSAccessKeyId=ASIA" in v2_url
    assert httpx.get(v2_url).content == b"presigned"


def test_the_token_header_must_be_signed(gateway: InProcessGateway, issuer: LocalIssuer) -> None:
    credentials = assume(gateway, issuer.token())["Credentials"]
    signer = Signer(
        replace(
            gateway,
            access_key=credentials["AccessKeyId"],
            secret_key=credentials["SecretAccessKey"],
        )
    )
    token = {"x-amz-security-token": credentials["SessionToken"]}
    now = datetime.now(UTC)
    signed, *_ = signer.sign("GET", "/docs/missing", EMPTY_SHA256, token, now)
    response = httpx.get(gateway.endpoint + "/docs/missing", headers=signed)
    assert response.status_code == 404  # authenticated; the key does not exist
    unsigned, *_ = signer.sign("GET", "/docs/missing", EMPTY_SHA256, {}, now)
    response = httpx.get(gateway.endpoint + "/docs/missing", headers={**unsigned, **token})
    assert response.status_code == 403
    root = etree.fromstring(response.content)
    assert root.findtext("Code") == "AccessDenied"
    assert root.findtext("HeadersNotSigned") == "x-amz-security-token"


def test_a_reader_session_only_reads(gateway: InProcessGateway, issuer: LocalIssuer) -> None:
    make_s3_client(gateway).put_object(Bucket="blog", Key="post.html", Body=b"post")
    credentials = assume(gateway, issuer.token(sites={"blog": "reader"}))["Credentials"]
    s3 = session_s3(gateway, credentials)
    assert s3.get_object(Bucket="blog", Key="post.html")["Body"].read() == b"post"
    with pytest.raises(ClientError) as excinfo:
        s3.delete_object(Bucket="blog", Key="post.html")
    assert error_code(excinfo) == ("AccessDenied", 403)


def test_a_tampered_or_missing_session_token(
    gateway: InProcessGateway, issuer: LocalIssuer
) -> None:
    credentials = assume(gateway, issuer.token())["Credentials"]
    token = credentials["SessionToken"]
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    s3 = session_s3(gateway, {**credentials, "SessionToken": tampered})
    with pytest.raises(ClientError) as excinfo:
        s3.head_bucket(Bucket="docs")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="docs", Key="anything")
    assert error_code(excinfo) == ("InvalidToken", 400)

    # Another session's token does not vouch for these keys.
    other = assume(gateway, issuer.token())["Credentials"]
    s3 = session_s3(gateway, {**credentials, "SessionToken": other["SessionToken"]})
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="docs", Key="anything")
    assert error_code(excinfo) == ("InvalidToken", 400)

    # Temporary keys without their token are unknown; root's keys with a token are refused.
    bare = {**credentials, "SessionToken": None}
    with pytest.raises(ClientError) as excinfo:
        session_s3(gateway, bare).get_object(Bucket="docs", Key="anything")
    assert error_code(excinfo) == ("InvalidAccessKeyId", 403)
    root_with_token = {
        "AccessKeyId": gateway.access_key,
        "SecretAccessKey": gateway.secret_key,
        "SessionToken": token,
    }
    with pytest.raises(ClientError) as excinfo:
        session_s3(gateway, root_with_token).get_object(Bucket="docs", Key="anything")
    assert error_code(excinfo) == ("InvalidToken", 400)


def test_an_expired_session(gateway: InProcessGateway) -> None:
    assert gateway.app.box is not None
    principal = Principal("oidc:old-job", "session", {"docs": Role.writer})
    session = mint_session(gateway.app.box, principal, datetime.now(UTC) - timedelta(seconds=1))
    credentials = {
        "AccessKeyId": session.credential.access_key,
        "SecretAccessKey": session.credential.secret_key,
        "SessionToken": session.session_token,
    }
    with pytest.raises(ClientError) as excinfo:
        session_s3(gateway, credentials).get_object(Bucket="docs", Key="anything")
    assert error_code(excinfo) == ("ExpiredToken", 400)


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "someone-else"}, "InvalidIdentityToken"),
        ({"lifetime": -600}, "ExpiredTokenException"),
        ({"iss": "https://elsewhere.example"}, "InvalidIdentityToken"),
        ({"sites": []}, "AccessDenied"),
        ({"sites": {"docs": "admin"}}, "InvalidIdentityToken"),
    ],
)
def test_refused_tokens(
    gateway: InProcessGateway, issuer: LocalIssuer, claims: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        assume(gateway, issuer.token(**claims))
    assert excinfo.value.response["Error"]["Code"] == code
    expected = 403 if code == "AccessDenied" else 400
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected


def test_a_token_signed_by_an_unknown_key(gateway: InProcessGateway, issuer: LocalIssuer) -> None:
    with pytest.raises(ClientError) as excinfo:
        assume(gateway, issuer.token(new_key()))
    assert excinfo.value.response["Error"]["Code"] == "InvalidIdentityToken"


def form(**params: str) -> dict[str, str]:
    return {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": ROLE_ARN,
        "RoleSessionName": "build-42",
        **params,
    }


def sts_error(response: httpx.Response) -> tuple[int, str | None]:
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NS}}}ErrorResponse"
    assert root.findtext(f"{{{NS}}}RequestId") == response.headers["x-amz-request-id"]
    return response.status_code, root.findtext(f"{{{NS}}}Error/{{{NS}}}Code")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"DurationSeconds": "899"}, 400, "ValidationError"),
        ({"DurationSeconds": "3601"}, 400, "ValidationError"),  # above sts_max_session_seconds
        ({"DurationSeconds": "soon"}, 400, "ValidationError"),
        ({"RoleArn": "not-an-arn"}, 400, "ValidationError"),
        ({"RoleSessionName": "x"}, 400, "ValidationError"),
        ({"Policy": "{}"}, 400, "ValidationError"),
        ({"Action": "AssumeRole"}, 400, "InvalidAction"),
        ({"WebIdentityToken": "not.a.token"}, 400, "InvalidIdentityToken"),
    ],
)
def test_request_validation(
    gateway: InProcessGateway,
    issuer: LocalIssuer,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    body = form(**{"WebIdentityToken": issuer.token(), **params})
    response = httpx.post(gateway.endpoint + "/", data=body)
    assert sts_error(response) == (status, code)


def test_every_exchange_is_audited(
    gateway: InProcessGateway, issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pagewright.audit")
    granted = httpx.post(gateway.endpoint + "/", data=form(WebIdentityToken=issuer.token()))
    refused = httpx.post(
        gateway.endpoint + "/", data=form(WebIdentityToken=issuer.token(aud="other"))
    )
    names = ("principal", "decision", "status", "operation", "action", "policy", "source")
    lines = {
        getattr(r, "request_id", None): {n: getattr(r, n, None) for n in (*names, "statement")}
        for r in caplog.records
        if r.name == "pagewright.audit"
    }
    assert lines[granted.headers["x-amz-request-id"]] == {
        "principal": "oidc:ci-job",
        "decision": "allow",
        "status": 200,
        "operation": "AssumeRoleWithWebIdentity",
        "action": "sts:AssumeRoleWithWebIdentity",
        "policy": f"web-identity:{issuer.url}",
        "source": "127.0.0.1",
        "statement": None,
    }
    refusal = lines[refused.headers["x-amz-request-id"]]
    assert (refusal["principal"], refusal["decision"], refusal["statement"]) == (
        "-",
        "deny",
        "InvalidIdentityToken",
    )
    assert refusal["status"] == 400


def test_duration_seconds_sets_the_expiry(gateway: InProcessGateway, issuer: LocalIssuer) -> None:
    response = httpx.post(
        gateway.endpoint + "/",
        data=form(WebIdentityToken=issuer.token(), DurationSeconds="900"),
    )
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NS}}}AssumeRoleWithWebIdentityResponse"
    expiration = root.findtext(f".//{{{NS}}}Expiration")
    assert expiration is not None
    expires = datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert root.findtext(f".//{{{NS}}}RequestId") == response.headers["x-amz-request-id"]


def test_the_artifact_api_takes_the_token_as_a_bearer(
    gateway: InProcessGateway, issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{gateway.endpoint}{API}/sites/docs/artifacts"
    caplog.set_level(logging.INFO, logger="pagewright.access")
    bearer = {"Authorization": f"Bearer {issuer.token(sub='job-7', sites=['docs'])}"}
    valid = httpx.get(url, headers=bearer)
    assert valid.status_code == 200, valid.text
    assert "items" in valid.json()
    # The token's sites bound what it may do: another site is refused, not unauthenticated.
    elsewhere = httpx.get(f"{gateway.endpoint}{API}/sites/blog/artifacts", headers=bearer)
    assert elsewhere.status_code == 403, elsewhere.text
    assert elsewhere.json()["error"]["code"] == "AccessDenied"
    # The access line (written once the reply is sent) names the token's principal.
    assert wait_until(
        lambda: "oidc:job-7" in [getattr(r, "principal", None) for r in caplog.records]
    )

    for token in (
        issuer.token(aud="someone-else"),
        issuer.token(new_key(kid=issuer.keys[0].kid)),
        issuer.token(lifetime=-600),
    ):
        refused = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "Unauthorized"
        assert "invalid_token" in refused.headers["www-authenticate"]


def test_without_issuers_sts_is_off(tmp_path: Path, issuer: LocalIssuer) -> None:
    with in_process_gateway(tmp_path / "data") as plain:
        assert plain.app.box is None
        response = httpx.post(plain.endpoint + "/", data=form(WebIdentityToken=issuer.token()))
        assert sts_error(response) == (403, "AccessDenied")
        url = f"{plain.endpoint}{API}/sites/docs/artifacts"
        bearer = httpx.get(url, headers={"Authorization": f"Bearer {issuer.token()}"})
        assert bearer.status_code == 401


def test_settings_reach_the_gateway(tmp_path: Path, issuer: LocalIssuer) -> None:
    settings = Settings(
        log_level="warning",
        oidc_issuers=parse_issuers([issuer.table()]),
        sts_max_session_seconds=7200,
    )
    with in_process_gateway(tmp_path / "data", replace(settings)) as served:
        answer = assume(served, issuer.token(), DurationSeconds=7200)
        lifetime = answer["Credentials"]["Expiration"] - datetime.now(UTC)
        assert timedelta(minutes=119) < lifetime <= timedelta(hours=2)
        assert (tmp_path / "data" / "master.key").exists()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_unreachable_issuer_is_an_idp_communication_error() -> None:
    with local_issuer() as down:
        down.down = True
        sts = StsService(
            TokenVerifier(parse_issuers([down.table()])),
            SecretBox.from_key(Fernet.generate_key()),
        )
        params = form(WebIdentityToken=down.token())
        status, body = await assume_role_with_web_identity(params, "REQUEST1", sts)
    root = etree.fromstring(body)
    assert status == 400
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Code") == "IDPCommunicationError"
    assert root.findtext(f"{{{NS}}}Error/{{{NS}}}Type") == "Sender"
    assert root.findtext(f"{{{NS}}}RequestId") == "REQUEST1"


def test_a_source_throttled_for_failed_authentications_is_refused_sts_too(
    tmp_path: Path, issuer: LocalIssuer
) -> None:
    settings = Settings(
        log_level="warning",
        oidc_issuers=parse_issuers([issuer.table()]),
        auth_failure_limit=2,
    )
    with in_process_gateway(tmp_path / "data", settings) as served:
        forger = make_s3_client(replace(served, secret_key="not-the-secret"))
        for _ in range(2):
            with pytest.raises(ClientError):
                forger.head_bucket(Bucket="docs")
        response = httpx.post(served.endpoint + "/", data=form(WebIdentityToken=issuer.token()))
        assert response.status_code == 503
        assert "Retry-After" in response.headers
    # Refused tokens count as failed authentications too, and then S3 is refused as well.
    with in_process_gateway(tmp_path / "again", settings) as served:
        wrong = form(WebIdentityToken=issuer.token(aud="someone-else"))
        for _ in range(2):
            assert httpx.post(served.endpoint + "/", data=wrong).status_code == 400
        with pytest.raises(ClientError) as excinfo:
            make_s3_client(served).head_bucket(Bucket="docs")
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
