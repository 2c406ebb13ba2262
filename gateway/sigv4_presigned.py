"""The presigned-URL form of a SigV4 claim (``X-Amz-*`` query parameters).

:func:`claim_from_query` parses ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
``X-Amz-Expires``, ``X-Amz-SignedHeaders`` and ``X-Amz-Signature`` into a
:class:`~gateway.sigv4_claim.SignatureClaim`, and refuses a URL that is not yet valid or
has expired. The signature itself is checked by :mod:`gateway.sigv4`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from core.errors import S3Error
from core.numbers import NumberError, decimal
from gateway.sigv4_claim import (
    SIGNATURE,
    SignatureClaim,
    parse_amz_date,
    parse_credential,
    parse_signed_headers,
)
from gateway.sigv4_signing import ALGORITHM, QueryPairs, first

MAX_PRESIGNED_EXPIRES: Final = 604800  # one week, S3's limit

_QUERY_REQUIRED: Final = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
_PARAMETERS: Final = (
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


def claim_from_query(
    params: QueryPairs,
    algorithm: str,
    region: str,
    now: datetime,
    max_skew: timedelta,
    services: frozenset[str],
) -> SignatureClaim:
    """The claim of a presigned URL whose ``X-Amz-Algorithm`` is ``algorithm``.

    ``now`` (aware) must lie within ``X-Amz-Date`` minus ``max_skew`` and ``X-Amz-Date`` plus
    ``X-Amz-Expires`` (1 to :data:`MAX_PRESIGNED_EXPIRES` seconds). Raises ``S3Error``:
    ``AuthorizationQueryParametersError`` for a missing or malformed parameter (wrong region
    included), ``AccessDenied`` for a URL not yet valid or expired.
    """

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
    values = {name: first(params, name) for name in _PARAMETERS}
    present = {name: value for name, value in values.items() if value is not None}
    if len(present) != len(values):
        raise S3Error("AuthorizationQueryParametersError", _QUERY_REQUIRED)

    access_key, date, cred_region, service = parse_credential(
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
    timestamp = parse_amz_date(amz_date)
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
    signed_headers = parse_signed_headers(present["X-Amz-SignedHeaders"], malformed)
    signature = present["X-Amz-Signature"]
    if not SIGNATURE.fullmatch(signature):
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Signature must be 64 lower-case hex characters",
        )
    return SignatureClaim(
        access_key, date, cred_region, service, signed_headers, signature, amz_date, timestamp
    )
