"""The ``Authorization`` header form of a SigV4 claim.

:func:`claim_from_header` parses ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...`` and the request's ``x-amz-date`` (or ``Date``) into a
:class:`~gateway.sigv4_claim.SignatureClaim`, or raises the S3 error S3 gives for it. It
checks the claim's form, region and dates; the clock skew and the signature itself are
:mod:`gateway.sigv4`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from core.errors import S3Error
from gateway.sigv4_claim import (
    SIGNATURE,
    SignatureClaim,
    parse_amz_date,
    parse_credential,
    parse_signed_headers,
)
from gateway.sigv4_signing import ALGORITHM

_HEADER_MALFORMED: Final = "The authorization header is malformed"
_FIELDS: Final = frozenset({"Credential", "SignedHeaders", "Signature"})


def claim_from_header(
    authorization: str, headers: Mapping[str, str], region: str, services: frozenset[str]
) -> SignatureClaim:
    """The claim of an ``Authorization`` header for ``region`` and one of ``services``.

    Raises ``S3Error``: ``InvalidRequest`` for another algorithm,
    ``AuthorizationHeaderMalformed`` for a malformed header (wrong region, or a credential
    date other than the request's, included), ``AccessDenied`` without a valid date header.
    """
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
    if set(fields) != _FIELDS:
        raise malformed()

    access_key, date, cred_region, service = parse_credential(
        fields["Credential"], malformed, services
    )
    if cred_region != region:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"{_HEADER_MALFORMED}; the region '{cred_region}' is wrong; expecting '{region}'",
            Region=region,
        )
    signed_headers = parse_signed_headers(fields["SignedHeaders"], malformed)
    signature = fields["Signature"]
    if not SIGNATURE.fullmatch(signature):
        raise malformed("the signature is not 64 lower-case hex characters")

    amz_date = headers.get("x-amz-date") or headers.get("date")
    if amz_date is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    amz_date = amz_date.strip()
    timestamp = parse_amz_date(amz_date)
    if timestamp is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if amz_date[:8] != date:
        raise malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    return SignatureClaim(
        access_key, date, cred_region, service, signed_headers, signature, amz_date, timestamp
    )
