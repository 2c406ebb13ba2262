"""One access line per request, with the same fields on the S3 endpoint and the artifact
API (gateway.access_log), request ids in replies and in the lines a request causes, and no
secret in the log: against a real gateway logging JSON at info, its stderr parsed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.artifact_api import API, artifact_bytes, create_api_key
from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer, running_gateway
from tests.support.waiting import wait_until

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

FIELDS = {
    "request_id",
    "principal",
    "operation",
    "bucket",
    "method",
    "status",
    "bytes_received",
    "bytes_sent",
    "duration_ms",
}


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    directory = tmp_path_factory.mktemp("logged")
    with running_gateway(directory / "data", env={"PWG_LOG_LEVEL": "info"}) as server:
        yield server


@pytest.fixture(scope="module")
def api_key(logged: GatewayServer) -> str:
    return create_api_key(logged)


def log_records(server: GatewayServer) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{")
    ]


def access_line(server: GatewayServer, request_id: str) -> dict[str, Any]:
    """The one access line of ``request_id`` (fails if there are none or several). The
    line is written once the reply is sent, so it may land just after the client got it."""

    def lines() -> list[dict[str, Any]]:
        return [
            r
            for r in log_records(server)
            if r["message"] == "request" and r.get("request_id") == request_id
        ]

    wait_until(lambda: bool(lines()))
    found = lines()
    assert len(found) == 1, found
    assert set(found[0]) >= FIELDS
    return found[0]


def request_id(error_or_response: Any) -> str:
    metadata = (
        error_or_response.response["ResponseMetadata"]
        if isinstance(error_or_response, ClientError)
        else error_or_response["ResponseMetadata"]
    )
    value: str = metadata["RequestId"]
    return value


def test_s3_requests_have_one_access_line_with_bucket_and_bytes(
    logged: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(logged)
    bucket = bucket_name()
    created = s3.create_bucket(Bucket=bucket)
    body = b"b" * 5000
    put = s3.put_object(Bucket=bucket, Key="dir/page.html", Body=body)
    got = s3.get_object(Bucket=bucket, Key="dir/page.html")
    assert got["Body"].read() == body
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="absent")

    line = access_line(logged, request_id(created))
    assert (line["operation"], line["bucket"], line["status"]) == ("CreateBucket", bucket, 200)
    line = access_line(logged, request_id(put))
    assert (line["operation"], line["bucket"], line["method"]) == ("PutObject", bucket, "PUT")
    assert (line["status"], line["principal"]) == (200, "root")
    assert line["bytes_received"] >= len(body)
    assert line["duration_ms"] >= 0
    line = access_line(logged, request_id(got))
    assert (line["operation"], line["status"], line["bytes_sent"]) == ("GetObject", 200, 5000)
    assert line["bytes_received"] == 0
    line = access_line(logged, request_id(missing.value))
    assert (line["operation"], line["bucket"], line["status"]) == ("GetObject", bucket, 404)


def test_api_requests_have_one_access_line_and_a_request_id(
    logged: GatewayServer, api_key: str, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(logged)
    site = bucket_name()
    s3.create_bucket(Bucket=site)
    s3.put_object(Bucket=site, Key="builds/1.tar.gz", Body=artifact_bytes("one"))
    base = f"{logged.endpoint}{API}"
    auth = {"Authorization": f"Bearer {api_key}"}

    listed = httpx.get(f"{base}/sites/{site}/artifacts", headers=auth)
    assert listed.status_code == 200
    line = access_line(logged, listed.headers["x-amz-request-id"])
    assert (line["operation"], line["bucket"], line["principal"]) == ("ListArtifacts", site, "root")
    assert (line["method"], line["status"]) == ("GET", 200)
    assert line["bytes_sent"] == len(listed.content)
    assert line["bytes_received"] == 0

    body = {"status": "success"}
    patched = httpx.patch(f"{base}/sites/{site}/artifacts/1", headers=auth, json=body)
    assert patched.status_code == 200
    line = access_line(logged, patched.headers["x-amz-request-id"])
    assert (line["operation"], line["method"]) == ("UpdateArtifact", "PATCH")
    assert line["bytes_received"] == len(patched.request.content)

    missing = httpx.get(f"{base}/sites/{site}/artifacts/404", headers=auth)
    assert missing.status_code == 404
    rid = missing.headers["x-amz-request-id"]
    assert missing.json()["error"]["request_id"] == rid
    line = access_line(logged, rid)
    assert (line["operation"], line["bucket"], line["status"]) == ("GetArtifact", site, 404)

    anonymous = httpx.get(f"{base}/sites/{site}/artifacts")
    assert anonymous.status_code == 401
    rid = anonymous.headers["x-amz-request-id"]
    assert anonymous.json()["error"]["request_id"] == rid
    line = access_line(logged, rid)
    assert (line["operation"], line["principal"], line["status"]) == ("ListArtifacts", "-", 401)


def test_a_rejected_artifact_line_carries_the_request_id(
    logged: GatewayServer, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(logged)
    site = bucket_name()
    s3.create_bucket(Bucket=site)
    with pytest.raises(ClientError) as rejected:
        s3.put_object(Bucket=site, Key="builds/bad.tar.gz", Body=b"not a gzip stream")
    rid = request_id(rejected.value)
    lines = [r for r in log_records(logged) if r["message"] == "artifact rejected"]
    assert [(r["request_id"], r["site"], r["key"]) for r in lines if r["site"] == site] == [
        (rid, site, "builds/bad.tar.gz")
    ]
    assert access_line(logged, rid)["status"] == 400


def test_retention_deletes_carry_the_request_id_of_the_upload(
    logged: GatewayServer, api_key: str, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(logged)
    site = bucket_name()
    s3.create_bucket(Bucket=site)
    retention = httpx.put(
        f"{logged.endpoint}{API}/sites/{site}/retention",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"keep_last": 1},
    )
    assert retention.status_code == 200
    s3.put_object(Bucket=site, Key="builds/1.tar.gz", Body=artifact_bytes("1"))
    second = s3.put_object(Bucket=site, Key="builds/2.tar.gz", Body=artifact_bytes("2"))
    deleted = [
        r
        for r in log_records(logged)
        if r["message"].startswith("retention: deleted") and r.get("site") == site
    ]
    assert [(r["request_id"], r["key"]) for r in deleted] == [
        (request_id(second), "builds/1.tar.gz")
    ]


def test_no_secret_header_or_query_string_is_logged(
    logged: GatewayServer, api_key: str, bucket_name: Callable[[], str]
) -> None:
    s3 = make_s3_client(logged)
    bucket = bucket_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", Metadata={"note": "meta-value-marker"})
    s3.list_objects_v2(Bucket=bucket, Prefix="query-value-marker")
    signatures = []
    for client, name in (
        (s3, "Signature"),
        (make_s3_client(logged, signature_version="s3v4"), "X-Amz-Signature"),
    ):
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
        fetched = httpx.get(url)
        assert fetched.status_code == 200
        line = access_line(logged, fetched.headers["x-amz-request-id"])
        assert (line["operation"], line["status"], line["bytes_sent"]) == ("GetObject", 200, 1)
        raw = url.split(f"{name}=")[1].split("&")[0]
        signatures += [raw, httpx.URL(url).params[name]]
    httpx.get(
        f"{logged.endpoint}{API}/sites/{bucket}/usage",
        headers={"Authorization": f"Bearer {api_key}", "X-Custom": "header-value-marker"},
    )
    wrong_key = "pwg_0123456789abcdef_not-a-real-key-marker"
    httpx.get(
        f"{logged.endpoint}{API}/sites/{bucket}/usage",
        headers={"Authorization": f"Bearer {wrong_key}"},
    )
    text = logged.log_path.read_text()
    for secret in (
        *signatures,
        logged.secret_key,
        api_key,
        api_key.split("_", 2)[2],
        wrong_key,
        "query-value-marker",
        "header-value-marker",
        "meta-value-marker",
    ):
        assert secret not in text
