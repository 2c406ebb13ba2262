"""SigV4 verification: AWS's published examples, then requests signed by real botocore."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from core.errors import S3Error
from gateway.sigv4 import (
    AuthResult,
    HttpRequestView,
    PayloadMode,
    authenticate,
)
from gateway.sigv4_signing import canonical_query, canonical_uri
from tests.support.sigv4_example import (
    AK,
    CHUNKED_HEADERS,
    EXAMPLE_NOW,
    REGION,
    ROOT,
    SECRET,
    header_auth,
    lookup,
)

EMPTY = hashlib.sha256(b"").hexdigest()


def check(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    now: datetime = EXAMPLE_NOW,
) -> AuthResult:
    view = HttpRequestView(method, path, query, dict(headers))
    return authenticate(view, lookup, REGION, now)


def code_of(method: str, path: str, query: str, headers: Mapping[str, str]) -> str:
    with pytest.raises(S3Error) as caught:
        check(method, path, query, headers)
    return caught.value.code


# --- AWS's published examples (Amazon S3 API reference, "Signature Calculations ...") ---

GET_OBJECT = {
    "host": "examplebucket.s3.amazonaws.com",
    "range": "bytes=0-9",
    "x-amz-content-sha256": EMPTY,
    "x-amz-date": "20130524T000000Z",
    "authorization": header_auth(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    ),
}


def test_aws_example_get_object() -> None:
    result = check("GET", "/test.txt", "", GET_OBJECT)
    assert result.credential is ROOT
    assert result.payload_mode is PayloadMode.SIGNED
    assert result.content_sha256 == EMPTY
    assert result.chunk_signing is None
    assert not result.presigned


def test_aws_example_put_object() -> None:
    body = b"Welcome to Amazon S3."
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        "authorization": header_auth(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
    }
    result = check("PUT", "/test$file.text", "", headers)
    assert result.content_sha256 == hashlib.sha256(body).hexdigest()
    assert check("PUT", "/test%24file.text", "", headers).credential is ROOT


def test_aws_example_get_bucket_lifecycle() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-content-sha256": EMPTY,
        "authorization": header_auth(
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
    }
    assert check("GET", "/", "lifecycle", headers).credential is ROOT


def test_aws_example_list_objects() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-content-sha256": EMPTY,
        "authorization": header_auth(
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    }
    assert check("GET", "/", "max-keys=2&prefix=J", headers).credential is ROOT
    # Parameter order on the wire does not matter: the canonical query is sorted.
    assert check("GET", "/", "prefix=J&max-keys=2", headers).credential is ROOT


PRESIGNED_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def test_aws_example_presigned_url() -> None:
    headers = {"host": "examplebucket.s3.amazonaws.com"}
    view = HttpRequestView("GET", "/test.txt", PRESIGNED_QUERY, headers)
    result = authenticate(view, lookup, REGION, EXAMPLE_NOW + timedelta(hours=23))
    assert result.presigned
    assert result.payload_mode is PayloadMode.UNSIGNED
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, REGION, EXAMPLE_NOW + timedelta(hours=25))
    assert (caught.value.code, caught.value.message) == ("AccessDenied", "Request has expired")
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, REGION, EXAMPLE_NOW - timedelta(hours=1))
    assert caught.value.code == "AccessDenied"


CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def test_aws_example_chunked_upload_seed_and_chunk_signatures() -> None:
    result = check("PUT", "/examplebucket/chunkObject.txt", "", CHUNKED_HEADERS)
    assert result.payload_mode is PayloadMode.STREAMING_SIGNED
    assert result.content_sha256 is None
    ctx = result.chunk_signing
    assert ctx is not None
    assert ctx.seed_signature == CHUNKED_HEADERS["authorization"][-64:]
    assert ctx.scope == "20130524/us-east-1/s3/aws4_request"
    previous = ctx.seed_signature
    for data, expected in zip((b"a" * 65536, b"a" * 1024, b""), CHUNK_SIGNATURES, strict=True):
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                ctx.amz_date,
                ctx.scope,
                previous,
                EMPTY,
                hashlib.sha256(data).hexdigest(),
            )
        )
        previous = hmac.new(ctx.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        assert previous == expected


# --- error cases on the examples ---


def test_header_form_tolerates_spaces_after_commas() -> None:
    headers = dict(GET_OBJECT)
    headers["authorization"] = headers["authorization"].replace(",", ", ")
    assert check("GET", "/test.txt", "", headers).credential is ROOT


def test_anonymous_is_refused() -> None:
    headers = {k: v for k, v in GET_OBJECT.items() if k != "authorization"}
    assert code_of("GET", "/test.txt", "", headers) == "AccessDenied"


def test_unknown_access_key() -> None:
    headers = dict(GET_OBJECT, authorization=GET_OBJECT["authorization"].replace(AK, "NOPE"))
    assert code_of("GET", "/test.txt", "", headers) == "InvalidAccessKeyId"


def test_altered_header_value_breaks_signature() -> None:
    headers = dict(GET_OBJECT, range="bytes=0-10")
    assert code_of("GET", "/test.txt", "", headers) == "SignatureDoesNotMatch"


def test_header_values_are_trimmed_and_spaces_collapsed() -> None:
    headers = dict(GET_OBJECT, range="  bytes=0-9  ")
    assert check("GET", "/test.txt", "", headers).credential is ROOT


def test_wrong_region() -> None:
    view = HttpRequestView("GET", "/test.txt", "", GET_OBJECT)
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, "eu-west-1", EXAMPLE_NOW)
    assert caught.value.code == "AuthorizationHeaderMalformed"
    assert "eu-west-1" in caught.value.message
    assert caught.value.fields["Region"] == "eu-west-1"


def test_wrong_region_presigned() -> None:
    view = HttpRequestView("GET", "/test.txt", PRESIGNED_QUERY, {"host": "x"})
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, "eu-west-1", EXAMPLE_NOW)
    assert caught.value.code == "AuthorizationQueryParametersError"
    assert caught.value.fields["Region"] == "eu-west-1"


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3,SignedHeaders=host,Signature="
        + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,"
        "Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,"
        "Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=range,"
        "Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,"
        "Signature=xyz",
        "AWS4-HMAC-SHA256 Credential=AK/20130523/us-east-1/s3/aws4_request,SignedHeaders=host,"
        "Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization(authorization: str) -> None:
    headers = dict(GET_OBJECT, authorization=authorization)
    assert code_of("GET", "/test.txt", "", headers) == "AuthorizationHeaderMalformed"


def test_missing_content_sha256() -> None:
    headers = {k: v for k, v in GET_OBJECT.items() if k != "x-amz-content-sha256"}
    with pytest.raises(S3Error) as caught:
        check("GET", "/test.txt", "", headers)
    assert caught.value.code == "InvalidRequest"
    assert caught.value.message.endswith("x-amz-content-sha256")


def test_unrecognised_content_sha256() -> None:
    headers = dict(GET_OBJECT, **{"x-amz-content-sha256": "not-a-hash"})
    assert code_of("GET", "/test.txt", "", headers) == "InvalidArgument"


def test_skew() -> None:
    view = HttpRequestView("GET", "/test.txt", "", GET_OBJECT)
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, REGION, EXAMPLE_NOW + timedelta(minutes=20))
    assert caught.value.code == "RequestTimeTooSkewed"
    assert caught.value.fields["RequestTime"] == "20130524T000000Z"
    assert caught.value.fields["ServerTime"] == "2013-05-24T00:25:00Z"


def test_v2_signature_is_not_supported() -> None:
    headers = dict(GET_OBJECT, authorization="AWS AKIA:abc=")
    assert code_of("GET", "/test.txt", "", headers) == "InvalidRequest"


def test_both_mechanisms_refused() -> None:
    headers = dict(GET_OBJECT)
    assert code_of("GET", "/test.txt", PRESIGNED_QUERY, headers) == "InvalidArgument"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("X-Amz-Expires=86400", "X-Amz-Expires=604801"), "AuthorizationQueryParametersError"),
        (("X-Amz-Expires=86400", "X-Amz-Expires=0"), "AuthorizationQueryParametersError"),
        (("&X-Amz-SignedHeaders=host", ""), "AuthorizationQueryParametersError"),
        (("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013"), "AuthorizationQueryParametersError"),
        (("%2Fs3%2F", "%2Fsqs%2F"), "AuthorizationQueryParametersError"),
        (
            ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4"),
            "AuthorizationQueryParametersError",
        ),
        (("X-Amz-Expires=86400", "X-Amz-Expires=86401"), "SignatureDoesNotMatch"),
        (("aeeed9bb", "aeeed9bc"), "SignatureDoesNotMatch"),
    ],
)
def test_presigned_errors(change: tuple[str, str], expected: str) -> None:
    query = PRESIGNED_QUERY.replace(*change)
    assert code_of("GET", "/test.txt", query, {"host": "examplebucket.s3.amazonaws.com"}) == (
        expected
    )


def test_canonical_uri_is_not_normalised() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/a//b/../c/./d/") == "/a//b/../c/./d/"
    assert canonical_uri("/a%20b+c~d%7e") == "/a%20b%2Bc~d~"
    assert canonical_uri("/%E2%82%AC/%c3%a9") == "/%E2%82%AC/%C3%A9"
    assert canonical_uri("/k%2Fslash") == "/k/slash"


def test_canonical_query() -> None:
    pairs = [(b"b", b"2"), (b"a", b"z"), (b"a", b"y"), (b"acl", b""), (b"k", b"a b/~+")]
    assert canonical_query(pairs) == "a=y&a=z&acl=&b=2&k=a%20b%2F~%2B"


# --- real botocore ---


def now() -> datetime:
    """The time botocore signs with: read at each check, never at import (a slow run must
    not age the signatures past the allowed skew)."""
    return datetime.now(UTC)


ODD_KEYS = [
    "plain.txt",
    "with space/and+plus~tilde",
    "unicodé/€uro/日本",
    "a//b/../c/./",
    "dir/",
    "!*'();:@&=$,?#[]%",
]


def view_of(request: AWSRequest) -> HttpRequestView:
    assert request.url is not None
    assert request.method is not None
    parts = urlsplit(str(request.url))
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers.setdefault("host", parts.netloc)
    return HttpRequestView(request.method, parts.path, parts.query, headers)


def botocore_signed(
    method: str,
    key: str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    secret: str = SECRET,
    scheme: str = "http",
    unsigned: bool = False,
) -> HttpRequestView:
    url = f"{scheme}://127.0.0.1:9000/bucket/{quote(key, safe='/~')}"
    request = AWSRequest(method=method, url=url, params=params or {}, headers=headers, data=body)
    if unsigned:
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials(AK, secret), "s3", REGION).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    names = {name.lower(): value for name, value in prepared.headers.items()}
    names.setdefault("host", parts.netloc)
    return HttpRequestView(method, parts.path, parts.query, names)


def botocore_presigned(
    method: str, key: str, *, params: dict[str, str] | None = None, expires: int = 3600
) -> HttpRequestView:
    url = f"https://127.0.0.1:9000/bucket/{quote(key, safe='/~')}"
    request = AWSRequest(method=method, url=url, params=params or {})
    S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", REGION, expires=expires).add_auth(request)
    return view_of(request)


@pytest.mark.parametrize("key", ODD_KEYS)
def test_botocore_header_signed(key: str) -> None:
    view = botocore_signed("PUT", key, body=b"hello", headers={"x-amz-meta-a": "  b   c "})
    result = authenticate(view, lookup, REGION, now())
    assert result.payload_mode is PayloadMode.SIGNED
    assert result.content_sha256 == hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize("key", ODD_KEYS)
def test_botocore_presigned(key: str) -> None:
    view = botocore_presigned("GET", key, params={"versionId": "a b+c/é", "acl": ""})
    result = authenticate(view, lookup, REGION, now())
    assert result.presigned
    assert result.payload_mode is PayloadMode.UNSIGNED


def test_presigned_ignores_an_unsigned_content_sha256_header() -> None:
    view = botocore_presigned("PUT", "key")
    headers = dict(view.headers, **{"x-amz-content-sha256": EMPTY})
    tampered = HttpRequestView(view.method, view.raw_path, view.query_string, headers)
    assert authenticate(tampered, lookup, REGION, now()).payload_mode is PayloadMode.UNSIGNED


def test_presigned_with_signed_content_sha256_header() -> None:
    url = "https://127.0.0.1:9000/bucket/key"
    request = AWSRequest(method="PUT", url=url, headers={"X-Amz-Content-SHA256": EMPTY})
    S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", REGION, expires=60).add_auth(request)
    result = authenticate(view_of(request), lookup, REGION, now())
    assert (result.payload_mode, result.content_sha256) == (PayloadMode.SIGNED, EMPTY)


def test_botocore_query_parameters() -> None:
    params = {"list-type": "2", "prefix": "a b+c/~é", "delimiter": "/", "max-keys": "10"}
    view = botocore_signed("GET", "", params=params)
    assert authenticate(view, lookup, REGION, now()).credential is ROOT


def test_botocore_unsigned_payload() -> None:
    view = botocore_signed(
        "PUT",
        "k",
        body=b"x",
        scheme="https",
        unsigned=True,
        headers={"Content-MD5": "nUb8J2RuLwDDWcmnjWd/zg=="},
    )
    result = authenticate(view, lookup, REGION, now())
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert result.content_sha256 is None


def test_botocore_tampering() -> None:
    def code(view: HttpRequestView, at: datetime | None = None) -> str:
        with pytest.raises(S3Error) as caught:
            authenticate(view, lookup, REGION, at or now())
        return caught.value.code

    good = botocore_signed(
        "PUT", "key", body=b"x", headers={"x-amz-meta-a": "b"}, params={"tagging": ""}
    )
    assert authenticate(good, lookup, REGION, now()).credential is ROOT
    other_secret = botocore_signed("PUT", "key", body=b"x", secret="another-secret")
    assert code(other_secret) == "SignatureDoesNotMatch"
    altered_header = HttpRequestView(
        good.method, good.raw_path, good.query_string, dict(good.headers, **{"x-amz-meta-a": "c"})
    )
    assert code(altered_header) == "SignatureDoesNotMatch"
    altered_query = HttpRequestView(good.method, good.raw_path, "tagging=1", good.headers)
    assert code(altered_query) == "SignatureDoesNotMatch"
    altered_path = HttpRequestView(
        good.method, good.raw_path + "2", good.query_string, good.headers
    )
    assert code(altered_path) == "SignatureDoesNotMatch"
    altered_method = HttpRequestView("POST", good.raw_path, good.query_string, good.headers)
    assert code(altered_method) == "SignatureDoesNotMatch"
    signed_at = datetime.strptime(good.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert code(good, signed_at + timedelta(minutes=16)) == "RequestTimeTooSkewed"
    assert code(good, signed_at - timedelta(minutes=16)) == "RequestTimeTooSkewed"

    presigned = botocore_presigned("GET", "key", expires=60)
    query = dict(parse_qsl(presigned.query_string))
    presigned_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert authenticate(presigned, lookup, REGION, presigned_at + timedelta(seconds=30)).presigned
    assert code(presigned, presigned_at + timedelta(seconds=120)) == "AccessDenied"
    tampered = HttpRequestView(
        "GET", presigned.raw_path, presigned.query_string + "&x=1", presigned.headers
    )
    assert code(tampered) == "SignatureDoesNotMatch"


# --- every x-amz-* header must be signed ---


def _with_headers(view: HttpRequestView, **added: str) -> HttpRequestView:
    headers = dict(view.headers, **{name.replace("_", "-"): v for name, v in added.items()})
    return HttpRequestView(view.method, view.raw_path, view.query_string, headers)


def _refusal(view: HttpRequestView) -> S3Error:
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, REGION, now())
    return caught.value


def test_unsigned_amz_headers_are_refused_with_header_auth() -> None:
    good = botocore_signed("PUT", "slot", body=b"x", headers={"x-amz-meta-a": "b"})
    added = _with_headers(good, x_amz_copy_source="/other/secret", x_amz_meta_z="evil")
    error = _refusal(added)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == "There were headers present in the request which were not signed"
    assert error.fields == {"HeadersNotSigned": "x-amz-copy-source, x-amz-meta-z"}


def test_unsigned_amz_headers_are_refused_with_presigned_urls() -> None:
    url = botocore_presigned("PUT", "slot")
    for name in ("x-amz-copy-source", "x-amz-meta-owner", "x-amz-acl", "x-amz-checksum-crc32"):
        error = _refusal(_with_headers(url, **{name.replace("-", "_"): "v"}))
        assert (error.code, error.fields) == ("AccessDenied", {"HeadersNotSigned": name})
    # Headers outside x-amz-* (what curl and browsers add) are not the signature's business.
    plain = _with_headers(url, user_agent="curl/8", content_type="text/plain", accept="*/*")
    assert authenticate(plain, lookup, REGION, now()).presigned


def test_signed_amz_headers_are_accepted_with_presigned_urls() -> None:
    url = "https://127.0.0.1:9000/bucket/key"
    headers = {"x-amz-meta-owner": "ci", "x-amz-copy-source": "/bucket/other"}
    request = AWSRequest(method="PUT", url=url, headers=headers)
    S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", REGION, expires=60).add_auth(request)
    assert authenticate(view_of(request), lookup, REGION, now()).presigned


def test_content_sha256_is_bound_without_being_listed() -> None:
    """Header auth puts the hash in the canonical request's last line, listed or not."""
    amz_date = "20130524T000000Z"
    headers = {"host": "examplebucket.s3.amazonaws.com", "x-amz-date": amz_date}
    canonical = "\n".join(
        [
            "GET",
            "/test.txt",
            "",
            "host:examplebucket.s3.amazonaws.com\nx-amz-date:20130524T000000Z\n",
            "host;x-amz-date",
            EMPTY,
        ]
    )
    scope = "20130524/us-east-1/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = b"AWS4" + SECRET.encode()
    for part in ("20130524", REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["x-amz-content-sha256"] = EMPTY
    headers["authorization"] = header_auth("host;x-amz-date", signature)
    assert check("GET", "/test.txt", "", headers).content_sha256 == EMPTY
    headers["x-amz-content-sha256"] = hashlib.sha256(b"other").hexdigest()
    assert code_of("GET", "/test.txt", "", headers) == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("signed_text", "sent"),
    [
        ("Zürich · 日本", "Zürich · 日本".encode()),  # UTF-8 sent and signed (most SDKs)
        ("café", "café".encode("latin-1")),  # Latin-1 sent, its text's UTF-8 signed
    ],
)
def test_non_ascii_header_values_are_checked_as_the_bytes_sent(
    signed_text: str, sent: bytes
) -> None:
    """The canonical request is hashed over the header bytes received (the app decodes
    them as Latin-1), or over that text's UTF-8; any other value fails."""
    good = botocore_signed("PUT", "k", body=b"x", headers={"x-amz-meta-a": signed_text})
    received = dict(good.headers, **{"x-amz-meta-a": sent.decode("latin-1")})
    view = HttpRequestView(good.method, good.raw_path, good.query_string, received)
    assert authenticate(view, lookup, REGION, now()).payload_mode is PayloadMode.SIGNED
    altered = dict(received, **{"x-amz-meta-a": (sent + b"!").decode("latin-1")})
    view = HttpRequestView(good.method, good.raw_path, good.query_string, altered)
    with pytest.raises(S3Error) as caught:
        authenticate(view, lookup, REGION, now())
    assert caught.value.code == "SignatureDoesNotMatch"
