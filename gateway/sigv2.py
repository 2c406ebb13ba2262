"""Server-side AWS Signature Version 2 verification, as S3 does it.

:func:`authenticate_v2` checks a request signed with ``Authorization: AWS <key>:<signature>``
or as a SigV2 presigned URL (``AWSAccessKeyId``, ``Signature``, ``Expires``), the form
boto3's ``generate_presigned_url`` still produces by default. The signature is
``base64(HMAC-SHA1(secret, StringToSign))`` over::

    VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
    CanonicalizedAmzHeaders CanonicalizedResource

SigV2 never covers the body: the result is ``UNSIGNED`` and :mod:`gateway.payload` still
checks ``Content-MD5`` and any checksums. The resource is the path exactly as sent (still
percent-encoded, never normalised), prefixed with ``/<bucket>`` for virtual-hosted requests,
followed by the signed sub-resources (:data:`SIGNED_SUBRESOURCES`) sorted by name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import unquote_to_bytes

from core.errors import S3Error
from core.numbers import NumberError, decimal
from gateway.sigv4 import AuthResult, CredentialLookup, HttpRequestView, PayloadMode
from gateway.sigv4_presigned import MAX_PRESIGNED_EXPIRES

#: Query parameters that are part of the SigV2 CanonicalizedResource: the sub-resources of
#: the AWS documentation, those that SDK signers (botocore's ``HmacV1Auth``) add, and every
#: sub-resource that selects an operation in :mod:`gateway.routing` (``list-type`` excepted:
#: it only picks the listing format and no signer includes it), so that a signed request
#: cannot be turned into another operation by appending one.
SIGNED_SUBRESOURCES: Final = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "defaultObjectAcl",
        "delete",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "partNumber",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "retention",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)

_AMZ_PREFIX: Final = "x-amz-"
_NEEDS_DATE: Final = "AWS authentication requires a valid Date or x-amz-date header"
_QUERY_REQUIRED: Final = (
    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
)


@dataclass(frozen=True)
class _QueryParam:
    name: str
    value: bytes
    has_value: bool  # "acl=" and "acl" are signed as sent


def authenticate_v2(
    req: HttpRequestView,
    lookup: CredentialLookup,
    now: datetime,
    max_skew: timedelta = timedelta(minutes=15),
    bucket_in_host: str | None = None,
) -> AuthResult:
    """Verify the SigV2 signature of ``req`` (header or query form) and return who signed it.

    ``bucket_in_host`` is the bucket of a virtual-hosted request (None for path style).
    A presigned URL lives at most as long as a SigV4 one: its ``Expires`` may lie at most
    :data:`~gateway.sigv4_presigned.MAX_PRESIGNED_EXPIRES` seconds (plus ``max_skew``, for the
    signer's clock) ahead of ``now``.
    Raises ``S3Error``: ``InvalidArgument`` for a malformed ``Authorization`` header,
    ``AccessDenied`` for a missing date or query parameter and for an expired URL or one
    that expires too far ahead,
    ``RequestTimeTooSkewed``, ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``.
    ``now`` is the server time (a naive value is taken as UTC).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    params = _parse_query(req.query_string)
    authorization = req.headers.get("authorization")
    if authorization is not None:
        access_key, signature = _from_header(authorization)
        date_line = _check_header_date(req.headers, now, max_skew)
        presigned = False
    else:
        access_key, signature, date_line = _from_query(params, now, max_skew)
        presigned = True

    credential = lookup(access_key)
    if credential is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)

    to_sign = _string_to_sign(req, params, date_line, bucket_in_host)
    expected = base64.b64encode(
        hmac.new(credential.secret_key.encode(), to_sign, hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise S3Error(
            "SignatureDoesNotMatch",
            AWSAccessKeyId=access_key,
            StringToSign=to_sign.decode("utf-8", "replace"),
            SignatureProvided=signature,
        )
    return AuthResult(
        credential=credential,
        payload_mode=PayloadMode.UNSIGNED,
        content_sha256=None,
        chunk_signing=None,
        presigned=presigned,
    )


_SECURITY_TOKEN: Final = "x-amz-security-token"


def _string_to_sign(
    req: HttpRequestView,
    params: list[_QueryParam],
    date_line: str,
    bucket_in_host: str | None,
) -> bytes:
    """The SigV2 StringToSign, as the bytes that arrived (headers and path undecoded)."""
    headers = req.headers
    lines = [
        req.method.encode(),
        _raw(headers.get("content-md5", "").strip()),
        _raw(headers.get("content-type", "").strip()),
        _raw(date_line),
    ]
    amz_headers = {name: value for name, value in headers.items() if name.startswith(_AMZ_PREFIX)}
    # A presigned URL carries a session token as a query parameter, signed as a header.
    token = _first(params, _SECURITY_TOKEN)
    if token is not None:
        amz_headers.setdefault(_SECURITY_TOKEN, token)
    amz = b"".join(_raw(f"{name}:{amz_headers[name].strip()}\n") for name in sorted(amz_headers))
    return b"\n".join(lines) + b"\n" + amz + _canonical_resource(req, params, bucket_in_host)


def _canonical_resource(
    req: HttpRequestView, params: list[_QueryParam], bucket_in_host: str | None
) -> bytes:
    """``[/bucket]`` + the raw path + ``?`` and the signed sub-resources sorted by name.

    A bucket is always followed by a slash, as AWS and the SDKs sign it: path-style
    ``/bucket`` is the resource ``/bucket/``, like virtual-hosted ``/`` on that bucket.
    """
    path = _raw(req.raw_path or "/")
    if bucket_in_host is not None:
        path = b"/" + bucket_in_host.encode() + path
    elif path != b"/" and b"/" not in path[1:]:
        path += b"/"
    signed = sorted(
        (param for param in params if param.name in SIGNED_SUBRESOURCES),
        key=lambda param: param.name,
    )
    if not signed:
        return path
    return (
        path
        + b"?"
        + b"&".join(
            param.name.encode() + (b"=" + param.value if param.has_value else b"")
            for param in signed
        )
    )


def _raw(text: str) -> bytes:
    # The app decodes the path and headers as latin-1, so this restores the bytes sent.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _parse_query(query_string: str) -> list[_QueryParam]:
    # "+" is a space, as S3 reads query strings; a real plus arrives as %2B.
    params = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, sep, value = part.replace("+", " ").partition("=")
        params.append(
            _QueryParam(
                unquote_to_bytes(name).decode("utf-8", "replace"),
                unquote_to_bytes(value),
                bool(sep),
            )
        )
    return params


def _first(params: list[_QueryParam], name: str) -> str | None:
    for param in params:
        if param.name == name:
            return param.value.decode("utf-8", "replace")
    return None


def _from_header(authorization: str) -> tuple[str, str]:
    scheme, _, credentials = authorization.strip().partition(" ")
    access_key, sep, signature = credentials.strip().rpartition(":")
    if scheme != "AWS" or not sep or not access_key or not signature:
        raise S3Error(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            ArgumentName="Authorization",
            ArgumentValue=authorization,
        )
    return access_key, signature


def _check_header_date(headers: Mapping[str, str], now: datetime, max_skew: timedelta) -> str:
    """Check the request time; return the StringToSign's date line.

    With ``x-amz-date`` (signed among the amz headers) the Date line is empty, as AWS
    documents, and any ``Date`` header is ignored.
    """
    amz_date = headers.get("x-amz-date")
    stamp = amz_date if amz_date is not None else headers.get("date")
    timestamp = _parse_http_date(stamp) if stamp is not None else None
    if stamp is None or timestamp is None:
        raise S3Error("AccessDenied", _NEEDS_DATE)
    if abs(now - timestamp) > max_skew:
        raise S3Error(
            "RequestTimeTooSkewed",
            RequestTime=stamp.strip(),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            MaxAllowedSkewMilliseconds=str(int(max_skew.total_seconds() * 1000)),
        )
    return "" if amz_date is not None else stamp.strip()


def _parse_http_date(value: str) -> datetime | None:
    text = value.strip()
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.strptime(text, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _from_query(
    params: list[_QueryParam], now: datetime, max_skew: timedelta
) -> tuple[str, str, str]:
    access_key = _first(params, "AWSAccessKeyId")
    signature = _first(params, "Signature")
    expires = _first(params, "Expires")
    if not access_key or not signature or expires is None:
        raise S3Error("AccessDenied", _QUERY_REQUIRED)
    try:
        expiry = decimal(expires)
    except NumberError:
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch)") from None
    if now.timestamp() > expiry:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            Expires=_iso(expiry),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    latest = now + timedelta(seconds=MAX_PRESIGNED_EXPIRES) + max_skew
    if expiry > latest.timestamp():
        raise S3Error(
            "AccessDenied",
            f"Request expiry is too far ahead: a presigned URL is valid for at most "
            f"{MAX_PRESIGNED_EXPIRES} seconds (7 days)",
            Expires=_iso(expiry),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    # Base64 has no spaces: a space is a "+" some client left unencoded.
    return access_key, signature.replace(" ", "+"), expires


def _iso(epoch: int) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds
        return str(epoch)
