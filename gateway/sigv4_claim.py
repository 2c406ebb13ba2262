"""A SigV4 signature claim: what a request says about who signed it, when and how, in
whichever form it arrived (:mod:`gateway.sigv4_header`, :mod:`gateway.sigv4_presigned`).

:class:`SignatureClaim` is a parsed, well-formed claim; nothing here checks a signature.
The field parsers are shared by both forms; each takes the form's ``malformed`` error
factory, so a bad field is reported as that form reports it
(``AuthorizationHeaderMalformed`` or ``AuthorizationQueryParametersError``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from core.errors import S3Error
from core.numbers import is_decimal
from gateway.sigv4_signing import SERVICE, TERMINATOR

#: A signature as a claim must give it: 64 lower-case hex characters.
SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE: Final = re.compile(r"[0-9]{8}T[0-9]{6}Z")

#: Builds the form's error for a malformed field, given a detail ("" for none).
Malformed = Callable[[str], S3Error]


@dataclass(frozen=True)
class SignatureClaim:
    """The signature claim of a request, whichever form carried it."""

    access_key: str
    date: str  # credential scope date, YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    timestamp: datetime


def parse_credential(
    value: str, malformed: Malformed, services: frozenset[str]
) -> tuple[str, str, str, str]:
    """(access key, date, region, service) of ``<AKID>/YYYYMMDD/REGION/SERVICE/aws4_request``;
    the service must be one of ``services``. The region is checked by the caller."""
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


def parse_signed_headers(value: str, malformed: Malformed) -> tuple[str, ...]:
    """The signed header names, lower-case, ``host`` among them, in the client's order."""
    names = tuple(value.strip().split(";"))
    if not all(names) or any(name != name.lower() for name in names):
        raise malformed("SignedHeaders must be lower-case names separated by ';'")
    if "host" not in names:
        raise malformed("the host header must be signed")
    # Kept in the client's order: that is the order its canonical request listed them in.
    return names


def parse_amz_date(value: str) -> datetime | None:
    """The UTC time of an ISO 8601 basic ``YYYYMMDDTHHMMSSZ`` value (None: not one)."""
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
