"""SigV2 verification against botocore's own SigV2 signers (``HmacV1Auth`` for the header,
``HmacV1QueryAuth`` for presigned URLs), the AWS documentation example, tampered requests,
and the dispatch between SigV2 and SigV4."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from core.errors import S3Error
from gateway.auth import authenticate_request
from gateway.routing import ROUTES
from gateway.sigv2 import SIGNED_SUBRESOURCES, authenticate_v2
from gateway.sigv4 import HttpRequestView, PayloadMode
from policy.credentials import Credential

ACCESS_KEY = "AKSIGV2TEST000000001"
SECRET_KEY = "v2-secret/with+odd=chars~"
CREDENTIAL = Credential(ACCESS_KEY, SECRET_KEY, "tester")
HOST = "127.0.0.1:9000"


def lookup(access_key: str) -> Credential | None:
    return CREDENTIAL if access_key == ACCESS_KEY else None


def now() -> datetime:
    return datetime.now(UTC)


def sign(
    method: str,
    path: str,
    query: dict[str, str] | str = "",
    headers: dict[str, str] | None = None,
    *,
    presign: bool = False,
    secret: str = SECRET_KEY,
    access_key: str = ACCESS_KEY,
    auth_path: str | None = None,
    expires: int = 3600,
) -> HttpRequestView:
    """A request signed by botocore, as the gateway would see it arrive.

    ``path`` is already percent-encoded, as on the wire; ``query`` a dict is encoded as
    botocore encodes parameters (``%20``, never ``+``).
    """
    query_string = query if isinstance(query, str) else urlencode(query, quote_via=quote)
    url = f"http://{HOST}{path}" + (f"?{query_string}" if query_string else "")
    request = AWSRequest(method=method, url=url, headers=headers or {})
    if auth_path is None and path.count("/") == 1 and path != "/":
        auth_path = path + "/"  # botocore's client signs path-style "/bucket" as "/bucket/"
    request.auth_path = auth_path
    credentials = Credentials(access_key, secret)
    signer = HmacV1QueryAuth(credentials, expires) if presign else HmacV1Auth(credentials)
    signer.add_auth(request)
    split = urlsplit(str(request.url))
    received = {name.lower(): value for name, value in request.headers.items()}
    if presign:
        del received["date"]  # botocore's Expires, which travels in the query
    return HttpRequestView(method, split.path, split.query, received)


def key_path(bucket: str, key: str) -> str:
    return f"/{bucket}/" + quote(key, safe="/~")


def code_of(view: HttpRequestView, when: datetime | None = None) -> str:
    with pytest.raises(S3Error) as caught:
        authenticate_v2(view, lookup, when or now())
    return caught.value.code


KEYS = [
    "plain.txt",
    "with space/and more spaces.txt",
    "unicode/ünïcødé/日本語.bin",
    "plus+sign+key",
    "dir/",
    "a//b",
    "../x",
    "sym!@$&'()*,;=:",
    "percent%20literal",
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("presign", [False, True])
def test_keys(key: str, presign: bool) -> None:
    view = sign("GET", key_path("bucket", key), presign=presign)
    result = authenticate_v2(view, lookup, now())
    assert result.credential == CREDENTIAL
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert result.content_sha256 is None
    assert result.chunk_signing is None
    assert result.presigned is presign


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/bucket", "acl"),
        ("PUT", "/bucket/k", "tagging"),
        ("GET", "/bucket", "versions&prefix=a%20b&key-marker=x"),
        ("GET", "/bucket", "list-type=2&prefix=dir%2F&max-keys=10"),
        ("POST", "/bucket", "delete"),
        ("POST", "/bucket/k", "uploads"),
        ("PUT", "/bucket/k", "partNumber=3&uploadId=abc%2Bdef"),
        ("GET", "/bucket/k", "versionId=v1%2Fv2"),
        ("GET", "/bucket/k", "acl&versionId=3"),
        ("GET", "/", ""),
    ],
)
@pytest.mark.parametrize("presign", [False, True])
def test_subresources(method: str, path: str, query: str, presign: bool) -> None:
    view = sign(method, path, query, presign=presign)
    assert authenticate_v2(view, lookup, now()).credential == CREDENTIAL


@pytest.mark.parametrize("presign", [False, True])
def test_response_overrides(presign: bool) -> None:
    overrides = {
        "response-content-disposition": 'attachment; filename="a b+c ü.txt"',
        "response-content-type": "text/plain; charset=utf-8",
        "response-cache-control": "no-cache",
        "response-expires": "Thu, 01 Dec 1994 16:00:00 GMT",
        "response-content-language": "en",
        "response-content-encoding": "gzip",
    }
    view = sign("GET", key_path("bucket", "report.csv"), overrides, presign=presign)
    assert authenticate_v2(view, lookup, now()).credential == CREDENTIAL
    changed = view.query_string.replace("no-cache", "max-age%3D1")
    assert code_of(_replace(view, query_string=changed)) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("presign", [False, True])
def test_signed_headers(presign: bool) -> None:
    headers = {
        "Content-Type": "text/plain",
        "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "x-amz-meta-Colour": "blue",
        "x-amz-acl": "private",
    }
    view = sign("PUT", key_path("bucket", "k"), headers=headers, presign=presign)
    # A presigned URL carries its x-amz-* values in the query; the uploader sends them.
    sent = dict(view.headers, **{n.lower(): v for n, v in headers.items()})
    view = _replace(view, headers=sent)
    assert authenticate_v2(view, lookup, now()).credential == CREDENTIAL
    for name, value in (("content-type", "text/html"), ("x-amz-meta-colour", "red")):
        tampered = _replace(view, headers=dict(sent, **{name: value}))
        assert code_of(tampered) == "SignatureDoesNotMatch", name
    added = _replace(view, headers=dict(sent, **{"x-amz-storage-class": "GLACIER"}))
    assert code_of(added) == "SignatureDoesNotMatch"


def test_virtual_hosted_resource_includes_bucket() -> None:
    view = sign("GET", "/a%20b/c.txt", "acl", auth_path="/site-1/a%20b/c.txt")
    result = authenticate_v2(view, lookup, now(), bucket_in_host="site-1")
    assert result.credential == CREDENTIAL
    with pytest.raises(S3Error) as caught:
        authenticate_v2(view, lookup, now(), bucket_in_host="site-2")
    assert caught.value.code == "SignatureDoesNotMatch"
    assert code_of(view) == "SignatureDoesNotMatch"


def test_virtual_hosted_root() -> None:
    view = sign("GET", "/", presign=True, auth_path="/site-1/")
    assert authenticate_v2(view, lookup, now(), bucket_in_host="site-1").presigned


def test_aws_documentation_example() -> None:
    """``GET /photos/puppy.jpg`` on awsexamplebucket1, from the S3 SigV2 documentation."""
    headers = {
        "host": "awsexamplebucket1.us-west-1.s3.amazonaws.com",
        "date": "Tue, 27 Mar 2007 19:36:42 +0000",
        "authorization": "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
    }
    example = Credential("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ex")
    result = authenticate_v2(
        HttpRequestView("GET", "/photos/puppy.jpg", "", headers),
        lambda key: example if key == example.access_key else None,
        datetime(2007, 3, 27, 19, 40, tzinfo=UTC),
        bucket_in_host="awsexamplebucket1",
    )
    assert result.credential == example


def _hand_signed(headers: dict[str, str], date_line: str, path: str = "/b/k") -> HttpRequestView:
    to_sign = f"GET\n\n\n{date_line}\n" + "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-amz-")
    )
    digest = hmac.new(SECRET_KEY.encode(), (to_sign + path).encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    return HttpRequestView(
        "GET", path, "", dict(headers, authorization=f"AWS {ACCESS_KEY}:{signature}")
    )


def test_x_amz_date_empties_the_date_line() -> None:
    stamp = now().strftime("%a, %d %b %Y %H:%M:%S GMT")
    view = _hand_signed({"x-amz-date": stamp, "date": "ignored"}, "")
    assert authenticate_v2(view, lookup, now()).credential == CREDENTIAL
    stale = (now() - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    skewed = _hand_signed({"x-amz-date": stale, "date": stamp}, "")
    assert code_of(skewed) == "RequestTimeTooSkewed"


def test_wrong_secret() -> None:
    for presign in (False, True):
        view = sign("GET", "/b/k", secret="not-the-secret", presign=presign)
        with pytest.raises(S3Error) as caught:
            authenticate_v2(view, lookup, now())
        assert caught.value.code == "SignatureDoesNotMatch"
        assert caught.value.status == 403
        assert caught.value.fields["StringToSign"].endswith("\n/b/k")


@pytest.mark.parametrize("presign", [False, True])
def test_tampered_request(presign: bool) -> None:
    view = sign("PUT", "/b/k", "uploadId=1&partNumber=1", presign=presign)
    cases = [
        _replace(view, method="DELETE"),
        _replace(view, raw_path="/b/k2"),
        _replace(view, raw_path="/b/K"),
        _replace(view, query_string=view.query_string.replace("partNumber=1", "partNumber=2")),
        # A sub-resource appended to a signed URL would change the operation.
        _replace(view, query_string=view.query_string + "&retention"),
        _replace(view, query_string=view.query_string + "&attributes"),
    ]
    for tampered in cases:
        assert code_of(tampered) == "SignatureDoesNotMatch", tampered


def test_unsigned_parameters_may_change() -> None:
    view = sign("GET", "/b", "prefix=a", presign=True)
    changed = _replace(view, query_string=view.query_string.replace("prefix=a", "prefix=z"))
    assert authenticate_v2(changed, lookup, now()).presigned


def test_expired_url() -> None:
    view = sign("GET", "/b/k", presign=True, expires=60)
    with pytest.raises(S3Error) as caught:
        authenticate_v2(view, lookup, now() + timedelta(seconds=120))
    assert caught.value.code == "AccessDenied"
    assert caught.value.message == "Request has expired"
    assert "ServerTime" in caught.value.fields


def test_skewed_date() -> None:
    view = sign("GET", "/b/k")
    for offset in (timedelta(minutes=16), -timedelta(minutes=16)):
        with pytest.raises(S3Error) as caught:
            authenticate_v2(view, lookup, now() + offset, timedelta(minutes=15))
        assert caught.value.code == "RequestTimeTooSkewed"
    assert authenticate_v2(view, lookup, now() + timedelta(minutes=14)).credential == CREDENTIAL


def test_unknown_access_key() -> None:
    for presign in (False, True):
        view = sign("GET", "/b/k", access_key="AKUNKNOWN", presign=presign)
        with pytest.raises(S3Error) as caught:
            authenticate_v2(view, lookup, now())
        assert caught.value.code == "InvalidAccessKeyId"
        assert caught.value.fields["AWSAccessKeyId"] == "AKUNKNOWN"


def test_missing_date() -> None:
    view = sign("GET", "/b/k")
    headers = {n: v for n, v in view.headers.items() if n != "date"}
    assert code_of(_replace(view, headers=headers)) == "AccessDenied"
    assert code_of(_replace(view, headers=dict(headers, date="yesterday"))) == "AccessDenied"


@pytest.mark.parametrize("authorization", ["AWS ", "AWS nocolon", "AWS :sig", "AWS key:"])
def test_malformed_header(authorization: str) -> None:
    view = HttpRequestView("GET", "/b/k", "", {"authorization": authorization, "date": "x"})
    assert code_of(view) == "InvalidArgument"


@pytest.mark.parametrize("missing", ["AWSAccessKeyId", "Signature", "Expires"])
def test_incomplete_query(missing: str) -> None:
    view = sign("GET", "/b/k", presign=True)
    query = "&".join(p for p in view.query_string.split("&") if not p.startswith(missing + "="))
    assert code_of(_replace(view, query_string=query)) == "AccessDenied"


def test_unencoded_plus_in_signature() -> None:
    for attempt in range(200):  # until the signature has a "+" in it
        view = sign("GET", f"/b/k{attempt}", presign=True)
        if "%2B" in view.query_string:
            break
    else:
        pytest.skip("no signature with a + in it")
    raw = _replace(view, query_string=view.query_string.replace("%2B", "+"))
    assert authenticate_v2(raw, lookup, now()).presigned


def test_every_routing_subresource_is_signed() -> None:
    selecting = {route.subresource for route in ROUTES if route.subresource is not None}
    assert selecting - {"list-type"} <= SIGNED_SUBRESOURCES


# Dispatch between signature versions


def test_dispatch_v2_header_and_query() -> None:
    header = sign("GET", "/b/k")
    query = sign("GET", "/b/k", presign=True)
    for view in (header, query):
        result = authenticate_request(view, lookup, "us-east-1", now())
        assert result.presigned is (view is query)


def test_dispatch_v4_and_anonymous_as_before() -> None:
    anonymous = HttpRequestView("GET", "/b/k", "", {})
    with pytest.raises(S3Error) as caught:
        authenticate_request(anonymous, lookup, "us-east-1", now())
    assert (caught.value.code, caught.value.message) == (
        "AccessDenied",
        "Anonymous access is not allowed.",
    )
    v4 = HttpRequestView(
        "GET", "/b/k", "", {"authorization": "AWS4-HMAC-SHA256 Credential=x", "date": "x"}
    )
    with pytest.raises(S3Error) as caught:
        authenticate_request(v4, lookup, "us-east-1", now())
    assert caught.value.code == "AuthorizationHeaderMalformed"


def test_dispatch_refuses_two_mechanisms() -> None:
    header = sign("GET", "/b/k")
    query = sign("GET", "/b/k", presign=True)
    both = _replace(
        query, headers=dict(query.headers, authorization=header.headers["authorization"])
    )
    v4_and_v2 = _replace(query, query_string=query.query_string + "&X-Amz-Algorithm=x")
    for view in (both, v4_and_v2):
        with pytest.raises(S3Error) as caught:
            authenticate_request(view, lookup, "us-east-1", now())
        assert caught.value.code == "InvalidArgument"


def test_dispatch_passes_the_host_bucket() -> None:
    view = sign("GET", "/k", auth_path="/site-1/k")
    result = authenticate_request(view, lookup, "us-east-1", now(), bucket_in_host="site-1")
    assert result.credential == CREDENTIAL


def _replace(
    view: HttpRequestView,
    *,
    method: str | None = None,
    raw_path: str | None = None,
    query_string: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpRequestView:
    return HttpRequestView(
        method if method is not None else view.method,
        raw_path if raw_path is not None else view.raw_path,
        query_string if query_string is not None else view.query_string,
        headers if headers is not None else view.headers,
    )


def test_presigned_url_lifetime_is_at_most_seven_days() -> None:
    week = 7 * 24 * 3600
    longest = sign("GET", "/b/k", presign=True, expires=week)
    assert authenticate_v2(longest, lookup, now()).presigned
    # The signer's clock may run ahead of ours by the allowed skew.
    assert authenticate_v2(longest, lookup, now() - timedelta(minutes=14)).presigned
    for lifetime in (week + 16 * 60, 10 * 365 * 24 * 3600):
        view = sign("GET", "/b/k", presign=True, expires=lifetime)
        with pytest.raises(S3Error) as caught:
            authenticate_v2(view, lookup, now(), timedelta(minutes=15))
        assert (caught.value.code, caught.value.status) == ("AccessDenied", 403)
        assert "604800" in caught.value.message
    far = _replace(longest, query_string=longest.query_string.replace("Expires=", "Expires=9"))
    assert code_of(far) == "AccessDenied"


def test_utf8_header_values_are_checked_as_the_bytes_sent() -> None:
    """SigV2 signs the header bytes as sent (the app decodes them as Latin-1)."""
    stamp = now().strftime("%a, %d %b %Y %H:%M:%S GMT")
    signed = _hand_signed({"x-amz-date": stamp, "x-amz-meta-city": "Zürich 日本"}, "")
    received = dict(signed.headers, **{"x-amz-meta-city": "Zürich 日本".encode().decode("latin-1")})
    assert authenticate_v2(_replace(signed, headers=received), lookup, now()).credential == (
        CREDENTIAL
    )
    altered = dict(received, **{"x-amz-meta-city": "Zurich 日本".encode().decode("latin-1")})
    assert code_of(_replace(signed, headers=altered)) == "SignatureDoesNotMatch"
