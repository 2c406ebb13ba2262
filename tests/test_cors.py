"""CORS: Put/Get/DeleteBucketCors and their validation, preflights (OPTIONS) answered by the
stored rules without authentication, and CORS headers on the replies to requests with an
Origin, errors included. In-process (the memory translator)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.errors import S3Error
from gateway.cors_xml import cors_document, parse_cors
from gateway.s3xml import serialize
from policy.cors import (
    CorsRule,
    check_rules,
    matching_rule,
    requested_headers,
    rules_from_json,
    rules_to_json,
    wildcard_match,
)
from tests.support.gateway import InProcessGateway
from tests.support.s3_errors import s3_error

ORIGIN = "https://app.example.com"
RULES: dict[str, Any] = {
    "CORSRules": [
        {
            "ID": "uploads",
            "AllowedOrigins": ["https://*.example.com"],
            "AllowedMethods": ["PUT", "POST"],
            "AllowedHeaders": ["x-amz-*", "Content-Type"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]},
    ]
}


# The rules themselves


def test_wildcards_match_any_run_of_characters() -> None:
    assert wildcard_match("*", "")
    assert wildcard_match("https://*.example.com", "https://a.b.example.com")
    assert not wildcard_match("https://*.example.com", "http://a.example.com")
    assert not wildcard_match("https://*.example.com", "https://example.com")
    assert wildcard_match("x-amz-*", "x-amz-date")
    assert wildcard_match("exact", "exact")
    assert not wildcard_match("exact", "exactly")


def test_the_first_rule_allowing_origin_method_and_headers_applies() -> None:
    wide = CorsRule(("*",), ("GET",))
    narrow = CorsRule(("https://a.example",), ("GET", "PUT"), ("content-type", "x-amz-*"))
    rules = (narrow, wide)
    assert matching_rule(rules, "https://a.example", "GET") is narrow
    assert matching_rule(rules, "https://b.example", "GET") is wide
    assert matching_rule(rules, "https://b.example", "PUT") is None
    assert matching_rule(rules, "https://a.example", "PUT", ("Content-Type", "X-Amz-Date"))
    assert matching_rule(rules, "https://a.example", "PUT", ("authorization",)) is None
    assert requested_headers(" a, B ,,c") == ("a", "B", "c")


@pytest.mark.parametrize(
    ("rules", "code", "message"),
    [
        ([], "MalformedXML", "at least one"),
        ([CorsRule(("*",), ("PATCH",))], "InvalidRequest", "Unsupported method is PATCH"),
        ([CorsRule(("https://*.*.com",), ("GET",))], "InvalidRequest", "more than one wildcard"),
        ([CorsRule(("*",), ("GET",), ("x-*-*",))], "InvalidRequest", "more than one wildcard"),
        ([CorsRule(("*",), ("GET",))] * 101, "InvalidRequest", "more than 100 rules"),
        ([CorsRule((), ("GET",))], "MalformedXML", "AllowedOrigin"),
        ([CorsRule(("*",), ("GET",), rule_id="x" * 256)], "InvalidRequest", "ID"),
    ],
)
def test_rules_s3_refuses(rules: list[CorsRule], code: str, message: str) -> None:
    with pytest.raises(S3Error) as refused:
        check_rules(rules)
    assert refused.value.code == code
    assert message in refused.value.message


def test_rules_round_trip_through_xml_and_json() -> None:
    rules = (
        CorsRule(("*",), ("GET", "HEAD"), ("*",), ("ETag",), 30, "one"),
        CorsRule(("https://a.example",), ("PUT",)),
    )
    assert parse_cors(serialize(cors_document(rules))) == rules
    assert rules_from_json(rules_to_json(rules)) == rules
    with pytest.raises(ValueError, match="TRACE"):
        rules_from_json([{"allowed_origins": ["*"], "allowed_methods": ["TRACE"]}])


@pytest.mark.parametrize(
    "body",
    [
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>",
        b"<Other><CORSRule/></Other>",
        b"<CORSConfiguration><Rule/></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
        b"</AllowedMethod><Colour>red</Colour></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
        b"</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"
        b"</CORSConfiguration>",
    ],
)
def test_malformed_documents_are_malformed_xml(body: bytes) -> None:
    with pytest.raises(S3Error) as refused:
        parse_cors(body)
    assert refused.value.code == "MalformedXML"


# Over HTTP


def test_put_get_delete_bucket_cors(s3: Any, bucket: str) -> None:
    assert s3_error(lambda: s3.get_bucket_cors(Bucket=bucket))[:2] == (
        404,
        "NoSuchCORSConfiguration",
    )
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES["CORSRules"]
    s3.delete_bucket_cors(Bucket=bucket)
    assert s3_error(lambda: s3.get_bucket_cors(Bucket=bucket))[1] == "NoSuchCORSConfiguration"
    s3.delete_bucket_cors(Bucket=bucket)  # deleting none is fine, as in S3
    assert s3_error(lambda: s3.get_bucket_cors(Bucket="no-such-bucket-cors"))[1] == "NoSuchBucket"


def test_put_bucket_cors_refusals_are_s3_errors(s3: Any, bucket: str) -> None:
    def put(rules: list[dict[str, Any]]) -> Any:
        return s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})

    status, code, message = s3_error(
        lambda: put([{"AllowedOrigins": ["*"], "AllowedMethods": ["OPTIONS"]}])
    )
    assert (status, code) == (400, "InvalidRequest")
    assert "OPTIONS" in message
    rule = {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}
    assert s3_error(lambda: put([rule] * 101))[:2] == (400, "InvalidRequest")
    two_stars = {"AllowedOrigins": ["http://*.*"], "AllowedMethods": ["GET"]}
    assert s3_error(lambda: put([two_stars]))[1] == "InvalidRequest"
    assert s3_error(lambda: s3.get_bucket_cors(Bucket=bucket))[1] == "NoSuchCORSConfiguration"


def test_preflights_follow_the_stored_rules(
    s3: Any, bucket: str, gateway: InProcessGateway
) -> None:
    url = f"{gateway.endpoint}/{bucket}/some/key.txt"

    def preflight(**headers: str) -> httpx.Response:
        return httpx.options(url, headers=headers)

    asked = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}
    # No configuration yet: refused; no Origin, or no method: a bad request.
    refused = preflight(**asked)
    assert refused.status_code == 403
    assert b"<Code>AccessForbidden</Code>" in refused.content
    assert preflight(**{"Access-Control-Request-Method": "PUT"}).status_code == 400
    missing_method = preflight(Origin=ORIGIN)
    assert missing_method.status_code == 400
    assert b"<Code>BadRequest</Code>" in missing_method.content

    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    allowed = preflight(**asked, **{"Access-Control-Request-Headers": "x-amz-date,content-type"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-methods"] == "PUT, POST"
    assert allowed.headers["access-control-allow-headers"] == "x-amz-date, content-type"
    assert allowed.headers["access-control-max-age"] == "600"
    assert allowed.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in allowed.headers["vary"]

    # The catch-all rule answers any origin with "*", for its methods only.
    anyone = preflight(Origin="https://elsewhere.test", **{"Access-Control-Request-Method": "GET"})
    assert anyone.status_code == 200
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in anyone.headers
    for headers in (
        {"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "PUT"},
        {**asked, "Access-Control-Request-Headers": "authorization"},
        {"Origin": "http://app.example.com", "Access-Control-Request-Method": "PUT"},
    ):
        denied = preflight(**headers)
        assert denied.status_code == 403
        assert b"This CORS request is not allowed" in denied.content
        assert "access-control-allow-origin" not in denied.headers
    # The bucket URL is answered the same way.
    on_bucket = httpx.options(f"{gateway.endpoint}/{bucket}", headers=asked)
    assert on_bucket.headers["access-control-allow-origin"] == ORIGIN


def test_replies_to_requests_with_an_origin_carry_cors_headers(
    s3: Any, bucket: str, gateway: InProcessGateway
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>")
    url = f"{gateway.endpoint}/{bucket}/page.html"
    # An unsigned GET is refused (the bucket is private), and the refusal is readable.
    refused = httpx.get(url, headers={"Origin": ORIGIN})
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == "*"
    assert refused.headers["access-control-allow-methods"] == "GET, HEAD"
    # A presigned GET succeeds with the headers; the exposed ones follow the rule.
    presigned = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "page.html"}
    )
    read = httpx.get(presigned, headers={"Origin": ORIGIN})
    assert read.status_code == 200
    assert read.content == b"<p>hi</p>"
    assert read.headers["access-control-allow-origin"] == "*"
    missing = httpx.get(f"{gateway.endpoint}/{bucket}/absent", headers={"Origin": ORIGIN})
    assert missing.headers["access-control-allow-origin"] == "*"
    # A method no rule allows for the origin: only Vary.
    put = httpx.delete(url, headers={"Origin": "https://elsewhere.test"})
    assert "access-control-allow-origin" not in put.headers
    assert "Origin" in put.headers["vary"]
    # Without Origin, nothing is added.
    plain = httpx.get(presigned)
    assert "access-control-allow-origin" not in plain.headers
    assert "vary" not in plain.headers


def test_a_deleted_bucket_takes_its_cors_rules_with_it(s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert s3_error(lambda: s3.get_bucket_cors(Bucket=bucket))[1] == "NoSuchCORSConfiguration"
