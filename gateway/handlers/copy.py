"""CopyObject, and the copy source both it and UploadPartCopy read (``x-amz-copy-source``,
with a version id, its SSE-C key and its ``x-amz-copy-source-if-*`` conditions)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote

from core import checksums
from core.digest import HashingPayload
from core.errors import S3Error
from core.ranges import RangeSpec
from gateway import s3xml, sse_headers
from gateway.handlers.access import keep_object_acl, requested_object_acl
from gateway.handlers.object_lock import requested_lock
from gateway.handlers.object_tags import copied_tags, copy_tags_requested
from gateway.handlers.objects import (
    checksum_elements,
    checksum_headers,
    customer_key,
    write_conditions,
    write_encryption,
)
from gateway.handlers.versions import MAX_VERSION_ID, version_headers
from gateway.headers import check_preconditions, check_write_options, write_metadata
from gateway.request import S3Request
from gateway.responses import Reply, quote_etag, xml_reply
from translators.base import GetOptions, GetResult, ObjectInfo, WriteMetadata

E, T = s3xml.element, s3xml.text


@dataclass(frozen=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None = None


def parse_copy_source(value: str) -> CopySource:
    """``x-amz-copy-source``: ``[/]bucket/key[?versionId=<id>]``, URL-encoded."""
    path, _, query = value.partition("?")
    version: str | None = None
    if query:
        name, equals, version = query.partition("=")
        if name != "versionId" or not equals or not version or len(version) > MAX_VERSION_ID:
            raise S3Error(
                "InvalidArgument",
                "Invalid version id specified",
                ArgumentName="x-amz-copy-source",
                ArgumentValue=value,
            )
        version = unquote(version)
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error(
            "InvalidArgument",
            "Invalid copy source encoding",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=value,
        ) from None
    bucket, slash, key = decoded.lstrip("/").partition("/")
    if not bucket or not slash or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=value,
        )
    return CopySource(bucket, key, version)


async def open_copy_source(
    req: S3Request, spec: RangeSpec | None = None
) -> tuple[CopySource, GetResult]:
    """Open the copy source (with its SSE-C key, ``x-amz-copy-source-server-side-encryption-
    customer-*``) and check the ``x-amz-copy-source-if-*`` conditions."""
    source = parse_copy_source(req.headers["x-amz-copy-source"])
    key = customer_key(req, copy_source=True)
    await req.require("s3:GetObject", source.bucket, source.key)
    options = GetOptions(spec, customer_key=key)
    if source.version_id is None:
        result = await req.backend.get_object(req.ctx, source.bucket, source.key, options)
    else:
        await req.require("s3:GetObjectVersion", source.bucket, source.key)
        result = await req.backend.get_version(
            req.ctx, source.bucket, source.key, source.version_id, options
        )
    if check_preconditions(req.headers, result.info, prefix="x-amz-copy-source-if-") is not None:
        await result.body.aclose()
        raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If")
    return source, result


async def copy_object(req: S3Request) -> Reply:
    acl = await requested_object_acl(req)
    directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error(
            "InvalidArgument",
            "Unknown metadata directive.",
            ArgumentName="x-amz-metadata-directive",
            ArgumentValue=directive,
        )
    check_write_options(req.headers)
    requested_tags = copy_tags_requested(req)
    algorithm = req.headers.get("x-amz-checksum-algorithm")
    encryption = write_encryption(req)
    lock = requested_lock(req)
    source, result = await open_copy_source(req)
    same = (source.bucket, source.key) == (req.bucket, req.key)
    if same and directive == "COPY" and algorithm is None and encryption is None:
        await result.body.aclose()
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without "
            "changing the object's metadata, storage class, website redirect location or "
            "encryption attributes.",
        )
    src = result.info
    try:
        tags = await copied_tags(req, requested_tags, (source.bucket, source.key), src.etag)
    except BaseException:
        await result.body.aclose()
        raise
    if directive == "REPLACE":
        metadata = replace(
            write_metadata(req.headers), tags=tags, encryption=encryption, object_lock=lock
        )
    else:
        metadata = WriteMetadata(
            dict(src.headers),
            dict(src.user_metadata),
            tags,
            encryption=encryption,
            object_lock=lock,
        )
    algorithms = (
        [checksums.parse_algorithm(algorithm)]
        if algorithm
        else list(src.checksums) or ["CRC64NVME"]
    )
    payload = HashingPayload(result.body, src.size, algorithms)
    info = await req.backend.put_object(
        req.ctx, req.bucket, req.key, payload, metadata, write_conditions(req.headers)
    )
    await keep_object_acl(req, acl)
    body = E(
        "CopyObjectResult",
        T("ETag", quote_etag(info.etag)),
        T("LastModified", info.last_modified),
        *checksum_elements(info),
    )
    headers = checksum_headers(info) + sse_headers.response_headers(info.encryption)
    headers += version_headers(info) + copy_source_version_headers(src)
    return xml_reply(body, headers=headers)


def copy_source_version_headers(source: ObjectInfo) -> list[tuple[str, str]]:
    """``x-amz-copy-source-version-id`` of a copy's source in a bucket ever versioned."""
    if source.version_id is None:
        return []
    return [("x-amz-copy-source-version-id", source.version_id)]
