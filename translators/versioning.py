"""Object versioning: its values and S3's rules, written once for every translator.

The Backend methods are ``translators.base.Backend``'s versioning methods; a translator that
keeps versions implements them with the rules below, one that does not takes
:class:`translators.unversioned.Unversioned`'s.

A bucket's versioning state is None (never enabled: every write replaces the key's one
object), ``Enabled`` or ``Suspended``; once enabled it can only be suspended, never unset.
A key's *history* is its entries newest first: object versions and delete markers, each with
a version id (``null`` for the version written while versioning was off or suspended). The
first entry is the latest; when it is an object, that object is what GetObject, HeadObject
and ListObjects see; when it is a delete marker, the key reads as absent.

The rules (S3's) that every translator with the capability applies through
:func:`after_write` and :func:`after_delete`:

* a write on an Enabled bucket adds a version with a new id on top; earlier ones stay;
* a write on a Suspended or never-versioned bucket replaces the ``null`` entry (object or
  delete marker) with the new ``null`` version; versions with ids stay;
* a delete without a version id on an Enabled bucket adds a delete marker with a new id; on
  a Suspended bucket it replaces the ``null`` entry with a ``null`` delete marker; on a
  never-versioned bucket it removes the ``null`` object;
* a delete with a version id removes that entry for good (object or marker); the next
  newest, if any, becomes the latest. An id the key does not have removes nothing;
* the gateway's reserved keys (:mod:`core.reserved`) are never versioned (:func:`status_for`).

Version ids are opaque: order comes from the history, never from comparing ids.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal

from core.context import RequestContext
from core.errors import S3Error
from core.reserved import is_reserved_key
from core.tokens import opaque_token
from translators import listing
from translators.base import Backend, ObjectInfo

VersioningStatus = Literal["Enabled", "Suspended"]
#: The version id of what was written while versioning was off or suspended.
NULL_VERSION = "null"


def new_version_id() -> str:
    """A fresh, opaque version id: 32 URL-safe characters, never a leading ``-``."""
    return opaque_token(24)


@dataclass(frozen=True)
class Version:
    """One entry of a key's history: an object version (``info`` set) or a delete marker.

    ``position`` is its place in the key's history, 0 for the latest. ``info`` carries the
    same ``version_id``; listed versions need not carry headers, metadata or parts.
    """

    key: str
    version_id: str
    last_modified: datetime
    info: ObjectInfo | None
    position: int = 0

    @property
    def is_delete_marker(self) -> bool:
        return self.info is None

    @property
    def is_latest(self) -> bool:
        return self.position == 0


def delete_marker(key: str, version_id: str) -> Version:
    """A delete marker made now."""
    return Version(key, version_id, datetime.now(UTC), None)


@dataclass(frozen=True)
class DeleteOutcome:
    """What a delete did: the version id it removed or the delete marker it added (None on
    a never-versioned bucket), and whether that entry is a delete marker."""

    version_id: str | None
    delete_marker: bool


@dataclass(frozen=True)
class VersionsQuery:
    """ListObjectVersions: every entry of the keys under ``prefix``, keys in UTF-8 byte order
    and each key's entries newest first, after ``key_marker`` (with ``version_id_marker``:
    after that entry of that key). Delimiter roll-up as in :class:`ListQuery`; ``max_keys``
    counts entries and common prefixes."""

    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    version_id_marker: str = ""
    max_keys: int = 1000


@dataclass(frozen=True)
class VersionsPage:
    """A page of entries; the next markers are None when the listing is complete."""

    versions: list[Version]
    common_prefixes: list[str]
    next_key_marker: str | None
    next_version_id_marker: str | None


# The rules, over a key's history (newest first).


@dataclass(frozen=True)
class Change:
    """A key's history after a write or delete, and the entries it dropped (whose bytes the
    translator frees once the change is durable)."""

    history: list[Version]
    dropped: list[Version]
    outcome: DeleteOutcome


def _numbered(history: Sequence[Version]) -> list[Version]:
    return [
        entry if entry.position == index else replace(entry, position=index)
        for index, entry in enumerate(history)
    ]


def _without_null(history: Sequence[Version]) -> tuple[list[Version], list[Version]]:
    kept = [entry for entry in history if entry.version_id != NULL_VERSION]
    return kept, [entry for entry in history if entry.version_id == NULL_VERSION]


def status_for(key: str, status: VersioningStatus | None) -> VersioningStatus | None:
    """The versioning that applies to ``key``: none for the gateway's reserved keys
    (:mod:`core.reserved`: bookkeeping is rewritten in place), else the bucket's."""
    return None if is_reserved_key(key) else status


def version_id_for_write(status: VersioningStatus | None) -> str:
    """The id a new object gets: a new one on an Enabled bucket, else ``null``."""
    return new_version_id() if status == "Enabled" else NULL_VERSION


def after_write(
    history: Sequence[Version], status: VersioningStatus | None, new: Version
) -> Change:
    """``history`` once ``new`` (whose id is :func:`version_id_for_write`'s) is written."""
    kept, dropped = (list(history), []) if status == "Enabled" else _without_null(history)
    return Change(_numbered([new, *kept]), dropped, DeleteOutcome(new.version_id, False))


def after_delete(
    history: Sequence[Version], status: VersioningStatus | None, key: str, version_id: str | None
) -> Change:
    """``history`` once a delete of ``key`` (of ``version_id``, or of the key) is applied."""
    if version_id is not None:
        dropped = [entry for entry in history if entry.version_id == version_id]
        kept = [entry for entry in history if entry.version_id != version_id]
        marker = bool(dropped) and dropped[0].is_delete_marker
        return Change(_numbered(kept), dropped, DeleteOutcome(version_id, marker))
    if status == "Enabled":
        marker_entry = delete_marker(key, new_version_id())
        kept, dropped = list(history), list[Version]()
    else:
        kept, dropped = _without_null(history)
        if status is None:
            return Change(_numbered(kept), dropped, DeleteOutcome(None, False))
        marker_entry = delete_marker(key, NULL_VERSION)
    outcome = DeleteOutcome(marker_entry.version_id, True)
    return Change(_numbered([marker_entry, *kept]), dropped, outcome)


def find_version(history: Sequence[Version], key: str, version_id: str) -> Version:
    """The entry ``version_id`` of ``history``; ``NoSuchVersion`` if it has none."""
    for entry in history:
        if entry.version_id == version_id:
            return entry
    raise S3Error("NoSuchVersion", Key=key, VersionId=version_id)


def absent(key: str, latest: Version | None) -> S3Error:
    """``NoSuchKey`` for a key read without a version id; when its latest entry is a delete
    marker, naming it as S3 does (``x-amz-delete-marker``, ``x-amz-version-id``)."""
    if latest is None or not latest.is_delete_marker:
        return S3Error("NoSuchKey", Key=key)
    headers = {"x-amz-delete-marker": "true", "x-amz-version-id": latest.version_id}
    return S3Error("NoSuchKey", headers=headers, Key=key)


def marker_read(entry: Version, method: str) -> S3Error:
    """S3's answer to reading delete marker ``entry`` by its version id: 405 naming it."""
    return S3Error(
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        headers={
            "x-amz-delete-marker": "true",
            "x-amz-version-id": entry.version_id,
            "Last-Modified": format_datetime(entry.last_modified.astimezone(UTC), usegmt=True),
        },
        Method=method,
        ResourceType="DeleteMarker",
    )


def readable(entry: Version) -> ObjectInfo:
    """The object of an entry to be read by id (GET); :func:`marker_read` for a marker."""
    if entry.info is None:
        raise marker_read(entry, "GET")
    return entry.info


def versions_page(query: VersionsQuery, marker_position: int | None) -> listing.Page[Version]:
    """An empty page of ``query`` over entries sorted by key bytes, then history position.

    ``marker_position`` is the position of ``version_id_marker`` in the marker key's history
    (found by the translator; None without a version id marker): the page resumes after it.
    """
    marker, marker_bytes = query.key_marker, query.key_marker.encode()

    def after(key: str, version: Version) -> bool:
        if key == marker:
            return marker_position is not None and version.position > marker_position
        return key.encode() > marker_bytes

    return listing.Page(
        query.prefix,
        query.delimiter,
        marker,
        query.max_keys,
        after,
        marker_inclusive=marker_position is not None,
    )


def marker_position(history: Sequence[Version], query: VersionsQuery) -> int | None:
    """Where ``query``'s version id marker stands in the marker key's ``history``; None
    without one. ``InvalidArgument`` when it names no entry, or comes without a key marker."""
    if not query.version_id_marker:
        return None
    if not query.key_marker:
        raise S3Error(
            "InvalidArgument",
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=query.version_id_marker,
        )
    for entry in history:
        if entry.version_id == query.version_id_marker:
            return entry.position
    raise S3Error(
        "InvalidArgument",
        "Invalid version id specified",
        ArgumentName="version-id-marker",
        ArgumentValue=query.version_id_marker,
    )


def to_versions_page(page: listing.Page[Version]) -> VersionsPage:
    """The :class:`VersionsPage` of a collected page."""
    marker = page.next_marker
    if marker is None:
        return VersionsPage(page.items, page.prefixes, None, None)
    key, version = marker
    return VersionsPage(
        page.items, page.prefixes, key, None if version is None else version.version_id
    )


async def key_histories(
    backend: Backend, ctx: RequestContext, bucket: str, prefix: str = "", page_size: int = 1000
) -> AsyncGenerator[list[Version], None]:
    """Each key's whole history under ``prefix`` (newest first), one key at a time in key
    order, gathered across the pages of ``backend.list_versions``."""
    query = VersionsQuery(prefix=prefix, max_keys=page_size)
    history: list[Version] = []
    while True:
        page = await backend.list_versions(ctx, bucket, query)
        for version in page.versions:
            if history and version.key != history[0].key:
                yield history
                history = []
            history.append(version)
        if page.next_key_marker is None:
            break
        query = replace(
            query,
            key_marker=page.next_key_marker,
            version_id_marker=page.next_version_id_marker or "",
        )
    if history:
        yield history


async def key_history(
    backend: Backend, ctx: RequestContext, bucket: str, key: str
) -> list[Version]:
    """``key``'s whole history in ``backend``, newest first (empty: it has none), read with
    :func:`key_histories` over the prefix ``key`` (its key sorts first among those it
    prefixes, so one listing page usually serves)."""
    async with aclosing(key_histories(backend, ctx, bucket, prefix=key)) as histories:
        async for history in histories:
            return history if history[0].key == key else []
    return []
