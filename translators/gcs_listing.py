"""ListObjects and ListMultipartUploads over GCS listings.

Keys: GCS lists names in UTF-8 byte order from ``start_offset`` (inclusive), so
``start_after`` becomes ``start_after + "\\0"`` (the smallest greater name) and a
common-prefix ``start_after`` becomes the first name past everything under it. A
single-character delimiter rolls up natively (one request per page, however many keys a
common prefix hides); a longer one rolls up here, each common prefix ending the request and
the next one starting past it (fake-gcs-server mis-rolls multi-character delimiters). Each
page asks for one entry more than it returns, so ``next_start_after`` is None exactly when
the listing is complete.

Uploads: every pending upload's state object is listed (one flat listing of the upload
area; pending uploads are few) and the page is cut in memory, by key then upload id (ids
sort by initiation).
"""

from __future__ import annotations

from typing import Any

from translators.base import ListPage, ListQuery, ObjectInfo, UploadInfo, UploadsPage, UploadsQuery
from translators.fs_db import prefix_upper_bound
from translators.gcs_store import Store, object_info

_PAGE = 1000


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


def _is_common_prefix(marker: str, prefix: str, delimiter: str) -> bool:
    """Whether ``marker`` is itself a common prefix of a listing by ``prefix``/``delimiter``."""
    return (
        bool(delimiter)
        and marker.startswith(prefix)
        and (_common_prefix(marker, prefix, delimiter) == marker)
    )


async def list_objects(store: Store, bucket: str, query: ListQuery) -> ListPage:
    """One page of ``bucket`` exactly as :class:`ListQuery` describes it."""
    namespace = store.namespace
    container = namespace.container_for(bucket)
    root = namespace.bucket_prefix(bucket)
    if query.max_keys <= 0:
        return ListPage([], [], None)
    start: str | None = ""
    if _is_common_prefix(query.start_after, query.prefix, query.delimiter):
        upper = prefix_upper_bound(query.start_after)
        start = None if upper is None else root + upper
    elif query.start_after:
        start = root + query.start_after + "\0"
    native = len(query.delimiter) == 1
    wanted = query.max_keys + 1
    entries: list[tuple[str, ObjectInfo | None]] = []  # (key or common prefix, info)
    token: str | None = None
    while start is not None and len(entries) < wanted:
        blobs, prefixes, token = await store.list_page(
            container,
            prefix=root + query.prefix,
            delimiter=query.delimiter if native else "",
            start_offset=start,
            page_size=min(_PAGE, wanted - len(entries)),
            token=token,
        )
        merged: list[tuple[str, Any]] = [(name[len(root) :], None) for name in prefixes]
        merged += [(blob.name[len(root) :], blob) for blob in blobs]
        merged.sort(key=lambda entry: entry[0].encode())
        restart: str | None = None
        for key, blob in merged:
            common = key if blob is None else _common_prefix(key, query.prefix, query.delimiter)
            if common is None:
                entries.append((key, object_info(blob, key)))
            elif not entries or entries[-1] != (common, None):
                entries.append((common, None))
            if common is not None and not native:
                upper = prefix_upper_bound(common)
                restart = "" if upper is None else root + upper
                break
            if len(entries) >= wanted:
                break
        if restart is not None:
            start, token = (restart or None), None
        elif token is None:
            break
    page = entries[: query.max_keys]
    more = len(entries) > query.max_keys
    return ListPage(
        [info for _, info in page if info is not None],
        [key for key, info in page if info is None],
        page[-1][0] if more and page else None,
    )


def list_uploads(uploads: list[UploadInfo], query: UploadsQuery) -> UploadsPage:
    """The page of ``uploads`` (one bucket's, in any order) that ``query`` asks for.

    ``key_marker`` alone resumes after every upload of that key; with ``upload_id_marker``
    it resumes after that upload of that key. Common prefixes count toward ``max_uploads``.
    """
    if query.max_uploads <= 0:
        return UploadsPage([], [], None, None)
    chosen = sorted(
        (u for u in uploads if u.key.startswith(query.prefix)),
        key=lambda u: (u.key.encode(), u.upload_id),
    )
    marker, id_marker = query.key_marker, query.upload_id_marker
    skip_under = _is_common_prefix(marker, query.prefix, query.delimiter)

    def after_marker(upload: UploadInfo) -> bool:
        if not marker:
            return True
        if skip_under:
            return not upload.key.startswith(marker) and upload.key.encode() > marker.encode()
        if upload.key == marker:
            return bool(id_marker) and upload.upload_id > id_marker
        return upload.key.encode() > marker.encode()

    entries: list[tuple[str, UploadInfo | None]] = []
    for upload in chosen:
        if not after_marker(upload):
            continue
        common = _common_prefix(upload.key, query.prefix, query.delimiter)
        if common is None:
            entries.append((upload.key, upload))
        elif not entries or entries[-1] != (common, None):
            entries.append((common, None))
        if len(entries) > query.max_uploads:
            break
    page = entries[: query.max_uploads]
    if len(entries) <= query.max_uploads or not page:
        next_key, next_id = None, None
    else:
        last_key, last = page[-1]
        next_key, next_id = last_key, (None if last is None else last.upload_id)
    return UploadsPage(
        [u for _, u in page if u is not None],
        [key for key, u in page if u is None],
        next_key,
        next_id,
    )
