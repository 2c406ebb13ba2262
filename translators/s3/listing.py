"""Listings of the S3 translator: ListObjectsV2 pages as the ordered entry stream that
:mod:`translators.listing` pages, and the page of gateway uploads rebuilt from native
uploads (whose order within a key is the backend's, so the marker is a position)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from translators import listing
from translators.base import (
    ListPage,
    ListQuery,
    ObjectInfo,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    WriteMetadata,
)
from translators.listing import Seek
from translators.s3.client import S3Store
from translators.s3.codec import (
    UploadId,
    unquote,
)


async def list_objects(store: S3Store, bucket: str, query: ListQuery) -> ListPage:
    """ListObjectsV2 under the bucket's prefix, paged by :mod:`translators.listing`. The
    backend rolls up ``/``; other delimiters (which some S3-compatible servers ignore)
    are rolled up by the engine, reading the keys under each common prefix. Objects
    carry the backend's ETag (for an object the gateway stored through a native
    multipart upload it differs from HEAD's) and no parts or metadata."""
    if store.namespace.mapping == "prefix" or query.max_keys <= 0:
        await store.require_bucket_seen(bucket)
    container = store.namespace.container_for(bucket)
    base = store.namespace.bucket_prefix(bucket)

    async def scan(_: Seek, wanted: int) -> AsyncIterator[tuple[str, ObjectInfo | None]]:
        token: str | None = None
        max_keys = min(1000, wanted + 1)
        while True:
            params: dict[str, Any] = {
                "Bucket": container,
                "Prefix": base + query.prefix,
                "MaxKeys": max_keys,
            }
            if query.delimiter == "/":
                params["Delimiter"] = "/"
            if token:
                params["ContinuationToken"] = token
            elif query.start_after and query.start_after > query.prefix:
                params["StartAfter"] = base + query.start_after
            page: Any = await store.call(
                "ListObjectsV2",
                functools.partial(store.client.list_objects_v2, **params),
                BucketName=bucket,
            )
            entries = [(str(item["Key"]), item) for item in page.get("Contents", [])]
            entries += [(str(item["Prefix"]), None) for item in page.get("CommonPrefixes", [])]
            entries.sort(key=lambda entry: entry[0].encode())
            for name, item in entries:
                key = name[len(base) :]
                yield key, None if item is None else _listed_info(key, item)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            max_keys = 1000

    page = await listing.collect(listing.objects_page(query), scan, seek_past_prefixes=False)
    if query.max_keys > 0 and not page.count and store.namespace.mapping == "bucket":
        await store.require_bucket(bucket)
    return listing.list_page(page)


def _listed_info(key: str, item: Any) -> ObjectInfo:
    return ObjectInfo(
        key, int(item.get("Size", 0)), unquote(str(item.get("ETag", ""))), item["LastModified"]
    )


def uploads_page(
    entries: list[tuple[str, str, datetime, UploadId]], query: UploadsQuery
) -> UploadsPage:
    """The page of ``entries`` (sorted by key; a key's uploads in the backend's order) that
    ``query`` asks for: ``key_marker`` with ``upload_id_marker`` resumes after that upload's
    position among its key's uploads (after all of them when the id is not one of them)."""
    marker, id_marker = query.key_marker, query.upload_id_marker
    ids_of_marker = [gateway_id for key, gateway_id, _, _ in entries if key == marker]
    later = (
        ids_of_marker[ids_of_marker.index(id_marker) + 1 :] if id_marker in ids_of_marker else []
    )
    marker_bytes = marker.encode()

    def after(key: str, upload: UploadInfo) -> bool:
        if key == marker:
            return upload.upload_id in later
        return key.encode() > marker_bytes

    uploads = [
        (
            key,
            UploadInfo(
                key, gateway_id, initiated, WriteMetadata(), parsed.algorithm, parsed.checksum_type
            ),
        )
        for key, gateway_id, initiated, parsed in entries
    ]
    page = listing.Page(query.prefix, query.delimiter, marker, query.max_uploads, after)
    listing.collect_sync(page, lambda _, __: iter(uploads), seek_past_prefixes=False)
    return listing.to_uploads_page(page)
