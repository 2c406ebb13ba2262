"""Server-side AWS Signature Version 4 verification, as S3 does it.

:func:`authenticate` checks one request, signed either with an ``Authorization`` header or
as a presigned URL (``X-Amz-*`` query parameters), and returns who signed it and how the
body is to be verified (:class:`PayloadMode`). It never reads the body: a hex
``x-amz-content-sha256`` is compared by :mod:`gateway.payload` once the body has streamed,
and aws-chunked signatures by :mod:`gateway.chunked`, using :class:`ChunkSigningContext`.

Canonicalisation follows S3, not the generic SigV4 rules: the path is not normalised
(``a//b``, ``../x`` and a trailing ``/`` are signed as sent), it is only percent-decoded and
strictly re-encoded, and so is every query parameter.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, unquote_to_bytes

from core.errors import S3Error
from core.numbers import NumberError, decimal, is_decimal
from policy.credentials import Credential

ALGORITHM: Final = "AWS4-HMAC-SHA256"
SERVICE: Final = "s3"
TERMINATOR: Final = "aws4_request"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
MAX_PRESIGNED_EXPIRES: Final = 604800  # one week, S3's limit

_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE: Final = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEADER_MALFORMED: Final = "The authorization header is malformed"
_AMZ_PREFIX: Final = "x-amz-"
#: ``x-amz-*`` headers a signature need not list, because listing them adds nothing:
#: ``x-amz-content-sha256`` is the last line of every header-signed canonical request, and
#: a presigned URL ignores it unless it is listed (some signers, such as the CRT's, send it
#: unlisted with presigned URLs).
_BOUND_UNLISTED: Final = frozenset({"x-amz-content-sha256"})
_HEADERS_NOT_SIGNED: Final = "There were headers present in the request which were not signed"


CredentialLookup = Callable[[str], Credential | None]


@dataclass(frozen=True)
class HttpRequestView:
    """What authentication needs of a request, exactly as it arrived.

    ``raw_path`` is still percent-encoded and carries no query; ``query_string`` is raw
    (``""`` if none); ``headers`` has lower-case names, repeated headers joined with ``,``.
    """

    method: str
    raw_path: str
    query_string: str
    headers: Mapping[str, str]


class PayloadMode(enum.Enum):
    """How the request body is bound to the signature (from ``x-amz-content-sha256``)."""

    SIGNED = "SIGNED"  # hex SHA256 of the body
    UNSIGNED = "UNSIGNED-PAYLOAD"  # also every presigned URL without a content hash
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"

    @property
    def streaming(self) -> bool:
        """True for the aws-chunked modes."""
        return self.value.startswith("STREAMING-")


_LITERAL_MODES: Final[dict[str, PayloadMode]] = {
    mode.value: mode for mode in PayloadMode if mode is not PayloadMode.SIGNED
}
_CHUNK_SIGNED_MODES: Final = frozenset(
    {PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER}
)


@dataclass(frozen=True)
class ChunkSigningContext:
    """What verifying aws-chunked signatures needs: the key and the seed of the chain."""

    signing_key: bytes
    seed_signature: str
    amz_date: str
    scope: str  # "20130524/us-east-1/s3/aws4_request"


@dataclass(frozen=True)
class AuthResult:
    """An authenticated request.

    ``content_sha256`` (lower-case hex) is set only in ``SIGNED`` mode, ``chunk_signing``
    only in the ``STREAMING_SIGNED*`` modes.
    """

    credential: Credential
    payload_mode: PayloadMode
    content_sha256: str | None
    chunk_signing: ChunkSigningContext | None
    presigned: bool
    service: str = SERVICE  # the service the request was signed for (its credential scope)


@dataclass(frozen=True)
class _Signed:
    """The signature claim of a request, whichever form carried it."""

    access_key: str
    date: str  # credential scope date, YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    timestamp: datetime


def authenticate(
    req: HttpRequestView,
    lookup: CredentialLookup,
    region: str,
    now: datetime,
    max_skew: timedelta = timedelta(minutes=15),
    *,
    services: frozenset[str] = frozenset({SERVICE}),
    body_sha256: str | None = None,
) -> AuthResult:
    """Verify the SigV4 signature of ``req`` and return who signed it.

    ``services`` are the credential-scope services accepted (S3 only, unless the caller
    serves another protocol at this endpoint, such as IAM's query protocol). A caller that
    has already read the whole body gives its hex SHA256 as ``body_sha256``: it stands for
    an absent ``x-amz-content-sha256`` (SDKs send that header to S3 only), and a signed hash
    that differs is ``XAmzContentSHA256Mismatch``; streaming modes are refused then.

    Every ``x-amz-*`` header of ``req`` must be among the signed headers (bar
    :data:`_BOUND_UNLISTED`): what the signature does not cover cannot be trusted.

    Raises ``S3Error``: ``AccessDenied`` for anonymous or expired requests, and for
    unsigned ``x-amz-*`` headers (named in ``HeadersNotSigned``),
    ``AuthorizationHeaderMalformed`` / ``AuthorizationQueryParametersError`` for a
    malformed claim (wrong region included), ``InvalidAccessKeyId``,
    ``RequestTimeTooSkewed``, ``SignatureDoesNotMatch``, ``InvalidRequest`` /
    ``InvalidArgument`` for a missing or bad ``x-amz-content-sha256``.
    ``now`` is the server time (a naive value is taken as UTC).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    params = _parse_query(req.query_string)
    authorization = req.headers.get("authorization")
    query_auth = _first(params, "X-Amz-Algorithm")
    if authorization is not None and query_auth is not None:
        raise S3Error(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            ArgumentName="Authorization",
            ArgumentValue=authorization,
        )
    if authorization is not None:
        signed = _from_header(authorization, req.headers, region, services)
        _check_skew(signed, now, max_skew)
        content_hash = req.headers.get("x-amz-content-sha256", body_sha256)
        if content_hash is None:
            raise S3Error(
                "InvalidRequest",
                "Missing required header for this request: x-amz-content-sha256",
            )
        presigned = False
    elif query_auth is not None:
        signed = _from_query(params, query_auth, region, now, max_skew, services)
        # A presigned URL binds no body unless it carries a hash, as a parameter or as a
        # signed header; an unsigned header is a later addition and cannot count.
        content_hash = _first(params, "X-Amz-Content-Sha256")
        if content_hash is None and "x-amz-content-sha256" in signed.signed_headers:
            content_hash = req.headers.get("x-amz-content-sha256")
        if content_hash is None:
            content_hash = PayloadMode.UNSIGNED.value
        presigned = True
    else:
        raise S3Error("AccessDenied", "Anonymous access is not allowed.")

    _check_amz_headers_signed(req.headers, signed.signed_headers)
    mode = _payload_mode(content_hash)
    if body_sha256 is not None:
        _check_read_body(mode, content_hash, body_sha256)
    credential = lookup(signed.access_key)
    if credential is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=signed.access_key)

    canonical = "\n".join(
        (
            req.method,
            canonical_uri(req.raw_path),
            canonical_query(params, drop_signature=presigned),
            _canonical_headers(signed.signed_headers, req.headers),
            ";".join(signed.signed_headers),
            content_hash,
        )
    )
    scope = f"{signed.date}/{signed.region}/{signed.service}/{TERMINATOR}"
    key = signing_key(credential.secret_key, signed.date, signed.region, signed.service)
    for encoded in _signed_forms(canonical):
        to_sign = "\n".join(
            (ALGORITHM, signed.amz_date, scope, hashlib.sha256(encoded).hexdigest())
        )
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signed.signature):
            break
    else:
        raise S3Error(
            "SignatureDoesNotMatch",
            AWSAccessKeyId=signed.access_key,
            StringToSign=to_sign,
            SignatureProvided=signed.signature,
            CanonicalRequest=canonical,
        )

    chunk_signing = None
    if mode in _CHUNK_SIGNED_MODES:
        chunk_signing = ChunkSigningContext(key, signed.signature, signed.amz_date, scope)
    return AuthResult(
        credential=credential,
        payload_mode=mode,
        content_sha256=content_hash.lower() if mode is PayloadMode.SIGNED else None,
        chunk_signing=chunk_signing,
        presigned=presigned,
        service=signed.service,
    )


def _check_read_body(mode: PayloadMode, content_hash: str, body_sha256: str) -> None:
    """A body read whole before verification must be what the signature binds."""
    if mode.streaming:
        raise S3Error("InvalidRequest", "This endpoint does not accept aws-chunked bodies.")
    if mode is PayloadMode.SIGNED and content_hash.lower() != body_sha256.lower():
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            ClientComputedContentSHA256=content_hash,
            S3ComputedContentSHA256=body_sha256,
        )


@functools.lru_cache(maxsize=1024)
def signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key for one secret, day, region and service (cached)."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_uri(raw_path: str) -> str:
    """The raw path percent-decoded and strictly re-encoded, ``/`` kept, never normalised."""
    if not raw_path:
        return "/"
    return quote(unquote_to_bytes(raw_path), safe="/")


def canonical_query(params: list[tuple[bytes, bytes]], *, drop_signature: bool = False) -> str:
    """Decoded query pairs strictly re-encoded and sorted by name, then value."""
    pairs = sorted(
        (quote(name, safe=""), quote(value, safe=""))
        for name, value in params
        if not (drop_signature and name == b"X-Amz-Signature")
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def _parse_query(query_string: str) -> list[tuple[bytes, bytes]]:
    # A literal "+" is a space, as S3 reads query strings (and as form-encoding clients send
    # it while signing %20); a real plus arrives as %2B.
    pairs = []
    for part in query_string.replace("+", " ").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _first(params: list[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.encode()
    for key, value in params:
        if key == wanted:
            return value.decode("utf-8", "replace")
    return None


def _signed_forms(canonical: str) -> list[bytes]:
    """The bytes a client may have hashed as ``canonical``, most likely first.

    Header values reach the gateway as bytes decoded as Latin-1, so encoding them back gives
    the bytes sent, which is what SDKs sign (botocore, Go, Java and JavaScript send and sign
    UTF-8 header values). When a value holds non-ASCII bytes, the UTF-8 of their Latin-1
    text is tried too: the form the gateway checked before, kept for a client that sends
    Latin-1 bytes and signs their text's UTF-8. Either form binds the very bytes received,
    so accepting both admits nothing the key did not sign.
    """
    if canonical.isascii():
        return [canonical.encode("ascii")]
    try:
        sent = canonical.encode("latin-1")
    except UnicodeEncodeError:  # text not decoded from the wire (a direct caller's)
        return [canonical.encode()]
    return [sent, canonical.encode()]


def _canonical_headers(names: tuple[str, ...], headers: Mapping[str, str]) -> str:
    return "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names)


def _check_amz_headers_signed(headers: Mapping[str, str], signed: tuple[str, ...]) -> None:
    """``AccessDenied`` naming every ``x-amz-*`` header the signature does not cover."""
    unsigned = sorted(
        name
        for name in headers
        if name.startswith(_AMZ_PREFIX) and name not in signed and name not in _BOUND_UNLISTED
    )
    if unsigned:
        raise S3Error("AccessDenied", _HEADERS_NOT_SIGNED, HeadersNotSigned=", ".join(unsigned))


def _payload_mode(value: str) -> PayloadMode:
    mode = _LITERAL_MODES.get(value)
    if mode is not None:
        return mode
    if _HEX64.fullmatch(value):
        return PayloadMode.SIGNED
    raise S3Error(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
        "or a valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value,
    )


def _from_header(
    authorization: str, headers: Mapping[str, str], region: str, services: frozenset[str]
) -> _Signed:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise S3Error(
            "InvalidRequest",
            f"The authorization mechanism you have provided is not supported. "
            f"Please use {ALGORITHM}.",
        )

    def malformed(detail: str = "") -> S3Error:
        message = _HEADER_MALFORMED + (f"; {detail}" if detail else ".")
        return S3Error("AuthorizationHeaderMalformed", message)

    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields:
            raise malformed()
        fields[name] = value.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise malformed()

    access_key, date, cred_region, service = _parse_credential(
        fields["Credential"], malformed, services
    )
    if cred_region != region:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"{_HEADER_MALFORMED}; the region '{cred_region}' is wrong; expecting '{region}'",
            Region=region,
        )
    signed_headers = _parse_signed_headers(fields["SignedHeaders"], malformed)
    signature = fields["Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise malformed("the signature is not 64 lower-case hex characters")

    amz_date = headers.get("x-amz-date") or headers.get("date")
    if amz_date is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    amz_date = amz_date.strip()
    timestamp = _parse_amz_date(amz_date)
    if timestamp is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if amz_date[:8] != date:
        raise malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    return _Signed(
        access_key, date, cred_region, service, signed_headers, signature, amz_date, timestamp
    )


_QUERY_REQUIRED: Final = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)


def _from_query(
    params: list[tuple[bytes, bytes]],
    algorithm: str,
    region: str,
    now: datetime,
    max_skew: timedelta,
    services: frozenset[str],
) -> _Signed:
    def malformed(detail: str = "") -> S3Error:
        message = "Error parsing the X-Amz-Credential parameter" + (
            f"; {detail}" if detail else "."
        )
        return S3Error("AuthorizationQueryParametersError", message)

    if algorithm != ALGORITHM:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f'X-Amz-Algorithm only supports "{ALGORITHM}"',
        )
    values = {
        name: _first(params, name)
        for name in (
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
    }
    present = {name: value for name, value in values.items() if value is not None}
    if len(present) != len(values):
        raise S3Error("AuthorizationQueryParametersError", _QUERY_REQUIRED)

    access_key, date, cred_region, service = _parse_credential(
        present["X-Amz-Credential"], malformed, services
    )
    if cred_region != region:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f"Error parsing the X-Amz-Credential parameter; the region '{cred_region}' is "
            f"wrong; expecting '{region}'",
            Region=region,
        )
    amz_date = present["X-Amz-Date"]
    timestamp = _parse_amz_date(amz_date)
    if timestamp is None:
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        )
    if amz_date[:8] != date:
        raise malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    expires_text = present["X-Amz-Expires"]
    try:
        expires = decimal(expires_text, high=MAX_PRESIGNED_EXPIRES)
    except NumberError as error:
        if not error.out_of_range:
            raise S3Error(
                "AuthorizationQueryParametersError", "X-Amz-Expires should be a number"
            ) from None
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ) from None
    if expires < 1:
        raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative")
    if timestamp - max_skew > now:
        raise S3Error("AccessDenied", "Request is not yet valid")
    if now > timestamp + timedelta(seconds=expires):
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            XAmzExpires=expires_text,
            Expires=(timestamp + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    signed_headers = _parse_signed_headers(present["X-Amz-SignedHeaders"], malformed)
    signature = present["X-Amz-Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Signature must be 64 lower-case hex characters",
        )
    return _Signed(
        access_key, date, cred_region, service, signed_headers, signature, amz_date, timestamp
    )


def _parse_credential(
    value: str, malformed: Callable[[str], S3Error], services: frozenset[str]
) -> tuple[str, str, str, str]:
    # Split from the right: only the scope's four parts are fixed, not the key's characters.
    parts = value.strip().rsplit("/", 4)
    if len(parts) != 5 or not parts[0]:
        raise malformed(
            "the Credential is mal-formed; "
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, date, region, service, terminator = parts
    if not (len(date) == 8 and is_decimal(date)):
        raise malformed(
            f'incorrect date format "{date}". '
            'This date in the credential must be in the format "yyyyMMdd".'
        )
    if service not in services:
        expected = SERVICE if SERVICE in services else "/".join(sorted(services))
        raise malformed(f'incorrect service "{service}". This endpoint belongs to "{expected}".')
    if terminator != TERMINATOR:
        raise malformed(f'incorrect terminal "{terminator}". This endpoint uses "{TERMINATOR}".')
    return access_key, date, region, service


def _parse_signed_headers(value: str, malformed: Callable[[str], S3Error]) -> tuple[str, ...]:
    names = tuple(value.strip().split(";"))
    if not all(names) or any(name != name.lower() for name in names):
        raise malformed("SignedHeaders must be lower-case names separated by ';'")
    if "host" not in names:
        raise malformed("the host header must be signed")
    # Kept in the client's order: that is the order its canonical request listed them in.
    return names


def _parse_amz_date(value: str) -> datetime | None:
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:  # slicing is several times faster than strptime on this per-request path
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _check_skew(signed: _Signed, now: datetime, max_skew: timedelta) -> None:
    if abs(now - signed.timestamp) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            RequestTime=signed.amz_date,
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            MaxAllowedSkewMilliseconds=str(int(max_skew.total_seconds() * 1000)),
        )
