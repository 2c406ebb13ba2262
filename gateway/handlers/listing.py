"""ListObjectsV2 and ListObjects (V1); ListObjectVersions is gateway.handlers.versions'."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from core.errors import S3Error
from gateway.handlers.common import int_param, owner_id
from gateway.request import S3Request
from gateway.responses import Reply
from gateway.s3xml import iso8601, url_encode
from gateway.xmlwriter import XmlWriter, escape
from translators.base import ListPage, ListQuery

MAX_KEYS = 1000


def url_encoder(req: S3Request) -> Callable[[str], str]:
    """``encoding-type=url``: values URL-encoded. Without it, values go as they are, except
    that one holding a character XML 1.0 cannot carry is URL-encoded on its own (by the
    XML writer: see gateway.s3xml), so that every other key of the page stays exact for
    clients that did not ask for encoding (rclone's default) and the reply stays XML."""
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
    return url_encode


def encode_token(start_after: str) -> str:
    return base64.urlsafe_b64encode(start_after.encode("utf-8", "surrogatepass")).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
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


def _owner(req: S3Request) -> str:
    ident, name = owner_id(req.ctx.principal), escape(req.ctx.principal)
    return f"<Owner><ID>{ident}</ID><DisplayName>{name}</DisplayName></Owner>"


def _entries(
    out: XmlWriter,
    req: S3Request,
    page: ListPage,
    encode: Callable[[str], str],
    *,
    owner: bool,
    tag: str = "Contents",
) -> None:
    """The objects and then the common prefixes of a page."""
    owner_xml = _owner(req) if owner else ""
    for info in page.objects:
        algorithm = next(iter(info.checksums), None)
        checksum = (
            f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>"
            f"<ChecksumType>{info.checksum_type}</ChecksumType>"
            if algorithm and info.checksum_type
            else f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>"
            if algorithm
            else ""
        )
        out.raw(
            f"<{tag}><Key>{escape(encode(info.key))}</Key>"
            f"<LastModified>{iso8601(info.last_modified)}</LastModified>"
            f"<ETag>&quot;{escape(info.etag)}&quot;</ETag>{checksum}"
            f"<Size>{info.size}</Size><StorageClass>STANDARD</StorageClass>{owner_xml}</{tag}>"
        )
    for prefix in page.common_prefixes:
        out.open("CommonPrefixes")
        out.leaf("Prefix", encode(prefix))
        out.close("CommonPrefixes")


def _reply(out: XmlWriter) -> Reply:
    return Reply(200, [("Content-Type", "application/xml")], out.to_bytes())


def _head(out: XmlWriter, req: S3Request, query: ListQuery, encode: Callable[[str], str]) -> None:
    out.leaf("Name", req.bucket)
    out.leaf("Prefix", encode(query.prefix))


def _tail(
    out: XmlWriter, req: S3Request, query: ListQuery, page: ListPage, encode: Callable[[str], str]
) -> None:
    out.leaf("MaxKeys", query.max_keys)
    if query.delimiter:
        out.leaf("Delimiter", encode(query.delimiter))
    out.leaf("EncodingType", req.query.get("encoding-type"))
    out.leaf("IsTruncated", page.next_start_after is not None)


async def list_objects_v2(req: S3Request) -> Reply:
    encode = url_encoder(req)
    token = req.query.get("continuation-token")
    start_after = req.query.get("start-after", "")
    query, page = await _page(req, decode_token(token) if token is not None else start_after)
    fetch_owner = req.query.get("fetch-owner", "false").lower() == "true"
    out = XmlWriter("ListBucketResult")
    _head(out, req, query, encode)
    out.leaf("ContinuationToken", token)
    if page.next_start_after is not None:
        out.leaf("NextContinuationToken", encode_token(page.next_start_after))
    if "start-after" in req.query:
        out.leaf("StartAfter", encode(start_after))
    out.leaf("KeyCount", len(page.objects) + len(page.common_prefixes))
    _tail(out, req, query, page, encode)
    _entries(out, req, page, encode, owner=fetch_owner)
    return _reply(out)


async def list_objects_v1(req: S3Request) -> Reply:
    encode = url_encoder(req)
    marker = req.query.get("marker", "")
    query, page = await _page(req, marker)
    out = XmlWriter("ListBucketResult")
    _head(out, req, query, encode)
    out.leaf("Marker", encode(marker))
    if page.next_start_after is not None:
        out.leaf("NextMarker", encode(page.next_start_after))
    _tail(out, req, query, page, encode)
    _entries(out, req, page, encode, owner=True)
    return _reply(out)
