"""ListObjects over GCS listings: the ordered entry stream :mod:`translators.listing` pages.

GCS lists names in UTF-8 byte order from ``start_offset`` (inclusive), so an exclusive
position ``k`` becomes ``k + "\\0"`` (the smallest greater name). A single-character
delimiter rolls up natively (one request per page, however many keys a common prefix
hides); a longer one is rolled up by the engine, each common prefix ending the request and
the next one starting past it (fake-gcs-server mis-rolls multi-character delimiters).

Multipart uploads are paged in memory by :func:`translators.listing.page_uploads` (one flat
listing of the upload area; pending uploads are few).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from translators import listing
from translators.base import ListPage, ListQuery, ObjectInfo
from translators.gcs.store import Store, object_info
from translators.listing import Seek

_PAGE = 1000


async def list_objects(store: Store, bucket: str, query: ListQuery) -> ListPage:
    """One page of ``bucket`` exactly as :class:`ListQuery` describes it."""
    namespace = store.namespace
    container = namespace.container_for(bucket)
    root = namespace.bucket_prefix(bucket)
    native = len(query.delimiter) == 1

    async def scan(seek: Seek, wanted: int) -> AsyncIterator[tuple[str, ObjectInfo | None]]:
        start = root + seek.key + ("" if seek.inclusive else "\0")
        token: str | None = None
        page_size = min(_PAGE, wanted)
        while True:
            blobs, prefixes, token = await store.list_page(
                container,
                prefix=root + query.prefix,
                delimiter=query.delimiter if native else "",
                start_offset=start,
                page_size=page_size,
                token=token,
            )
            merged: list[tuple[str, Any]] = [(name[len(root) :], None) for name in prefixes]
            merged += [(blob.name[len(root) :], blob) for blob in blobs]
            merged.sort(key=lambda entry: entry[0].encode())
            for key, blob in merged:
                yield key, (None if blob is None else object_info(blob, key))
            if token is None:
                return
            page_size = _PAGE

    page = await listing.collect(listing.objects_page(query), scan, seek_past_prefixes=True)
    return listing.list_page(page)
