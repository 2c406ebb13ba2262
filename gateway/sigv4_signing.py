"""The signing half of AWS Signature Version 4, as S3 does it: canonical requests, signing
keys and signatures.

Pure functions of their arguments, no S3 errors: :mod:`gateway.sigv4` parses a request's
claim and compares the signature computed here with it; :mod:`gateway.post_auth` and
:mod:`gateway.chunked` sign with :func:`signing_key` too.

Canonicalisation follows S3, not the generic SigV4 rules: the path is not normalised
(``a//b``, ``../x`` and a trailing ``/`` are signed as sent), it is only percent-decoded and
strictly re-encoded, and so is every query parameter.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, unquote_to_bytes

ALGORITHM: Final = "AWS4-HMAC-SHA256"
SERVICE: Final = "s3"
TERMINATOR: Final = "aws4_request"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()

#: Decoded query pairs in the order they arrived.
QueryPairs = list[tuple[bytes, bytes]]


@functools.lru_cache(maxsize=1024)
def signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key for one secret, day, region and service (cached)."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def credential_scope(date: str, region: str, service: str) -> str:
    """``"20130524/us-east-1/s3/aws4_request"``."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def canonical_uri(raw_path: str) -> str:
    """The raw path percent-decoded and strictly re-encoded, ``/`` kept, never normalised."""
    if not raw_path:
        return "/"
    return quote(unquote_to_bytes(raw_path), safe="/")


def canonical_query(params: QueryPairs, *, drop_signature: bool = False) -> str:
    """Decoded query pairs strictly re-encoded and sorted by name, then value."""
    pairs = sorted(
        (quote(name, safe=""), quote(value, safe=""))
        for name, value in params
        if not (drop_signature and name == b"X-Amz-Signature")
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_headers(names: tuple[str, ...], headers: Mapping[str, str]) -> str:
    """The canonical header lines of the signed ``names`` (lower-case), in their order."""
    return "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names)


def canonical_request(
    method: str,
    raw_path: str,
    params: QueryPairs,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    content_hash: str,
    *,
    presigned: bool,
) -> str:
    """The canonical request of a request signed with ``signed_headers`` (a presigned URL's
    own ``X-Amz-Signature`` left out of its query)."""
    return "\n".join(
        (
            method,
            canonical_uri(raw_path),
            canonical_query(params, drop_signature=presigned),
            canonical_headers(signed_headers, headers),
            ";".join(signed_headers),
            content_hash,
        )
    )


def string_to_sign(amz_date: str, scope: str, hashed: bytes) -> str:
    """The string to sign for the canonical request whose bytes are ``hashed``."""
    return "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(hashed).hexdigest()))


def signature(key: bytes, to_sign: str) -> str:
    """The lower-case hex signature of ``to_sign`` under signing key ``key``."""
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def parse_query(query_string: str) -> QueryPairs:
    """The raw query string's pairs, percent-decoded (a pair without ``=`` has value b"")."""
    # A literal "+" is a space, as S3 reads query strings (and as form-encoding clients send
    # it while signing %20); a real plus arrives as %2B.
    pairs = []
    for part in query_string.replace("+", " ").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def first(params: QueryPairs, name: str) -> str | None:
    """The first value of parameter ``name`` as text (None: absent)."""
    wanted = name.encode()
    for key, value in params:
        if key == wanted:
            return value.decode("utf-8", "replace")
    return None


def signed_forms(canonical: str) -> list[bytes]:
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
