"""Object operations: put, get, head, delete, batch delete, copy, attributes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace

from lxml import etree

from core import checksums
from core.errors import S3Error
from core.numbers import int_argument
from core.sse import CustomerKey, EncryptionRequest
from core.streams import PayloadStream
from gateway import s3xml, sse_headers
from gateway.handlers.access import forget_object_acl, keep_object_acl, requested_object_acl
from gateway.handlers.common import INT32_MAX
from gateway.handlers.common import part_number as parse_part_number
from gateway.handlers.object_lock import lock_headers, requested_lock, with_bypass
from gateway.handlers.object_tags import (
    tag_count_headers,
    with_requested_tags,
)
from gateway.handlers.versions import (
    delete_headers,
    requested_version,
    require_latest,
    version_headers,
)
from gateway.headers import (
    apply_overrides,
    check_preconditions,
    object_headers,
    parse_range,
    write_metadata,
)
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, http_date, quote_etag, xml_reply
from policy.encryption_meta import check_customer_key
from translators.base import (
    GetOptions,
    GetResult,
    ObjectInfo,
    WriteConditions,
)
from translators.multipart import MAX_PART_NUMBER
from translators.versioning import marker_read

E, T, G = s3xml.element, s3xml.text, s3xml.group
_CHECKSUM_HEADER_PREFIX = "x-amz-checksum-"


def declared_length(req: S3Request) -> int | None:
    """The announced body length; ``InvalidArgument`` for one that is not a number."""
    for name in ("x-amz-decoded-content-length", "content-length"):
        value = req.headers.get(name)
        if value is not None:
            return int_argument(name, value.strip())
    return None


def check_size(req: S3Request, limit: int) -> None:
    """``EntityTooLarge`` from the announced length, before a byte is read."""
    size = declared_length(req)
    if size is not None and size > limit:
        raise S3Error(
            "EntityTooLarge",
            f"Your proposed upload of {size} bytes exceeds the maximum of {limit} bytes.",
            ProposedSize=str(size),
            MaxSizeAllowed=str(limit),
        )


def write_conditions(headers: Mapping[str, str]) -> WriteConditions:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise S3Error("NotImplemented", "If-None-Match on a write accepts only '*'.")
    if_match = headers.get("if-match")
    return WriteConditions(
        if_match=if_match.strip().strip('"') if if_match is not None else None,
        if_none_match="*" if if_none_match is not None else None,
    )


def has_client_checksum(headers: Mapping[str, str]) -> bool:
    return (
        "x-amz-trailer" in headers
        or "x-amz-sdk-checksum-algorithm" in headers
        or "x-amz-checksum-algorithm" in headers
        or any(
            n.startswith(_CHECKSUM_HEADER_PREFIX)
            and n[len(_CHECKSUM_HEADER_PREFIX) :].upper() in checksums.WIDTH
            for n in headers
        )
    )


def checksum_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    result = [(checksums.header_name(a), v) for a, v in info.checksums.items()]
    if info.checksums and info.checksum_type:
        result.append(("x-amz-checksum-type", info.checksum_type))
    return result


def checksum_elements(info: ObjectInfo) -> list[etree._Element | None]:
    elements: list[etree._Element | None] = [
        T(s3xml.checksum_tag(a), v) for a, v in info.checksums.items()
    ]
    elements.append(T("ChecksumType", info.checksum_type if info.checksums else None))
    return elements


def write_encryption(req: S3Request) -> EncryptionRequest | None:
    """The encryption a write's headers ask for (gateway.sse_headers)."""
    return sse_headers.write_request(
        req.headers, secure=req.secure, require_tls=req.settings.sse_c_require_tls
    )


def customer_key(req: S3Request, *, copy_source: bool = False) -> CustomerKey | None:
    """The request's SSE-C key (the copy source's with ``copy_source``), checked."""
    prefix = sse_headers.COPY_SOURCE_CUSTOMER if copy_source else sse_headers.CUSTOMER
    return sse_headers.customer_key(
        req.headers, secure=req.secure, require_tls=req.settings.sse_c_require_tls, prefix=prefix
    )


async def put_object(req: S3Request) -> Reply:
    check_size(req, req.settings.max_object_size)
    # S3 gives every new object a CRC64NVME checksum when the client sends none.
    extra = () if has_client_checksum(req.headers) else ("CRC64NVME",)
    info = await store_object(req, lambda: req.payload(extra_algorithms=extra))
    return empty_reply(
        headers=[
            ("ETag", quote_etag(info.etag)),
            *checksum_headers(info),
            *sse_headers.response_headers(info.encryption),
            *version_headers(info),
        ]
    )


async def store_object(req: S3Request, payload: Callable[[], PayloadStream]) -> ObjectInfo:
    """Store an object as PutObject does, from its headers (ACL, metadata, conditions,
    checked in that order) and the body ``payload()`` gives, through the policy stack;
    POST Object (``gateway.handlers.post_object``) comes this way too."""
    acl = await requested_object_acl(req)
    metadata = await with_requested_tags(req, write_metadata(req.headers))
    metadata = replace(metadata, encryption=write_encryption(req), object_lock=requested_lock(req))
    conditions = write_conditions(req.headers)
    body = payload()
    info = await req.backend.put_object(req.ctx, req.bucket, req.key, body, metadata, conditions)
    await keep_object_acl(req, acl)
    return info


async def _open(req: S3Request) -> tuple[GetResult, int | None]:
    version = requested_version(req)
    part = req.query.get("partNumber")
    part_number = None if part is None else parse_part_number(part)
    spec = parse_range(req.headers.get("range"))
    if spec is not None and part_number is not None:
        raise S3Error(
            "InvalidRequest", "Cannot specify both Range header and partNumber query parameter"
        )
    options = GetOptions(spec, part_number, customer_key(req))
    if version is None:
        return await req.backend.get_object(req.ctx, req.bucket, req.key, options), part_number
    await req.require("s3:GetObjectVersion", req.bucket, req.key)
    result = await req.backend.get_version(req.ctx, req.bucket, req.key, version, options)
    return result, part_number


async def _read_reply(req: S3Request, *, with_body: bool) -> Reply:
    result, part_number = await _open(req)
    info = result.info
    outcome = check_preconditions(req.headers, info)
    if outcome is not None or not with_body:
        await result.body.aclose()
    if outcome == 412:
        raise S3Error("PreconditionFailed", Condition="If-Match")
    if outcome == 304:
        return empty_reply(
            304, [("ETag", quote_etag(info.etag)), ("Last-Modified", http_date(info.last_modified))]
        )
    whole = result.range is None and part_number is None
    enabled = req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    headers = object_headers(info, with_checksums=enabled and whole)
    headers += sse_headers.response_headers(info.encryption)
    status = 200
    length = info.size
    if result.range is not None:
        length = result.range.length
        if "range" in req.headers or (part_number is not None and info.parts):
            status = 206
            headers.append(
                ("Content-Range", f"bytes {result.range.start}-{result.range.end}/{info.size}")
            )
    headers += await tag_count_headers(req, info)
    headers += await lock_headers(req, info)
    headers = apply_overrides(headers, req.query)
    return Reply(status, headers, result.body if with_body else b"", length)


async def get_object(req: S3Request) -> Reply:
    return await _read_reply(req, with_body=True)


async def head_object(req: S3Request) -> Reply:
    if "range" not in req.headers and "partNumber" not in req.query:
        key = customer_key(req)
        info = await _head(req)
        check_customer_key(info.encryption, key)
        outcome = check_preconditions(req.headers, info)
        if outcome == 412:
            raise S3Error("PreconditionFailed", Condition="If-Match")
        if outcome == 304:
            return empty_reply(
                304,
                [("ETag", quote_etag(info.etag)), ("Last-Modified", http_date(info.last_modified))],
            )
        enabled = req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
        headers = object_headers(info, with_checksums=enabled)
        headers += await tag_count_headers(req, info)
        headers += sse_headers.response_headers(info.encryption)
        headers += await lock_headers(req, info)
        return Reply(200, apply_overrides(headers, req.query), b"", info.size)
    return await _read_reply(req, with_body=False)


async def _head(req: S3Request) -> ObjectInfo:
    """The object a HEAD names: the latest, or the version ``versionId`` names (a delete
    marker is S3's 405)."""
    version = requested_version(req)
    if version is None:
        return await req.backend.head_object(req.ctx, req.bucket, req.key)
    await req.require("s3:GetObjectVersion", req.bucket, req.key)
    found = await req.backend.head_version(req.ctx, req.bucket, req.key, version)
    if found.info is None:
        raise marker_read(found, "HEAD")
    return found.info


async def delete_object(req: S3Request) -> Reply:
    """Delete the key (a delete marker on a versioned bucket) or, with ``versionId``, that
    version for good. The object's ACL goes with the key of a never-versioned bucket."""
    version = requested_version(req)
    if version is not None:
        await req.require("s3:DeleteObjectVersion", req.bucket, req.key)
    req = await with_bypass(req)
    outcome = await req.backend.delete_version(req.ctx, req.bucket, req.key, version)
    if outcome.version_id is None:
        await forget_object_acl(req, req.key)
    return empty_reply(204, delete_headers(outcome))


#: DeleteObjects removes this many keys at once, so the backend can batch their commits.
DELETE_CONCURRENCY = 32


async def delete_objects(req: S3Request) -> Reply:
    request = s3xml.parse_delete(await req.read_body())
    await req.backend.head_bucket(req.ctx, req.bucket)
    req = await with_bypass(req)
    limit = asyncio.Semaphore(DELETE_CONCURRENCY)

    async def delete(target: s3xml.DeleteTarget) -> etree._Element | None:
        key, version = target.key, target.version_id
        try:
            version = requested_version(req, version)
            await req.require("s3:DeleteObject", req.bucket, key)
            if version is not None:
                await req.require("s3:DeleteObjectVersion", req.bucket, key)
            if target.conditional:
                # S3 asks for s3:GetObject too: the conditions tell what the object is.
                await req.require("s3:GetObject", req.bucket, key)
            async with limit:
                if target.conditional:
                    await _check_delete_conditions(req, target)
                outcome = await req.backend.delete_version(req.ctx, req.bucket, key, version)
                if outcome.version_id is None:
                    await forget_object_acl(req, key)
        except S3Error as error:
            fields = [T("Key", key), T("VersionId", target.version_id), T("Code", error.code)]
            return G("Error", [*fields, T("Message", error.message)])
        if request.quiet:
            return None
        deleted = [T("Key", key), T("VersionId", version)]
        if outcome.delete_marker:
            deleted.append(T("DeleteMarker", True))
            if version is None:
                deleted.append(T("DeleteMarkerVersionId", outcome.version_id))
        return G("Deleted", deleted)

    results = await asyncio.gather(*(delete(target) for target in request.objects))
    root = E("DeleteResult")
    root.extend(r for r in results if r is not None)
    return xml_reply(root)


async def _check_delete_conditions(req: S3Request, target: s3xml.DeleteTarget) -> None:
    """A conditional delete's preconditions against the current object: ``NoSuchKey`` when
    there is none, ``PreconditionFailed`` when its ETag (``*``: any), its last-modified time
    (to the second, as S3 reports it in headers) or its size differ. Checked just before the
    delete, not atomically with it: a write in between goes unnoticed."""
    info = await req.backend.head_object(req.ctx, req.bucket, target.key)
    if target.etag is not None and target.etag not in ("*", info.etag):
        raise S3Error("PreconditionFailed", Condition="ETag")
    if target.last_modified_time is not None and int(target.last_modified_time.timestamp()) != int(
        info.last_modified.timestamp()
    ):
        raise S3Error("PreconditionFailed", Condition="LastModifiedTime")
    if target.size is not None and target.size != info.size:
        raise S3Error("PreconditionFailed", Condition="Size")


_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})


async def get_object_attributes(req: S3Request) -> Reply:
    await require_latest(req)
    wanted = {
        a.strip() for a in req.headers.get("x-amz-object-attributes", "").split(",") if a.strip()
    }
    if not wanted or not wanted <= _ATTRIBUTES:
        raise S3Error(
            "InvalidArgument",
            "Invalid attribute name specified.",
            ArgumentName="x-amz-object-attributes",
            ArgumentValue=",".join(sorted(wanted)),
        )
    key = customer_key(req)
    info = await req.backend.head_object(req.ctx, req.bucket, req.key)
    check_customer_key(info.encryption, key)
    root = E("GetObjectAttributesResponse")
    if "ETag" in wanted:
        root.append(T("ETag", info.etag))
    if "Checksum" in wanted and info.checksums:
        root.append(G("Checksum", checksum_elements(info)))
    if "ObjectParts" in wanted and info.parts:
        marker = int_argument(
            "x-amz-part-number-marker",
            req.headers.get("x-amz-part-number-marker", "0") or "0",
            high=MAX_PART_NUMBER,
        )
        max_parts = min(
            int_argument(
                "x-amz-max-parts",
                req.headers.get("x-amz-max-parts", "1000") or "1000",
                high=INT32_MAX,
            ),
            1000,
        )
        remaining = [p for p in info.parts if p.part_number > marker]
        page = remaining[:max_parts]
        truncated = len(remaining) > max_parts
        parts = G(
            "ObjectParts",
            [
                T("PartsCount", len(info.parts)),
                T("PartNumberMarker", marker),
                T("NextPartNumberMarker", page[-1].part_number if page else marker),
                T("MaxParts", max_parts),
                T("IsTruncated", truncated),
            ],
        )
        for part in page:
            parts.append(
                G(
                    "Part",
                    [
                        T("PartNumber", part.part_number),
                        T("Size", part.size),
                        *[T(s3xml.checksum_tag(a), v) for a, v in part.checksums.items()],
                    ],
                )
            )
        root.append(parts)
    if "StorageClass" in wanted:
        root.append(T("StorageClass", "STANDARD"))
    if "ObjectSize" in wanted:
        root.append(T("ObjectSize", info.size))
    return xml_reply(root, headers=[("Last-Modified", http_date(info.last_modified))])
