"""The tags of object writes (PutObject, CopyObject, CreateMultipartUpload) and the tag
count of reads (GetObject, HeadObject).

A write's tags travel in its :class:`WriteMetadata` to the catalog wrapper, which keeps them
with the new object's row (``policy.catalog_backend``). As in AWS, a write that sets tags
also needs ``s3:PutObjectTagging`` on its key, and a copy that takes its source's tags
``s3:GetObjectTagging`` on the source.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from core.errors import S3Error
from gateway.request import S3Request
from gateway.tagging import COUNT_HEADER, header_tags, tagging_directive
from policy.model import Catalog
from policy.tags import TagSet
from translators.base import ObjectInfo, WriteMetadata

log = logging.getLogger(__name__)


def catalog_of(req: S3Request) -> Catalog:
    """The catalog tags live in; ``NotImplemented`` when the gateway was wired without one."""
    if req.services is None or req.services.catalog is None:
        raise S3Error("NotImplemented", f"{req.operation} needs the catalog.")
    return req.services.catalog


async def with_requested_tags(req: S3Request, metadata: WriteMetadata) -> WriteMetadata:
    """``metadata`` of a PutObject or CreateMultipartUpload with the tags its
    ``x-amz-tagging`` asks for (none without the header: a new object starts untagged)."""
    tags = header_tags(req.headers)
    if tags:
        await req.require("s3:PutObjectTagging", req.bucket, req.key)
    return replace(metadata, tags=tags)


def copy_tags_requested(req: S3Request) -> TagSet | None:
    """Checked before a CopyObject starts: the tags ``x-amz-tagging-directive: REPLACE``
    gives the new object, or None for ``COPY`` (the default: the source's tags)."""
    if tagging_directive(req.headers) == "REPLACE":
        return header_tags(req.headers)
    return None


async def copied_tags(
    req: S3Request, requested: TagSet | None, source: tuple[str, str], source_etag: str
) -> TagSet:
    """The tags of a CopyObject's new object: ``requested`` (REPLACE), else the tags of the
    ``source`` object (bucket, key) as it is with ``source_etag``."""
    tags = requested
    if tags is None:
        stored = await catalog_of(req).object_tags(*source)
        tags = stored[1] if stored is not None and stored[0] == source_etag else {}
        if tags:
            await req.require("s3:GetObjectTagging", *source)
    if tags:
        await req.require("s3:PutObjectTagging", req.bucket, req.key)
    return tags


async def tag_count_headers(req: S3Request, info: ObjectInfo) -> list[tuple[str, str]]:
    """``x-amz-tagging-count`` of a GetObject/HeadObject reply when the object has tags and,
    as in AWS, the caller may read them (``s3:GetObjectTagging``). Never raises an S3 error
    (a GET's body may be open): a catalog that cannot answer leaves the header out rather
    than fail the read."""
    if req.services is None or req.services.catalog is None:
        return []
    try:
        tagged = req.services.tagged
        if tagged is not None and not await tagged.any(req.bucket):
            return []  # the common case: a site that tags nothing costs no catalog read
        stored = await req.services.catalog.object_tags(req.bucket, req.key)
    except S3Error as error:
        log.warning("tag count left out: the catalog did not answer (%s)", error.code)
        return []
    if stored is None or stored[0] != info.etag or not stored[1]:
        return []
    try:
        if req.access is not None and not await req.access.permits(
            "s3:GetObjectTagging", req.bucket, req.key
        ):
            return []
    except S3Error as error:
        log.warning("tag count left out: its permission could not be decided (%s)", error.code)
        return []
    return [(COUNT_HEADER, str(len(stored[1])))]
