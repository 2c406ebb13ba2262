"""SigV4 for the query protocol at the S3 endpoint: another service's scope when the caller
allows it, and a body the caller read whole and hashed itself (SDKs send no
``x-amz-content-sha256`` to IAM or STS)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from core.errors import S3Error
from gateway.sigv4 import HttpRequestView, authenticate
from tests.support.sigv4_example import AK, REGION, SECRET, lookup

BODY = b"Action=ListUsers&Version=2010-05-08"


def signed(
    body: bytes = BODY, service: str = "iam", headers: dict[str, str] | None = None
) -> HttpRequestView:
    request = AWSRequest(
        "POST",
        "https://gateway.example/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
    )
    SigV4Auth(Credentials(AK, SECRET), service, REGION).add_auth(request)
    names = {name.lower(): value for name, value in request.headers.items()}
    names["host"] = "gateway.example"
    return HttpRequestView("POST", "/", "", names)


def check(
    view: HttpRequestView, services: frozenset[str] = frozenset({"iam"}), body: bytes = BODY
) -> str:
    result = authenticate(
        view,
        lookup,
        REGION,
        datetime.now(UTC),
        services=services,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    return result.service


def code(view: HttpRequestView, **options: object) -> str:
    with pytest.raises(S3Error) as caught:
        check(view, **options)  # type: ignore[arg-type]
    return caught.value.code


def test_an_iam_request_is_verified_over_the_body_it_carries() -> None:
    assert check(signed()) == "iam"
    assert check(signed(service="sts"), services=frozenset({"sts"})) == "sts"


def test_another_service_is_refused_unless_allowed() -> None:
    assert code(signed(), services=frozenset({"s3"})) == "AuthorizationHeaderMalformed"
    assert code(signed(service="sts")) == "AuthorizationHeaderMalformed"


def test_a_different_body_does_not_verify() -> None:
    assert code(signed(), body=BODY + b"&UserName=mallory") == "SignatureDoesNotMatch"


def test_a_signed_content_hash_must_be_the_bodys() -> None:
    other = hashlib.sha256(b"something else").hexdigest()
    view = signed(headers={"X-Amz-Content-SHA256": other})
    assert code(view) == "XAmzContentSHA256Mismatch"
    streaming = signed(headers={"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
    assert code(streaming) == "InvalidRequest"


def test_s3_requests_still_need_their_content_hash_header() -> None:
    view = signed(service="s3")
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, REGION, datetime.now(UTC))
    assert caught.value.code == "InvalidRequest"
