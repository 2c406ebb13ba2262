"""ListObjects for the S3 translator: ListObjectsV2 pages as the ordered entry stream that
:mod:`translators.listing` pages."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

from translators import listing
from translators.base import (
    ListPage,
    ListQuery,
    ObjectInfo,
)
from translators.listing import Seek
from translators.s3.client import S3Store
from translators.s3.codec import (
    unquote,
)


async def list_objects(store: S3Store, bucket: str, query: ListQuery) -> ListPage:
    """ListObjectsV2 under the bucket's prefix, paged by :mod:`translators.listing`. The
    backend rolls up ``/``; other delimiters (which some S3-compatible servers ignore)
    are rolled up by the engine, reading the keys under each common prefix. Objects
    carry the backend's ETag (for an object the gateway stored through a native
    multipart upload it differs from HEAD's) and no parts or metadata."""
    if store.namespace.mapping == "prefix" or query.max_keys <= 0:
        await store.require_bucket(bucket)
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
