"""ListObjects over Azure: two sorted name streams merged into one S3 page.

A bucket's keys live verbatim or escaped (see :mod:`translators.azure.names`). Verbatim
names are listed with ``walk_blobs`` (Azure rolls up the delimiter server-side, so a common
prefix costs one entry however many keys it holds); escaped names are listed flat and
rolled up here. The two streams are merged in UTF-8 byte order of the keys.

Azure has no start-after. A page resumes from a small in-memory cache that maps
``(container, prefix, delimiter, next_start_after)`` to the continuation token of the Azure
page holding the next entry, so paging through a listing reads each name about once; on a
miss (another process, or a client-chosen start-after) the scan starts at the prefix and
skips what it must, which costs one pass over the skipped names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from azure.storage.blob import BlobProperties
from azure.storage.blob.aio import BlobPrefix, ContainerClient

from translators import listing, objectmeta
from translators.azure import names as azure_names
from translators.base import ListPage, ListQuery, ObjectInfo
from translators.listing import Seek

_TOKENS_KEPT: Final = 1024
_SCAN_PAGE: Final = 5000

#: One listed entry: a key and its object, or a common prefix (object None).
Entry = tuple[str, ObjectInfo | None]


def object_info(key: str, blob: BlobProperties) -> ObjectInfo:
    """The ObjectInfo of a listed or fetched blob (S3 semantics from its metadata)."""
    settings = blob.content_settings
    fallback = {"content-type": settings.content_type} if settings.content_type else {}
    return objectmeta.decode(
        blob.metadata,
        key=key,
        size=blob.size,
        last_modified=blob.last_modified,
        fallback_etag=(blob.etag or "").strip('"'),
        fallback_headers=fallback,
    )


class TokenCache:
    """A bounded LRU of Azure continuation tokens, keyed by where a page ended."""

    def __init__(self) -> None:
        self._tokens: OrderedDict[tuple[str, ...], str | None] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> tuple[bool, str | None]:
        if key not in self._tokens:
            return False, None
        self._tokens.move_to_end(key)
        return True, self._tokens[key]

    def put(self, key: tuple[str, ...], token: str | None) -> None:
        self._tokens[key] = token
        self._tokens.move_to_end(key)
        while len(self._tokens) > _TOKENS_KEPT:
            self._tokens.popitem(last=False)


class _VerbatimStream:
    """Verbatim names under ``base + prefix``; ``page_token`` fetched the current page."""

    def __init__(
        self, container: ContainerClient, base: str, prefix: str, delimiter: str, page: int
    ) -> None:
        self.container, self.base, self.prefix = container, base, prefix
        # Server-side roll-up for one-character delimiters (Azurite rolls up longer ones
        # at their first character); longer ones are rolled up here, reading every name.
        usable = len(delimiter) == 1 and azure_names.is_verbatim(delimiter)
        self.delimiter = delimiter if usable else ""
        self.page = page
        self.page_token: str | None = None

    async def entries(self, token: str | None) -> AsyncIterator[Entry]:
        name_prefix = self.base + self.prefix
        listing: Any
        if self.delimiter:
            listing = self.container.walk_blobs(
                name_starts_with=name_prefix,
                include=["metadata"],
                delimiter=self.delimiter,
                results_per_page=self.page,
            )
        else:
            listing = self.container.list_blobs(
                name_starts_with=name_prefix, include=["metadata"], results_per_page=self.page
            )
        pages = listing.by_page(continuation_token=token)
        while True:
            self.page_token = pages.continuation_token
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return
            async for item in page:
                relative = item.name[len(self.base) :]
                if isinstance(item, BlobPrefix):
                    yield relative, None
                elif azure_names.is_verbatim(relative):
                    yield relative, object_info(relative, item)


async def _escaped_entries(
    container: ContainerClient, base: str, prefix: str
) -> AsyncIterator[Entry]:
    name_prefix = base + azure_names.escaped_prefix(prefix)
    listing = container.list_blobs(
        name_starts_with=name_prefix, include=["metadata"], results_per_page=_SCAN_PAGE
    )
    async for blob in listing:
        key = azure_names.decode_escaped(blob.name[len(base) :])
        if key is not None and key.startswith(prefix):
            yield key, object_info(key, blob)


async def _merge(streams: Sequence[AsyncIterator[Entry]]) -> AsyncIterator[Entry]:
    """Merge sorted entry streams by the UTF-8 bytes of their keys."""
    heads: list[Entry | None] = [await anext(s, None) for s in streams]
    while True:
        live = [(h[0].encode(), i) for i, h in enumerate(heads) if h is not None]
        if not live:
            return
        _, index = min(live)
        head = heads[index]
        assert head is not None
        yield head
        heads[index] = await anext(streams[index], None)


async def list_objects(
    container: ContainerClient,
    base: str,
    query: ListQuery,
    tokens: TokenCache,
) -> ListPage:
    """One page of the keys under ``base`` (a bucket's name prefix) as ListQuery describes."""
    prefix, delimiter, start_after = query.prefix, query.delimiter, query.start_after
    after = start_after.encode()
    skip_under = start_after if listing.is_common_prefix(start_after, prefix, delimiter) else None

    cache_key = (container.container_name, base + prefix, delimiter, start_after)
    hit, token = tokens.get(cache_key) if start_after else (True, None)
    page_size = min(_SCAN_PAGE, max(query.max_keys + 2, 100)) if hit else _SCAN_PAGE
    verbatim: _VerbatimStream | None = None
    if _verbatim_possible(prefix):
        verbatim = _VerbatimStream(container, base, prefix, delimiter, page_size)

    async def has_later_key(group: str) -> bool:
        """Whether a verbatim key in ``group`` (a server-side prefix) sorts after start_after
        and is really verbatim (escaped names share no verbatim group but ESCAPED's own)."""
        async for blob in container.list_blobs(name_starts_with=base + group):
            relative = blob.name[len(base) :]
            if relative.encode() > after and azure_names.is_verbatim(relative):
                return True
        return False

    async def scan(_: Seek, __: int) -> AsyncIterator[Entry]:
        """Every entry under the prefix (Azure has no start-after; the engine skips), less
        the server-side prefixes that hold no key to list."""
        streams = [_escaped_entries(container, base, prefix)]
        if verbatim is not None:
            streams.append(verbatim.entries(token))
        async for key, info in _merge(streams):
            if info is None:
                if key.startswith(azure_names.ESCAPED) or (
                    skip_under and key.startswith(skip_under)
                ):
                    continue
                if key.encode() <= after:
                    if not start_after.startswith(key) or not await has_later_key(key):
                        continue
                elif azure_names.ESCAPED.startswith(key) and not await has_later_key(key):
                    continue
            yield key, info

    page = await listing.collect(listing.objects_page(query), scan, seek_past_prefixes=False)
    if page.truncated and verbatim is not None and page.last is not None:
        tokens.put(
            (container.container_name, base + prefix, delimiter, page.last[0]), verbatim.page_token
        )
    return listing.list_page(page)


def _verbatim_possible(prefix: str) -> bool:
    """Whether any verbatim key can start with ``prefix``."""
    if prefix.startswith(azure_names.ESCAPED):
        return False
    return azure_names.is_verbatim(prefix.rstrip(".") + "x")
