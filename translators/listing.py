"""The one listing engine: S3's delimiter roll-up, start-after and page cut, written once.

A translator supplies an ordered stream of entries, ``(key, item)`` pairs sorted by the UTF-8
bytes of their keys, where ``item`` is the listed object or None for a common prefix the
store already rolled up itself. The engine does the rest of :class:`translators.base.ListQuery`
(and of :class:`translators.base.UploadsQuery`, whose markers are a key and an upload id):

* it skips what sorts at or before the marker, and everything under a marker that is itself
  a common prefix;
* it rolls keys holding the delimiter (after the prefix) up into one common prefix, counted
  once however many keys (or store-rolled prefixes) it hides;
* it cuts the page at the limit; the page is truncated exactly when one more entry exists,
  and then the next marker is the page's last entry.

A stream may start anywhere at or before the engine's :meth:`Page.start` position (the
engine filters); one that can seek restarts at :attr:`Page.resume` after each common prefix
the engine rolled up, so a listing skips the keys a common prefix hides instead of reading
them (:func:`collect` and :func:`collect_sync` with ``seek_past_prefixes``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from translators.base import ListPage, ListQuery, ObjectInfo, UploadInfo, UploadsPage, UploadsQuery

T = TypeVar("T")


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``.

    None when there is none (empty prefix, or one made only of U+10FFFF). A stream seeks
    to it to skip a prefix's keys (SQL range queries use it instead of LIKE, which is
    case-insensitive and gives ``%``/``_`` meaning).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop())
        if code < 0x10FFFF:
            # Surrogates cannot be encoded as UTF-8, and nothing in a key sorts among them.
            chars.append(chr(0xE000 if 0xD800 <= code + 1 <= 0xDFFF else code + 1))
            return "".join(chars)
    return None


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix ``key`` rolls up into (up to and including the first delimiter
    after ``prefix``), or None when it is listed as itself."""
    if not delimiter or not key.startswith(prefix):
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]


def is_common_prefix(marker: str, prefix: str, delimiter: str) -> bool:
    """Whether ``marker`` is itself a common prefix of a listing by ``prefix``/``delimiter``."""
    return bool(marker) and common_prefix(marker, prefix, delimiter) == marker


@dataclass(frozen=True)
class Seek:
    """A position in key order: keys from ``key`` on (``inclusive``) or strictly after it."""

    key: str
    inclusive: bool


class Offer(Enum):
    """What the engine did with an entry."""

    SKIPPED = "skipped"  # before the marker, under a skipped prefix, or a repeated prefix
    TAKEN = "taken"  # listed as itself, or a store-rolled common prefix
    ROLLED = "rolled"  # rolled up into a new common prefix; a seeking stream resumes past it
    FULL = "full"  # a new entry beyond the limit: the page is truncated, stop reading


class Page(Generic[T]):
    """One page being collected from an ordered entry stream (see the module docstring).

    ``after`` says whether an item sorts after the marker (the object marker is a key; an
    upload marker is a key and an upload id, so later uploads of the marker's key follow it
    and the stream starts at the key, ``marker_inclusive``). Store-rolled common prefixes
    are kept unless they are under a marker that is a common prefix: the store rolled them
    up from keys after the marker.
    """

    def __init__(
        self,
        prefix: str,
        delimiter: str,
        marker: str,
        limit: int,
        after: Callable[[str, T], bool],
        *,
        marker_inclusive: bool = False,
    ) -> None:
        self.prefix, self.delimiter, self.limit = prefix, delimiter, limit
        self.items: list[T] = []
        self.prefixes: list[str] = []
        self.last: tuple[str, T | None] | None = None
        self.truncated = False
        self.resume: Seek | None = None
        self._after = after
        self._skip_under = marker if is_common_prefix(marker, prefix, delimiter) else None
        self._marker, self._marker_inclusive = marker, marker_inclusive
        self._last_prefix: str | None = None

    @property
    def count(self) -> int:
        return len(self.items) + len(self.prefixes)

    def start(self) -> Seek | None:
        """Where a stream should start; None when nothing can follow the marker."""
        if self.limit <= 0:
            return None
        seek = Seek(self._marker, self._marker_inclusive)
        if self._skip_under is not None:
            upper = prefix_upper_bound(self._skip_under)
            if upper is None:
                return None
            seek = Seek(upper, True)
        if self.prefix > seek.key:
            seek = Seek(self.prefix, True)
        return seek

    def offer(self, key: str, item: T | None) -> Offer:
        """Consider the next entry of the stream (see :class:`Offer`)."""
        if self._skip_under is not None and key.startswith(self._skip_under):
            return Offer.SKIPPED
        common = key if item is None else common_prefix(key, self.prefix, self.delimiter)
        if item is not None and not self._after(key, item):
            return Offer.SKIPPED
        if common is not None and common == self._last_prefix:
            return Offer.SKIPPED
        if self.count >= self.limit:
            self.truncated = True
            return Offer.FULL
        if common is None:
            assert item is not None
            self.items.append(item)
            self.last = (key, item)
            return Offer.TAKEN
        self.prefixes.append(common)
        self.last = (common, None)
        self._last_prefix = common
        if item is None:
            return Offer.TAKEN
        upper = prefix_upper_bound(common)
        self.resume = None if upper is None else Seek(upper, True)
        return Offer.ROLLED

    @property
    def next_marker(self) -> tuple[str, T | None] | None:
        """The last entry listed when the page is truncated, else None."""
        return self.last if self.truncated else None


#: An ordered entry stream from a position; ``wanted`` is how many more entries would
#: decide the page (a hint for the store's page size: the stream may be read further).
AsyncScan = Callable[[Seek, int], AsyncIterator[tuple[str, T | None]]]
SyncScan = Callable[[Seek, int], Iterator[tuple[str, T | None]]]


async def collect(page: Page[T], scan: AsyncScan[T], *, seek_past_prefixes: bool) -> Page[T]:
    """Fill ``page`` from ``scan``, restarting it past each rolled-up prefix if asked."""
    seek = page.start()
    while seek is not None:
        entries = scan(seek, page.limit - page.count + 1)
        seek = None
        try:
            async for key, item in entries:
                stop, seek = _stop_or_restart(page, page.offer(key, item), seek_past_prefixes)
                if stop:
                    break
        finally:
            aclose = getattr(entries, "aclose", None)
            if aclose is not None:
                await aclose()
    return page


def collect_sync(page: Page[T], scan: SyncScan[T], *, seek_past_prefixes: bool) -> Page[T]:
    """:func:`collect` for a stream read synchronously (a local database, the memory store)."""
    seek = page.start()
    while seek is not None:
        entries = scan(seek, page.limit - page.count + 1)
        seek = None
        for key, item in entries:
            stop, seek = _stop_or_restart(page, page.offer(key, item), seek_past_prefixes)
            if stop:
                break
    return page


def _stop_or_restart(
    page: Page[T], offer: Offer, seek_past_prefixes: bool
) -> tuple[bool, Seek | None]:
    """After ``offer``: whether to stop reading the stream, and where to restart it (None:
    the page is done). A full page stops; a rolled-up prefix restarts past it if asked."""
    if offer is Offer.FULL:
        return True, None
    if offer is Offer.ROLLED and seek_past_prefixes:
        return True, page.resume
    return False, None


def objects_page(query: ListQuery) -> Page[ObjectInfo]:
    """An empty page of a ListObjects ``query``: keys strictly after ``start_after``."""
    after = query.start_after.encode()
    return Page(
        query.prefix,
        query.delimiter,
        query.start_after,
        query.max_keys,
        lambda key, _: key.encode() > after,
    )


def list_page(page: Page[ObjectInfo]) -> ListPage:
    """The :class:`ListPage` of a collected objects page."""
    marker = page.next_marker
    return ListPage(page.items, page.prefixes, None if marker is None else marker[0])


def uploads_page(query: UploadsQuery) -> Page[UploadInfo]:
    """An empty page of a ListMultipartUploads ``query``, over uploads sorted by key bytes,
    then upload id (ids sort by initiation). ``key_marker`` alone resumes after every upload
    of that key; with ``upload_id_marker``, after that upload of that key."""
    marker, id_marker = query.key_marker, query.upload_id_marker
    marker_bytes = marker.encode()

    def after(key: str, upload: UploadInfo) -> bool:
        if key == marker:
            return bool(id_marker) and upload.upload_id > id_marker
        return key.encode() > marker_bytes

    return Page(
        query.prefix,
        query.delimiter,
        marker,
        query.max_uploads,
        after,
        marker_inclusive=bool(marker and id_marker),
    )


def page_uploads(uploads: list[UploadInfo], query: UploadsQuery) -> UploadsPage:
    """The page of ``uploads`` (one bucket's, in any order) that ``query`` asks for."""
    ordered = [
        (upload.key, upload)
        for upload in sorted(uploads, key=lambda u: (u.key.encode(), u.upload_id))
        if upload.key.startswith(query.prefix)
    ]
    page = collect_sync(uploads_page(query), lambda _, __: iter(ordered), seek_past_prefixes=False)
    return to_uploads_page(page)


def to_uploads_page(page: Page[UploadInfo]) -> UploadsPage:
    """The :class:`UploadsPage` of a collected uploads page."""
    marker = page.next_marker
    if marker is None:
        return UploadsPage(page.items, page.prefixes, None, None)
    key, upload = marker
    return UploadsPage(page.items, page.prefixes, key, None if upload is None else upload.upload_id)
