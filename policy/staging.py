"""Staged multipart artifact uploads: their ids, their keys, and the merged upload listing.

An artifact's multipart upload is created under ``<STAGING_PREFIX><nonce>/<key>`` (the
nonce: 32 hex digits ordered by creation time) and its client sees the upload id
``<nonce>.<inner id>``: the id alone names the staging key, so every replica resolves it
without shared state. :func:`merged_uploads` shows staged uploads under their client keys
and ids among the bucket's other uploads (see :mod:`policy.validation` for the whole flow).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import replace
from typing import Final

from core.context import RequestContext
from core.errors import S3Error
from core.reserved import STAGING_PREFIX, is_reserved_key
from translators.base import Backend, UploadInfo, UploadsPage, UploadsQuery

_NONCE: Final = re.compile(r"^[0-9a-f]{32}$")
#: A key after every staging key (they continue with a hex digit).
_STAGING_END: Final = STAGING_PREFIX + "g"


def is_staging_key(key: str) -> bool:
    return key.startswith(STAGING_PREFIX)


def new_nonce() -> str:
    """A staging nonce: creation time in nanoseconds, then randomness (32 hex digits)."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def staging_key(nonce: str, key: str) -> str:
    return f"{STAGING_PREFIX}{nonce}/{key}"


def staged_upload(nonce: str, key: str, inner: UploadInfo) -> UploadInfo:
    """The upload as its client sees it: under ``key``, with the id ``<nonce>.<inner id>``."""
    return replace(inner, key=key, upload_id=f"{nonce}.{inner.upload_id}")


def inner_upload(key: str, upload_id: str) -> tuple[str, str]:
    """The staging key and inner upload id of a client's staged upload of artifact ``key``;
    ``NoSuchUpload`` if ``upload_id`` cannot be one."""
    nonce, sep, inner_id = upload_id.partition(".")
    if not sep or not _NONCE.match(nonce) or not inner_id:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    return staging_key(nonce, key), inner_id


async def merged_uploads(
    backend: Backend, ctx: RequestContext, bucket: str, query: UploadsQuery
) -> UploadsPage:
    """``backend``'s uploads without the reserved areas, merged with the staged uploads
    shown under their client keys and ids. Order: key, then (for one key) unstaged uploads
    before staged ones, staged ones by id (= creation time)."""
    staged_marker = _NONCE.match(query.upload_id_marker.partition(".")[0]) is not None
    inner_query = replace(query, upload_id_marker="") if staged_marker else query
    page = await backend.list_multipart_uploads(ctx, bucket, inner_query)
    uploads, common_prefixes = list(page.uploads), list(page.common_prefixes)
    if page.next_key_marker is not None and is_staging_key(page.next_key_marker):
        # The page ended inside the staging area: resume after all of it.
        page = await backend.list_multipart_uploads(
            ctx, bucket, replace(inner_query, key_marker=_STAGING_END, upload_id_marker="")
        )
        uploads += page.uploads
        common_prefixes += page.common_prefixes

    # (sort key, group, upload id, upload or None for a common prefix)
    entries: list[tuple[bytes, int, str, UploadInfo | None]] = [
        (u.key.encode(), 0, u.upload_id, u) for u in uploads if not is_reserved_key(u.key)
    ]
    inner_prefixes = {p for p in common_prefixes if not is_reserved_key(p)}
    staged_prefixes: set[str] = set()
    for upload in await _staged_uploads(backend, ctx, bucket, query):
        rest = upload.key[len(query.prefix) :]
        cut = rest.find(query.delimiter) if query.delimiter else -1
        if cut < 0:
            entries.append((upload.key.encode(), 1, upload.upload_id, upload))
            continue
        prefix = query.prefix + rest[: cut + len(query.delimiter)]
        if prefix > query.key_marker and prefix not in inner_prefixes:
            staged_prefixes.add(prefix)
    entries += [(p.encode(), 0, "", None) for p in inner_prefixes]
    entries += [(p.encode(), 1, "", None) for p in staged_prefixes]
    entries.sort(key=lambda e: e[:3])
    if page.next_key_marker is not None:
        bound = page.next_key_marker.encode()
        entries = [e for e in entries if e[1] == 0 or e[0] < bound]
    truncated = page.next_key_marker is not None or len(entries) > query.max_uploads
    entries = entries[: max(query.max_uploads, 0)]
    next_key: str | None = None
    next_id: str | None = None
    if truncated:
        if entries:
            last = entries[-1]
            next_key = last[0].decode()
            next_id = last[2] if last[3] is not None else None
        else:
            next_key, next_id = page.next_key_marker, page.next_upload_id_marker
    return UploadsPage(
        [e[3] for e in entries if e[3] is not None],
        [e[0].decode() for e in entries if e[3] is None],
        next_key,
        next_id,
    )


async def _staged_uploads(
    backend: Backend, ctx: RequestContext, bucket: str, query: UploadsQuery
) -> list[UploadInfo]:
    """Every staged upload as the client sees it, within ``query``'s prefix and markers."""
    found: list[UploadInfo] = []
    inner = UploadsQuery(prefix=STAGING_PREFIX)
    while True:
        page = await backend.list_multipart_uploads(ctx, bucket, inner)
        for upload in page.uploads:
            nonce, _, key = upload.key[len(STAGING_PREFIX) :].partition("/")
            if not _NONCE.match(nonce) or not key.startswith(query.prefix):
                continue
            visible = staged_upload(nonce, key, upload)
            if _after_markers(visible, query):
                found.append(visible)
        if page.next_key_marker is None:
            return found
        inner = replace(
            inner,
            key_marker=page.next_key_marker,
            upload_id_marker=page.next_upload_id_marker or "",
        )


def _after_markers(upload: UploadInfo, query: UploadsQuery) -> bool:
    """Whether a staged upload comes after ``query``'s markers in the merged order."""
    key, marker = upload.key.encode(), query.key_marker.encode()
    if key != marker:
        return key > marker
    if not query.upload_id_marker:
        return False
    if _NONCE.match(query.upload_id_marker.partition(".")[0]) is None:
        return True  # an unstaged marker: staged uploads of that key come after it
    return upload.upload_id > query.upload_id_marker
