"""Small pieces the handlers share: the owner identity, bucket-name rules, the site policy store."""

from __future__ import annotations

import re
from collections.abc import Mapping

from lxml import etree

from core.errors import S3Error
from core.numbers import int_argument
from gateway import s3xml
from gateway.request import S3Request
from policy.bucket_access import canonical_id
from policy.policies import PolicyResolver
from translators.multipart import MAX_PART_NUMBER

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_CANNED_PRIVATE = frozenset({"private", "bucket-owner-full-control"})
#: S3 reads its integer query parameters as 32-bit signed integers.
INT32_MAX = 2**31 - 1


def owner_id(principal: str) -> str:
    """A stable canonical-user-style id for a principal (64 hex characters)."""
    return canonical_id(principal)


def owner_element(req: S3Request, tag: str = "Owner") -> etree._Element:
    principal = req.ctx.principal
    return s3xml.group(
        tag, [s3xml.text("ID", owner_id(principal)), s3xml.text("DisplayName", principal)]
    )


async def site_policies(req: S3Request) -> PolicyResolver:
    """The site policy store, for a bucket that exists (``NoSuchBucket`` otherwise);
    ``NotImplemented`` when the gateway was wired without one."""
    if req.services is None:
        raise S3Error(
            "NotImplemented",
            f"{req.operation.value} needs the site policy store, which is not configured.",
        )
    await req.backend.head_bucket(req.ctx, req.bucket)
    return req.services.policies


def validate_bucket_name(name: str) -> None:
    """S3's general-purpose bucket naming rules; ``InvalidBucketName`` naming the rule broken."""
    reason = None
    if not _BUCKET.match(name):
        reason = (
            "Bucket names are 3 to 63 characters of lowercase letters, digits, dots and "
            "hyphens, and begin and end with a letter or digit."
        )
    elif ".." in name or ".-" in name or "-." in name:
        reason = "Bucket names must not contain two adjacent periods or a period next to a hyphen."
    elif _IPV4.match(name):
        reason = "Bucket names must not be formatted as an IP address."
    elif name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(
        ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
    ):
        reason = "Bucket names must not use a prefix or suffix S3 reserves."
    if reason:
        raise S3Error("InvalidBucketName", reason, BucketName=name)


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter clamped to ``high``, as S3 clamps ``max-keys``;
    ``InvalidArgument`` when it is not a number or outside ``low``..2^31-1."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = int_argument(
        name,
        raw,
        low=low,
        high=INT32_MAX,
        message=f"Provided {name} not an integer or within integer range",
    )
    return min(value, high)


def part_number(raw: str) -> int:
    """The ``partNumber`` query parameter: 1 to 10,000, else ``InvalidArgument``."""
    return int_argument(
        "partNumber",
        raw,
        low=1,
        high=MAX_PART_NUMBER,
        message="Part number must be an integer between 1 and 10000, inclusive",
    )
