"""Authentication end to end: tampered, expired, skewed and anonymous requests are rejected
with S3's error code and leave nothing stored; presigned and virtual-hosted requests work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from lxml import etree

from gateway.settings import Settings
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.signing import Signer

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def chunked_body(data: list[bytes], key: bytes, seed: str, date_scope: str) -> bytes:
    """An aws-chunked body with a signature per chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
    previous = seed
    out = b""
    for chunk in [*data, b""]:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                date_scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
    return out


@pytest.fixture
def http(gateway: InProcessGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.endpoint) as client:
        yield client


def code_of(response: httpx.Response) -> str:
    root = etree.fromstring(response.content)
    assert response.headers["x-amz-request-id"] == root.findtext("RequestId")
    return str(root.findtext("Code"))


def assert_absent(s3: Any, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=bucket, Key=key)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def put(
    http: httpx.Client,
    signer: Signer,
    path: str,
    body: bytes,
    *,
    signed_hash: str | None = None,
    when: datetime | None = None,
) -> httpx.Response:
    payload_hash = signed_hash or hashlib.sha256(body).hexdigest()
    headers, *_ = signer.sign("PUT", path, payload_hash, {}, when or datetime.now(UTC))
    return http.put(path, content=body, headers=headers)


def test_valid_hand_signed_put(
    http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    response = put(http, Signer(gateway), f"/{bucket}/ok", b"fine")
    assert response.status_code == 200
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == b"fine"


def test_wrong_secret(http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    response = put(http, Signer(gateway, secret="not-the-secret"), f"/{bucket}/k", b"data")
    assert response.status_code == 403
    assert code_of(response) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket, "k")


def test_unknown_access_key(gateway: InProcessGateway, bucket: str) -> None:
    other = replace(gateway, access_key="AKNOTKNOWN000000000")
    with pytest.raises(ClientError) as excinfo:
        make_s3_client(other).list_objects_v2(Bucket=bucket)
    assert excinfo.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_altered_body(http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    original = b"the body that was signed"
    response = put(
        http,
        Signer(gateway),
        f"/{bucket}/k",
        b"the body that was ALTERED",
        signed_hash=hashlib.sha256(original).hexdigest(),
    )
    assert response.status_code == 400
    assert code_of(response) == "XAmzContentSHA256Mismatch"
    assert_absent(s3, bucket, "k")


def test_altered_body_keeps_previous_version(
    http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="keep", Body=b"version one")
    response = put(
        http,
        Signer(gateway),
        f"/{bucket}/keep",
        b"version two",
        signed_hash=hashlib.sha256(b"version 2!!").hexdigest(),
    )
    assert code_of(response) == "XAmzContentSHA256Mismatch"
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"version one"


def _chunked_put(
    http: httpx.Client, gateway: InProcessGateway, path: str, chunks: list[bytes], tamper: bool
) -> httpx.Response:
    total = sum(len(c) for c in chunks)
    extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(total)}
    headers, key, seed, date_scope = Signer(gateway).sign(
        "PUT", path, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", extra, datetime.now(UTC)
    )
    body = chunked_body(chunks, key, seed, date_scope)
    if tamper:
        index = body.index(b"\r\n") + 2 + 10  # a byte inside the first chunk's data
        body = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
    return http.put(path, content=body, headers=headers)


def test_signed_chunks(http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    chunks = [b"a" * 65536, b"b" * 65536, b"c" * 100]
    response = _chunked_put(http, gateway, f"/{bucket}/chunked", chunks, tamper=False)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"".join(chunks)


def test_altered_chunk(http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    chunks = [b"a" * 65536, b"b" * 65536, b"c" * 100]
    response = _chunked_put(http, gateway, f"/{bucket}/chunked", chunks, tamper=True)
    assert response.status_code == 403
    assert code_of(response) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket, "chunked")


def test_skewed_clock(http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    when = datetime.now(UTC) - timedelta(minutes=16)
    response = put(http, Signer(gateway), f"/{bucket}/k", b"data", when=when)
    assert response.status_code == 403
    assert code_of(response) == "RequestTimeTooSkewed"
    assert_absent(s3, bucket, "k")


def test_anonymous_refused(http: httpx.Client, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"x")
    for response in (
        http.get(f"/{bucket}/secret"),
        http.put(f"/{bucket}/new", content=b"x"),
        http.get("/"),
    ):
        assert response.status_code == 403
        assert code_of(response) == "AccessDenied"
    assert_absent(s3, bucket, "new")


def test_bad_content_md5(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as invalid:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"x", ContentMD5="not-base64!")
    assert invalid.value.response["Error"]["Code"] == "InvalidDigest"
    with pytest.raises(ClientError) as bad:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"x", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert bad.value.response["Error"]["Code"] == "BadDigest"
    assert_absent(s3, bucket, "md5")


def test_presigned_urls(gateway: InProcessGateway, bucket: str) -> None:
    s3 = make_s3_client(gateway, signature_version="s3v4")
    upload_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300
    )
    assert httpx.put(upload_url, content=b"presigned body").status_code == 200
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300
    )
    assert httpx.get(url).content == b"presigned body"
    tampered = url.replace("pre?", "pre2?")
    assert code_of(httpx.get(tampered)) == "SignatureDoesNotMatch"
    short = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "late"}, ExpiresIn=1
    )
    time.sleep(2)
    expired = httpx.put(short, content=b"too late")
    assert expired.status_code == 403
    assert code_of(expired) == "AccessDenied"
    assert "expired" in expired.text
    assert_absent(s3, bucket, "late")


def test_virtual_hosted_style(tmp_path: Path) -> None:
    settings = Settings(log_level="warning", domains=("s3.localtest",))
    with in_process_gateway(tmp_path / "data", settings) as server:
        path_style = make_s3_client(server)
        path_style.create_bucket(Bucket="vhost-bucket")
        path_style.put_object(Bucket="vhost-bucket", Key="a/b.txt", Body=b"virtual")
        # The bucket travels in the Host header; the whole path is the key.
        host = f"vhost-bucket.s3.localtest:{server.port}"
        headers, *_ = Signer(server).sign(
            "GET", "/a/b.txt", EMPTY_SHA256, {}, datetime.now(UTC), host
        )
        response = httpx.get(f"{server.endpoint}/a/b.txt", headers=headers)
        assert response.status_code == 200, response.text
        assert response.content == b"virtual"
        # SigV2 signs the bucket from the Host header into the resource.
        expires = str(int(time.time()) + 300)
        to_sign = f"GET\n\n\n{expires}\n/vhost-bucket/a/b.txt".encode()
        digest = hmac.new(server.secret_key.encode(), to_sign, hashlib.sha1).digest()
        query = {
            "AWSAccessKeyId": server.access_key,
            "Expires": expires,
            "Signature": base64.b64encode(digest).decode(),
        }
        v2 = httpx.get(f"{server.endpoint}/a/b.txt", params=query, headers={"host": host})
        assert v2.status_code == 200, v2.text
        assert v2.content == b"virtual"


def test_default_presigned_urls_are_sigv2_and_work(s3: Any, bucket: str) -> None:
    """boto3 at its defaults presigns with Signature Version 2 in us-east-1."""
    key = "dir/sigv2 ü+key.txt"
    upload_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300
    )
    assert "AWSAccessKeyId=" in upload_url
    assert httpx.put(upload_url, content=b"sigv2 body").status_code == 200
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key, "ResponseCacheControl": "no-store"},
        ExpiresIn=300,
    )
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.content == b"sigv2 body"

    for tampered in (
        url.replace("sigv2%20", "sigv3%20"),
        url.replace("no-store", "no-cache"),
        url.replace("Signature=", "Signature=A"),
    ):
        rejected = httpx.get(tampered)
        assert rejected.status_code == 403
        assert code_of(rejected) == "SignatureDoesNotMatch"
    other_key = httpx.put(upload_url.replace("sigv2%20", "other%20"), content=b"x")
    assert code_of(other_key) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket, "dir/other ü+key.txt")


def test_sigv2_header_signing_client(gateway: InProcessGateway, bucket: str) -> None:
    """A client signing ``Authorization: AWS key:signature`` headers (botocore's "s3")."""
    v2 = make_s3_client(gateway, signature_version="s3")
    v2.put_object(Bucket=bucket, Key="a b+c", Body=b"header signed", ContentType="text/plain")
    assert v2.get_object(Bucket=bucket, Key="a b+c")["Body"].read() == b"header signed"
    assert [o["Key"] for o in v2.list_objects_v2(Bucket=bucket)["Contents"]] == ["a b+c"]
    other = replace(gateway, secret_key="not-the-secret")
    with pytest.raises(ClientError) as excinfo:
        make_s3_client(other, signature_version="s3").get_object(Bucket=bucket, Key="a b+c")
    assert excinfo.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_presigned_put_cannot_be_turned_into_a_copy(
    gateway: InProcessGateway, s3: Any, bucket: str, bucket_name: Callable[[], str]
) -> None:
    """A presigned PUT URL with an added x-amz-copy-source must not copy another bucket's
    object into its slot, nor store added x-amz-meta-* headers."""
    other = bucket_name()
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key="secret", Body=b"another site's secret")
    v4 = make_s3_client(gateway, signature_version="s3v4")
    for client in (v4, s3):  # SigV4 and (boto3's default) SigV2 presigned URLs
        url = client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "slot"}, ExpiresIn=300
        )
        copied = httpx.put(url, headers={"x-amz-copy-source": f"/{other}/secret"})
        assert copied.status_code == 403, copied.text
        stored = httpx.put(url, content=b"body", headers={"x-amz-meta-owner": "mallory"})
        assert stored.status_code == 403, stored.text
        assert_absent(s3, bucket, "slot")
    root = etree.fromstring(copied.content)  # SigV2 signs every x-amz-* header it sees
    assert root.findtext("Code") == "SignatureDoesNotMatch"
    url = v4.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "slot"}, ExpiresIn=300
    )
    response = httpx.put(
        url, headers={"x-amz-copy-source": f"/{other}/secret", "x-amz-meta-owner": "mallory"}
    )
    root = etree.fromstring(response.content)
    assert root.findtext("Code") == "AccessDenied"
    assert root.findtext("Message") == (
        "There were headers present in the request which were not signed"
    )
    assert root.findtext("HeadersNotSigned") == "x-amz-copy-source, x-amz-meta-owner"
    assert httpx.put(url, content=b"fine").status_code == 200
    assert s3.head_object(Bucket=bucket, Key="slot")["Metadata"] == {}


def test_header_signed_request_with_an_added_amz_header(
    http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    path = f"/{bucket}/k"
    headers, *_ = Signer(gateway).sign(
        "PUT", path, hashlib.sha256(b"data").hexdigest(), {}, datetime.now(UTC)
    )
    headers["x-amz-meta-added"] = "after signing"
    response = http.put(path, content=b"data", headers=headers)
    assert response.status_code == 403
    assert code_of(response) == "AccessDenied"
    assert etree.fromstring(response.content).findtext("HeadersNotSigned") == "x-amz-meta-added"
    assert_absent(s3, bucket, "k")
