"""Server-side AWS Signature Version 4 verification, as S3 does it.

:func:`authenticate` checks one request, signed either with an ``Authorization`` header or
as a presigned URL (``X-Amz-*`` query parameters), and returns who signed it and how the
body is to be verified (:class:`PayloadMode`). It never reads the body: a hex
``x-amz-content-sha256`` is compared by :mod:`gateway.payload` once the body has streamed,
and aws-chunked signatures by :mod:`gateway.chunked`, using :class:`ChunkSigningContext`.

The parts: the two forms of a claim are parsed by :mod:`gateway.sigv4_header` and
:mod:`gateway.sigv4_presigned` (their shared fields by :mod:`gateway.sigv4_claim`); the
canonical request and the signing key are :mod:`gateway.sigv4_signing`'s. This module holds
what a caller sees (the request view, the result, the payload modes) and the checks that
bind them: one auth mechanism, clock skew, signed ``x-amz-*`` headers, the payload hash and
the signature itself.
"""

from __future__ import annotations

import enum
import functools
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from core.errors import S3Error
from gateway.sigv4_claim import SignatureClaim
from gateway.sigv4_header import claim_from_header
from gateway.sigv4_presigned import claim_from_query
from gateway.sigv4_signing import (
    SERVICE,
    QueryPairs,
    canonical_request,
    credential_scope,
    first,
    parse_query,
    signature,
    signed_forms,
    signing_key,
    string_to_sign,
)
from policy.credentials import Credential

_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
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
    The query is parsed once, when first asked for (:attr:`query_pairs`, :attr:`query_names`),
    and shared by every step that reads it: the anonymity test, the credential lookup and the
    signature check.
    """

    method: str
    raw_path: str
    query_string: str
    headers: Mapping[str, str]

    @functools.cached_property
    def query_pairs(self) -> QueryPairs:
        """The query's pairs as :func:`~gateway.sigv4_signing.parse_query` decodes them."""
        return parse_query(self.query_string)

    @functools.cached_property
    def query_names(self) -> frozenset[str]:
        """The names of the query's parameters (invalid UTF-8 replaced)."""
        return frozenset(name.decode("utf-8", "replace") for name, _ in self.query_pairs)


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
    params = req.query_pairs
    authorization = req.headers.get("authorization")
    query_auth = first(params, "X-Amz-Algorithm")
    if authorization is not None and query_auth is not None:
        raise S3Error(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            ArgumentName="Authorization",
            ArgumentValue=authorization,
        )
    if authorization is not None:
        signed = claim_from_header(authorization, req.headers, region, services)
        _check_skew(signed, now, max_skew)
        content_hash = req.headers.get("x-amz-content-sha256", body_sha256)
        if content_hash is None:
            raise S3Error(
                "InvalidRequest",
                "Missing required header for this request: x-amz-content-sha256",
            )
        presigned = False
    elif query_auth is not None:
        signed = claim_from_query(params, query_auth, region, now, max_skew, services)
        # A presigned URL binds no body unless it carries a hash, as a parameter or as a
        # signed header; an unsigned header is a later addition and cannot count.
        content_hash = first(params, "X-Amz-Content-Sha256")
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

    canonical = canonical_request(
        req.method,
        req.raw_path,
        params,
        req.headers,
        signed.signed_headers,
        content_hash,
        presigned=presigned,
    )
    scope = credential_scope(signed.date, signed.region, signed.service)
    key = signing_key(credential.secret_key, signed.date, signed.region, signed.service)
    for encoded in signed_forms(canonical):
        to_sign = string_to_sign(signed.amz_date, scope, encoded)
        if hmac.compare_digest(signature(key, to_sign), signed.signature):
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


def _check_skew(signed: SignatureClaim, now: datetime, max_skew: timedelta) -> None:
    if abs(now - signed.timestamp) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            RequestTime=signed.amz_date,
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            MaxAllowedSkewMilliseconds=str(int(max_skew.total_seconds() * 1000)),
        )
