"""What the S3 translator can leave behind, and its sweep (:class:`translators.base.Sweeper`).

A crash, a kill or a failed best-effort cleanup can leave:

* **native multipart uploads without an upload note**: a PutObject larger than
  ``part_size`` streams a native upload that the gateway completes or aborts itself, and a
  CreateMultipartUpload writes its note just after starting the native upload; a process
  killed in between keeps the upload, its parts stored (and billed) until aborted;
* **upload notes whose native upload is gone**: the upload was completed or aborted but
  the note's deletion failed or never ran;
* **part notes whose upload note is gone**: the same, or an UploadPart that finished
  after its upload had ended.

:func:`sweep` removes those, once last written before the cutoff: a native upload by the
newest of its initiation and its parts, a note by its own LastModified. A native upload
counts as the gateway's when it lies in a gateway bucket's area (``<root>/`` of the
configured bucket in ``prefix`` mapping, ``<root>/`` of each gateway bucket's backend
bucket in ``bucket`` mapping), as for DeleteBucket, which aborts them all; so a native
upload another tool started there and left idle past the cutoff is aborted too.

* **manifests** (``.pagewright/manifests/<token>``) of deleted or overwritten multipart
  objects, and of completions interrupted between the manifest and the native completion.

A manifest records the gateway bucket and key it was written for
(:func:`translators.s3.codec.manifest_owner`); it is orphaned when that object is gone or
names another manifest token. Telling costs a GET of the manifest and a HEAD of its object,
so each sweep examines at most ``MANIFESTS_PER_SWEEP`` old manifests, resuming where the
last sweep of this process stopped (a cursor in memory: a restart starts over). Manifests
written before they recorded their object are left alone. The translator writes no
temporary objects (a part of unknown length is spooled to a local temporary file, gone with
the process).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from datetime import datetime
from typing import Any, Final

from core.errors import S3Error
from translators.s3.client import S3Store
from translators.s3.codec import manifest_owner, native_upload_hash, read_object
from translators.s3.multipart import S3Multipart
from translators.s3.versions import S3Versions

log = logging.getLogger("pagewright.translators.s3")

#: Old manifests a sweep examines (a GET and a HEAD each), at most.
MANIFESTS_PER_SWEEP: Final = 1000


class S3Sweeper:
    """The sweep of an :class:`~translators.s3.client.S3Store` (see the module docs)."""

    def __init__(
        self, store: S3Store, multipart: S3Multipart, versions: S3Versions | None = None
    ) -> None:
        self.store = store
        self.multipart = multipart
        self.versions = versions
        self._manifest_cursor = ""  # the last manifest examined; "" to start over

    async def sweep(self, older_than: datetime, limit: int) -> int:
        """Abort noteless native uploads, then delete stale upload notes, then orphaned
        part notes, each last written before ``older_than``; at most ``limit`` removals.

        Upload notes are listed first: an upload started after that listing is younger
        than any sane cutoff, so whatever races the sweep is left alone by age."""
        if limit <= 0:
            return 0
        notes = await self._upload_notes()
        removed, native = await self._abort_noteless(notes, older_than, limit)
        stale = sorted(
            name
            for digest, (name, written) in notes.items()
            if digest not in native and written < older_than
        )[: limit - removed]
        removed += await self._delete(stale)
        live = set(notes) - {name_hash(self._note_area(), name) for name in stale}
        if removed < limit:
            removed += await self._orphaned_part_notes(live, older_than, limit - removed)
        if removed < limit:
            removed += await self._orphaned_manifests(older_than, limit - removed)
        if removed:
            log.info("S3 backend %s: swept %d leftovers", self.store.endpoint, removed)
        return removed

    def _note_area(self) -> str:
        return self.store.namespace.system("uploads").name + "/"

    async def _upload_notes(self) -> dict[str, tuple[str, datetime]]:
        """Every upload note: native upload hash -> (name, LastModified)."""
        area = self._note_area()
        notes: dict[str, tuple[str, datetime]] = {}
        async with contextlib.aclosing(self.store.bookkeeping_pages(area)) as pages:
            async for contents in pages:
                for item in contents:
                    name = str(item["Key"])
                    notes[name_hash(area, name)] = (name, item["LastModified"])
        return notes

    async def _areas(self, notes: dict[str, tuple[str, datetime]]) -> list[tuple[str, str]]:
        """(backend bucket, name prefix) of every place gateway objects live: the root of
        the configured bucket (``prefix`` mapping), or each gateway bucket's backend bucket,
        those with a marker and those named by an upload note (``bucket`` mapping)."""
        namespace = self.store.namespace
        if namespace.mapping == "prefix":
            return [(namespace.container, namespace.root())]
        buckets = {name.split("/")[-2] for name, _ in notes.values()}
        markers = namespace.buckets_prefix()
        async with contextlib.aclosing(self.store.bookkeeping_pages(markers)) as pages:
            async for contents in pages:
                buckets.update(str(item["Key"])[len(markers) :] for item in contents)
        return [
            (namespace.container_for(bucket), namespace.bucket_prefix(bucket))
            for bucket in sorted(buckets)
            if bucket and "/" not in bucket
        ]

    async def _abort_noteless(
        self, notes: dict[str, tuple[str, datetime]], older_than: datetime, limit: int
    ) -> tuple[int, set[str]]:
        """Abort up to ``limit`` native uploads that no note names and that were last
        written before ``older_than``; how many, and the hashes of every native upload
        seen (aborted ones excepted)."""
        system = self.store.namespace.system("").name
        aborted = 0
        seen: set[str] = set()
        for container, prefix in await self._areas(notes):
            uploads = self.multipart.native_upload_pages(container, prefix)
            try:
                async with contextlib.aclosing(uploads) as pages:
                    async for page in pages:
                        for upload in page:
                            digest = native_upload_hash(str(upload["UploadId"]))
                            if (
                                digest in notes
                                or aborted >= limit
                                or str(upload["Key"]).startswith(system)
                                or not await self._idle(container, upload, older_than)
                            ):
                                seen.add(digest)
                            elif await self._abort(container, upload):
                                aborted += 1
            except S3Error as error:
                if error.code != "NoSuchBucket":  # a gateway bucket's backend bucket is gone
                    raise
        return aborted, seen

    async def _idle(self, container: str, upload: dict[str, Any], older_than: datetime) -> bool:
        """Whether a native upload was initiated and last given a part before ``older_than``."""
        if upload["Initiated"] >= older_than:
            return False
        marker = 0
        while True:
            try:
                page: Any = await self.store.call(
                    "ListParts",
                    functools.partial(
                        self.store.client.list_parts,
                        Bucket=container,
                        Key=str(upload["Key"]),
                        UploadId=str(upload["UploadId"]),
                        PartNumberMarker=marker,
                        MaxParts=1000,
                    ),
                )
            except S3Error as error:
                if error.code == "NoSuchUpload":
                    return False  # ended meanwhile: nothing to abort
                raise
            parts = page.get("Parts", [])
            if any(part["LastModified"] >= older_than for part in parts):
                return False
            highest = max((int(part["PartNumber"]) for part in parts), default=marker)
            # rclone treats the marker as inclusive: stop when a page brings nothing new.
            if not page.get("IsTruncated") or highest <= marker:
                return True
            marker = highest

    async def _abort(self, container: str, upload: dict[str, Any]) -> bool:
        key, native = str(upload["Key"]), str(upload["UploadId"])
        try:
            await self.store.call(
                "AbortMultipartUpload",
                lambda: self.store.client.abort_multipart_upload(
                    Bucket=container, Key=key, UploadId=native
                ),
            )
        except S3Error as error:
            if error.code == "NoSuchUpload":
                return False
            raise
        log.info("S3 backend %s: aborted a leftover native upload of %r", self.store.endpoint, key)
        return True

    async def _orphaned_part_notes(self, live: set[str], older_than: datetime, limit: int) -> int:
        """Delete up to ``limit`` part notes last written before ``older_than`` of uploads
        whose note is gone: one delimited listing of the upload areas, then the notes of
        each orphaned area."""
        area = self.store.namespace.system("parts").name + "/"
        removed = 0
        token: str | None = None
        while removed < limit:
            params: dict[str, Any] = {
                "Bucket": self.store.namespace.container,
                "Prefix": area,
                "Delimiter": "/",
            }
            if token:
                params["ContinuationToken"] = token
            page: Any = await self.store.call(
                "ListObjectsV2", functools.partial(self.store.client.list_objects_v2, **params)
            )
            for common in page.get("CommonPrefixes", []):
                prefix = str(common["Prefix"])
                if prefix[len(area) :].rstrip("/") in live or removed >= limit:
                    continue
                removed += await self._delete_old(prefix, older_than, limit - removed)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return removed

    async def _orphaned_manifests(self, older_than: datetime, limit: int) -> int:
        """Delete up to ``limit`` manifests last written before ``older_than`` whose object
        no longer names them, examining at most ``MANIFESTS_PER_SWEEP`` from the cursor."""
        area = self.store.manifest_location("").name
        examined = 0
        orphaned: list[str] = []
        cursor = self._manifest_cursor
        finished = True  # whether the listing was read to its end
        async with contextlib.aclosing(self.store.bookkeeping_pages(area, cursor)) as pages:
            async for contents in pages:
                for item in contents:
                    if examined >= MANIFESTS_PER_SWEEP or len(orphaned) >= limit:
                        finished = False
                        break
                    name = str(item["Key"])
                    cursor = name
                    if item["LastModified"] < older_than:
                        examined += 1
                        if await self._manifest_orphaned(name[len(area) :]):
                            orphaned.append(name)
                if not finished:
                    break
        self._manifest_cursor = "" if finished else cursor
        return await self._delete(orphaned)

    async def _manifest_orphaned(self, token: str) -> bool:
        """Whether manifest ``token``'s object is gone or names another manifest, in its
        current version and, in a versioned bucket, every other (False for a manifest that
        does not say whose it is, or that vanished meanwhile)."""
        manifest = self.store.manifest_location(token)
        try:
            body: bytes = await self.store.call(
                "GetObject",
                lambda: self.store.client.get_object(Bucket=manifest.container, Key=manifest.name)[
                    "Body"
                ].read(),
            )
        except S3Error as error:
            if error.code == "NoSuchKey":
                return False
            raise
        owner = manifest_owner(body)
        if owner is None:
            return False
        bucket, key = owner
        location = self.store.namespace.object(bucket, key)
        try:
            response: Any = await self.store.call(
                "HeadObject",
                lambda: self.store.client.head_object(Bucket=location.container, Key=location.name),
            )
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            response = None
        if response is not None and read_object(key, response).manifest == token:
            return False
        return self.versions is None or not await self.versions.keeps_manifest(bucket, key, token)

    async def _delete_old(self, prefix: str, older_than: datetime, limit: int) -> int:
        """Delete up to ``limit`` bookkeeping objects under ``prefix`` last written before
        ``older_than``, page by page; how many."""
        removed = 0
        async with contextlib.aclosing(self.store.bookkeeping_pages(prefix)) as pages:
            async for contents in pages:
                old = [str(i["Key"]) for i in contents if i["LastModified"] < older_than]
                removed += await self._delete(old[: limit - removed])
                if removed >= limit:
                    break
        return removed

    async def _delete(self, names: list[str]) -> int:
        """Delete bookkeeping objects; how many were deleted (:meth:`S3Store.delete_names`)."""
        return await self.store.delete_names(names)


def name_hash(area: str, name: str) -> str:
    """The native upload hash of an upload note ``<area><bucket>/<hash>.<id prefix>``."""
    return name[len(area) :].rpartition("/")[2].partition(".")[0]
