"""ListObjectsV2, ListObjects (V1) and ListObjectVersions (unversioned buckets)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import quote

from lxml import etree

from gateway import s3xml
from gateway.errors import S3Error
from gateway.handlers.common import int_param, owner_element
from gateway.request import S3Request
from gateway.responses import Reply, quote_etag, xml_reply
from translators.base import ListPage, ListQuery, ObjectInfo

E, T, G = s3xml.element, s3xml.text, s3xml.group
MAX_KEYS = 1000


def url_encoder(req: S3Request) -> Callable[[str], str]:
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return lambda value: value
    if encoding != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding,
        )
    return lambda value: quote(value, safe="/")


def encode_token(start_after: str) -> str:
    return base64.urlsafe_b64encode(start_after.encode("utf-8", "surrogatepass")).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token,
        ) from exc


async def _page(req: S3Request, start_after: str) -> tuple[ListQuery, ListPage]:
    query = ListQuery(
        prefix=req.query.get("prefix", ""),
        delimiter=req.query.get("delimiter", ""),
        start_after=start_after,
        max_keys=int_param(req.query, "max-keys", MAX_KEYS, 0, MAX_KEYS),
    )
    page = await req.backend.list_objects(req.ctx, req.bucket, query)
    return query, page


def _contents(
    req: S3Request,
    info: ObjectInfo,
    encode: Callable[[str], str],
    *,
    owner: bool,
    tag: str = "Contents",
    extra: list[etree._Element | None] | None = None,
) -> etree._Element:
    algorithm = next(iter(info.checksums), None)
    return G(
        tag,
        [
            T("Key", encode(info.key)),
            *(extra or []),
            T("LastModified", info.last_modified),
            T("ETag", quote_etag(info.etag)),
            T("ChecksumAlgorithm", algorithm),
            T("ChecksumType", info.checksum_type if algorithm else None),
            T("Size", info.size),
            T("StorageClass", "STANDARD"),
            owner_element(req) if owner else None,
        ],
    )


def _prefixes(page: ListPage, encode: Callable[[str], str]) -> list[etree._Element]:
    return [G("CommonPrefixes", [T("Prefix", encode(p))]) for p in page.common_prefixes]


def _delimiter(query: ListQuery, encode: Callable[[str], str]) -> etree._Element | None:
    return T("Delimiter", encode(query.delimiter)) if query.delimiter else None


async def list_objects_v2(req: S3Request) -> Reply:
    encode = url_encoder(req)
    token = req.query.get("continuation-token")
    start_after = req.query.get("start-after", "")
    query, page = await _page(req, decode_token(token) if token is not None else start_after)
    fetch_owner = req.query.get("fetch-owner", "false").lower() == "true"
    entries = len(page.objects) + len(page.common_prefixes)
    root = E(
        "ListBucketResult",
        T("Name", req.bucket),
        T("Prefix", encode(query.prefix)),
        T("ContinuationToken", token),
        T(
            "NextContinuationToken",
            encode_token(page.next_start_after) if page.next_start_after is not None else None,
        ),
        T("StartAfter", encode(start_after) if "start-after" in req.query else None),
        T("KeyCount", entries),
        T("MaxKeys", query.max_keys),
        _delimiter(query, encode),
        T("EncodingType", req.query.get("encoding-type")),
        T("IsTruncated", page.next_start_after is not None),
    )
    root.extend(_contents(req, info, encode, owner=fetch_owner) for info in page.objects)
    root.extend(_prefixes(page, encode))
    return xml_reply(root)


async def list_objects_v1(req: S3Request) -> Reply:
    encode = url_encoder(req)
    marker = req.query.get("marker", "")
    query, page = await _page(req, marker)
    root = E(
        "ListBucketResult",
        T("Name", req.bucket),
        T("Prefix", encode(query.prefix)),
        T("Marker", encode(marker)),
        T(
            "NextMarker",
            encode(page.next_start_after) if page.next_start_after is not None else None,
        ),
        T("MaxKeys", query.max_keys),
        _delimiter(query, encode),
        T("EncodingType", req.query.get("encoding-type")),
        T("IsTruncated", page.next_start_after is not None),
    )
    root.extend(_contents(req, info, encode, owner=True) for info in page.objects)
    root.extend(_prefixes(page, encode))
    return xml_reply(root)


async def list_object_versions(req: S3Request) -> Reply:
    """Every object is its only version, with VersionId ``null``."""
    encode = url_encoder(req)
    key_marker = req.query.get("key-marker", "")
    version_marker = req.query.get("version-id-marker")
    if version_marker and not key_marker:
        raise S3Error(
            "InvalidArgument",
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    query, page = await _page(req, key_marker)
    truncated = page.next_start_after is not None
    root = E(
        "ListVersionsResult",
        T("Name", req.bucket),
        T("Prefix", encode(query.prefix)),
        T("KeyMarker", encode(key_marker)),
        T("VersionIdMarker", version_marker or ""),
        T(
            "NextKeyMarker",
            encode(page.next_start_after)
            if truncated and page.next_start_after is not None
            else None,
        ),
        T("NextVersionIdMarker", "null" if truncated else None),
        T("MaxKeys", query.max_keys),
        _delimiter(query, encode),
        T("EncodingType", req.query.get("encoding-type")),
        T("IsTruncated", truncated),
    )
    root.extend(
        _contents(
            req,
            info,
            encode,
            owner=True,
            tag="Version",
            extra=[T("VersionId", "null"), T("IsLatest", True)],
        )
        for info in page.objects
    )
    root.extend(_prefixes(page, encode))
    return xml_reply(root)
