"""Listings over the in-memory translator's sorted keys: one roll-up pass for objects and
for multipart uploads alike."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from translators.base import ListPage, ListQuery, ObjectInfo, UploadInfo, UploadsPage, UploadsQuery

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Rolled(Generic[_T]):
    """A page of entries and common prefixes; ``last_key``/``last_entry`` name the final item
    (``last_entry`` is None when it was a common prefix) and ``truncated`` says more follow."""

    entries: list[_T]
    prefixes: list[str]
    last_key: str
    last_entry: _T | None
    truncated: bool


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


def _is_rolled_up(marker: str, prefix: str, delimiter: str) -> bool:
    """Whether ``marker`` is itself a common prefix of this listing (ends at its first
    delimiter after ``prefix``): then every key under it was listed as that prefix."""
    return bool(delimiter) and _common_prefix(marker, prefix, delimiter) == marker


def _roll_up(
    items: Iterable[tuple[str, _T]], prefix: str, delimiter: str, limit: int
) -> _Rolled[_T]:
    """At most ``limit`` entries and common prefixes from ``items`` (sorted by key), keeping
    only keys under ``prefix`` and rolling keys up at ``delimiter``."""
    entries: list[_T] = []
    prefixes: list[str] = []
    last_key, last_entry = "", None
    rolled: str | None = None
    for key, entry in items:
        if not key.startswith(prefix) or (rolled is not None and key.startswith(rolled)):
            continue
        if len(entries) + len(prefixes) >= limit:
            return _Rolled(entries, prefixes, last_key, last_entry, truncated=True)
        common = _common_prefix(key, prefix, delimiter)
        if common is None:
            entries.append(entry)
            last_key, last_entry = key, entry
        else:
            prefixes.append(common)
            rolled, last_key, last_entry = common, common, None
    return _Rolled(entries, prefixes, last_key, last_entry, truncated=False)


class Stored(Protocol):
    """A stored object, as far as a listing needs it."""

    @property
    def info(self) -> ObjectInfo: ...


def list_objects(keys: Sequence[str], objects: Mapping[str, Stored], query: ListQuery) -> ListPage:
    """One page of ``keys`` (sorted) exactly as :class:`translators.base.ListQuery` describes
    it; listed objects carry no parts."""
    if query.max_keys <= 0:
        return ListPage([], [], None)
    start = max(bisect_right(keys, query.start_after), bisect_left(keys, query.prefix))
    skipped = (
        query.start_after
        if _is_rolled_up(query.start_after, query.prefix, query.delimiter)
        else None
    )

    def items() -> Iterator[tuple[str, ObjectInfo]]:
        for index in range(start, len(keys)):
            key = keys[index]
            if skipped is None or not key.startswith(skipped):
                yield key, objects[key].info

    page = _roll_up(items(), query.prefix, query.delimiter, query.max_keys)
    listed = [replace(info, parts=()) for info in page.entries]
    return ListPage(listed, page.prefixes, page.last_key if page.truncated else None)


def list_uploads(uploads: Iterable[UploadInfo], query: UploadsQuery) -> UploadsPage:
    """Pending uploads sorted by key, then by initiation (upload ids sort by initiation).

    ``key_marker`` alone resumes after every upload of that key; with ``upload_id_marker``
    it resumes after that upload of that key. Common prefixes count toward ``max_uploads``.
    """
    if query.max_uploads <= 0:
        return UploadsPage([], [], None, None)
    marker, id_marker = query.key_marker, query.upload_id_marker
    skipped = marker if _is_rolled_up(marker, query.prefix, query.delimiter) else None

    def after_markers(upload: UploadInfo) -> bool:
        if skipped is not None:
            return upload.key > marker and not upload.key.startswith(skipped)
        if marker and id_marker and upload.key == marker:
            return upload.upload_id > id_marker
        return not marker or upload.key > marker

    ordered = sorted(
        (upload for upload in uploads if after_markers(upload)),
        key=lambda upload: (upload.key, upload.upload_id),
    )
    page = _roll_up(
        ((upload.key, upload) for upload in ordered),
        query.prefix,
        query.delimiter,
        query.max_uploads,
    )
    if not page.truncated:
        return UploadsPage(page.entries, page.prefixes, None, None)
    last_id = page.last_entry.upload_id if page.last_entry is not None else None
    return UploadsPage(page.entries, page.prefixes, page.last_key, last_id)
