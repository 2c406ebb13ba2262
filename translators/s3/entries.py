"""The backend entries (versions and delete markers) of backend names, for
:mod:`translators.s3.versions`: listed in order, and bookkeeping rewritten or removed in
place (no older version of it kept) when its backend bucket is versioned.

ListObjectVersions: boto3 splits its versions and delete markers in two lists; a name's
entries are put back in order by the latest first, then last-modified time, then the order
of the backend's XML (S3 interleaves them newest first; moto lists every delete marker after
the versions, so there a delete marker that is neither the latest nor a second apart from
the versions around it may be listed out of place).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

from core.errors import S3Error
from translators.namespace import Location
from translators.s3.client import S3Store
from translators.s3.codec import unquote
from translators.versioning import NULL_VERSION

_ORDER = "PagewrightOrder"


def _keep_order(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """botocore ``before-parse`` hook: the (key, version id) order of a ListObjectVersions
    answer, versions and delete markers together, as the backend sent them."""
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not body:
        return
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return
    encoded = any(el.tag.endswith("EncodingType") and el.text == "url" for el in root)
    order: list[tuple[str, str]] = []
    for element in root:
        if element.tag.rsplit("}", 1)[-1] not in ("Version", "DeleteMarker"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        key = fields.get("Key", "")
        order.append((unquote_plus(key) if encoded else key, fields.get("VersionId", "")))
    customized_response_dict[_ORDER] = order


@dataclass(frozen=True)
class Entry:
    """One backend entry of a listed name."""

    name: str
    backend_id: str
    is_marker: bool
    is_latest: bool
    last_modified: datetime
    size: int
    etag: str


def listed(response: Any) -> list[Entry]:
    entries = [
        Entry(
            str(item["Key"]),
            str(item.get("VersionId") or NULL_VERSION),
            marker,
            bool(item.get("IsLatest")),
            item["LastModified"],
            int(item.get("Size", 0)),
            unquote(str(item.get("ETag", ""))),
        )
        for field, marker in (("Versions", False), ("DeleteMarkers", True))
        for item in response.get(field, [])
    ]
    rank = {pair: index for index, pair in enumerate(response.get(_ORDER, []))}
    return sorted(
        entries,
        key=lambda e: (
            e.name.encode(),
            not e.is_latest,
            -e.last_modified.timestamp(),
            rank.get((e.name, e.backend_id), len(rank)),
        ),
    )


class BackendEntries:
    """Lists, rewrites and removes backend names' entries in an
    :class:`~translators.s3.client.S3Store`."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        store.client.meta.events.register("before-parse.s3.ListObjectVersions", _keep_order)

    async def entries(self, location: Location) -> list[Entry]:
        """Every backend entry of ``location``'s name, newest first."""
        found: list[Entry] = []
        params: dict[str, Any] = {"Bucket": location.container, "Prefix": location.name}
        while True:
            response: Any = await self.store.call(
                "ListObjectVersions",
                functools.partial(self.store.client.list_object_versions, **params),
            )
            page = listed(response)
            found += [e for e in page if e.name == location.name]
            if not response.get("IsTruncated") or any(e.name > location.name for e in page):
                return found
            params["KeyMarker"] = response.get("NextKeyMarker", "")
            params["VersionIdMarker"] = response.get("NextVersionIdMarker", "")

    async def delete_ids(self, location: Location, ids: list[str]) -> None:
        for backend_id in ids:
            await self.store.call(
                "DeleteObject",
                functools.partial(
                    self.store.client.delete_object,
                    Bucket=location.container,
                    Key=location.name,
                    VersionId=backend_id,
                ),
            )

    async def purge(self, location: Location, keep: str | None) -> None:
        """Delete every entry of ``location`` but ``keep``."""
        entries = await self.entries(location)
        await self.delete_ids(location, [e.backend_id for e in entries if e.backend_id != keep])

    async def rewrite(self, location: Location, metadata: dict[str, str]) -> None:
        """Write an empty bookkeeping object, keeping no older version of it."""
        response: Any = await self.store.call(
            "PutObject",
            lambda: self.store.client.put_object(
                Bucket=location.container, Key=location.name, Body=b"", Metadata=metadata
            ),
        )
        if response.get("VersionId") not in (None, NULL_VERSION):
            await self.purge(location, str(response["VersionId"]))

    async def remove(self, location: Location) -> None:
        """Delete a name for good (every backend entry, when its bucket is versioned)."""
        try:
            response: Any = await self.store.call(
                "DeleteObject",
                lambda: self.store.client.delete_object(
                    Bucket=location.container, Key=location.name
                ),
            )
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return
            raise
        if response.get("VersionId") not in (None, NULL_VERSION):
            await self.purge(location, None)
