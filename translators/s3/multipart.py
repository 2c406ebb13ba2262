"""Multipart uploads of the S3 translator: native uploads mapped one to one.

The gateway validates every completion itself (:func:`translators.multipart.plan_completion`
against ListParts), so ``EntityTooSmall``, ``InvalidPart`` and ``InvalidPartOrder`` are the
gateway's whatever the backend enforces. What a native upload cannot carry is kept beside it
(see :mod:`translators.s3.codec`): the checksum algorithm and type and the manifest token
in the gateway upload id, a note per upload (so ListMultipartUploads can rebuild gateway
ids), a note per part holding its MD5 and checksums when it has any, and the manifest of
the completed object.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import UTC, datetime
from typing import IO, Any

import anyio

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from translators import multipart
from translators.base import (
    CompletedPart,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)
from translators.namespace import Location
from translators.s3 import listing as s3_listing
from translators.s3.client import S3Store, log
from translators.s3.codec import (
    UploadId,
    key_tag,
    native_upload_hash,
    parse_part_note,
    parse_upload_id,
    part_note_after,
    part_note_name,
    unquote,
)
from translators.s3.io import BodyReader, held_back

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class S3Multipart:
    """The multipart half of :class:`translators.s3.S3Backend`."""

    def __init__(self, store: S3Store) -> None:
        self.store = store

    # Bookkeeping locations

    def upload_note_prefix(self, bucket: str) -> str:
        return self.store.namespace.system("uploads", bucket).name + "/"

    def part_note_prefix(self, native: str) -> str:
        return self.store.namespace.system("parts", native_upload_hash(native)).name + "/"

    async def _upload_id(self, bucket: str, key: str, upload_id: str) -> tuple[Location, UploadId]:
        location = self.store.namespace.object(bucket, key)
        try:
            return location, parse_upload_id(upload_id, location)
        except S3Error:
            await self.store.require_bucket(bucket)
            raise

    async def _native(self, bucket: str, operation: str, call: Any, upload_id: str) -> Any:
        """A call on a native upload; NoSuchUpload becomes NoSuchBucket if the bucket is gone."""
        try:
            return await self.store.call(operation, call, BucketName=bucket, UploadId=upload_id)
        except S3Error as error:
            if error.code in ("NoSuchUpload", "NoSuchBucket"):
                await self.store.require_bucket(bucket)
                raise S3Error("NoSuchUpload", UploadId=upload_id) from None
            raise

    # Operations

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Start a native upload carrying the object's metadata; record its gateway id."""
        checksum_type = multipart.resolve_checksum_type(checksum_algorithm, checksum_type)
        await self.store.require_bucket_for_writes(bucket)
        location = self.store.namespace.object(bucket, key)
        token, native = await self.store.start_native_upload(bucket, location, metadata)
        upload_id = UploadId(checksum_algorithm, checksum_type, key_tag(location), token, native)
        note = self.upload_note_prefix(bucket) + (
            f"{native_upload_hash(upload_id.native)}.{upload_id.prefix()}"
        )
        await self.store.call(
            "PutObject",
            lambda: self.store.client.put_object(
                Bucket=self.store.namespace.container, Key=note, Body=b""
            ),
        )
        return multipart.new_upload(
            key, str(upload_id), metadata, checksum_algorithm, checksum_type
        )

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Stream the part to the backend (its last chunk held back until the client's stream
        verified); a part of unknown length is spooled to a temporary file first. The part's
        MD5 and checksums (the upload's algorithm computed if the client sent none) are kept
        in a part note when the backend cannot report them."""
        location, parsed = await self._upload_id(bucket, key, upload_id)
        algorithm = parsed.algorithm
        hashers: dict[str, checksums.Hasher] = {}
        if algorithm:
            hashers[algorithm] = checksums.new_hasher(algorithm)
        chunks = held_back(body.__aiter__(), hashers)
        spool: IO[bytes] | None = None
        reader: BodyReader | None = None
        size = body.declared_size
        try:
            if size is None:
                spool, size = await self._spool(chunks)
                payload: Any = spool
            else:
                reader = BodyReader(chunks)
                payload = reader
            response = await self._native(
                bucket,
                "UploadPart",
                lambda: self.store.stream_client.upload_part(
                    Bucket=location.container,
                    Key=location.name,
                    UploadId=parsed.native,
                    PartNumber=part_number,
                    Body=payload,
                    ContentLength=size,
                ),
                upload_id,
            )
        except S3Error as error:
            if reader is not None and reader.error is not None:
                raise reader.error from None
            if error.code in ("ServiceUnavailable", "InternalError"):
                # The backend may have refused the part before reading it (moto closes the
                # connection on an unknown upload): ask whether the upload still exists.
                await self._native(
                    bucket,
                    "ListParts",
                    lambda: self.store.client.list_parts(
                        Bucket=location.container,
                        Key=location.name,
                        UploadId=parsed.native,
                        MaxParts=1,
                    ),
                    upload_id,
                )
            raise
        finally:
            if spool is not None:
                spool.close()
        computed = {name: checksums.encode(hasher.digest()) for name, hasher in hashers.items()}
        part = multipart.received_part(part_number, body.digest(), computed)
        native_etag = unquote(str(response.get("ETag", "")))
        if part.checksums or native_etag != part.etag:
            note = part_note_name(self.part_note_prefix(parsed.native), part, native_etag)
            await self.store.call(
                "PutObject",
                lambda: self.store.client.put_object(
                    Bucket=self.store.namespace.container, Key=note, Body=b""
                ),
            )
        return part

    async def _spool(self, chunks: Any) -> tuple[IO[bytes], int]:
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self.store.part_size)  # noqa: SIM115
        size = 0
        try:
            async for chunk in chunks:
                await self.store.pool.run(spool.write, chunk)
                size += len(chunk)
            await self.store.pool.run(spool.seek, 0)
        except BaseException:
            spool.close()
            raise
        return spool, size

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        """Parts above ``part_number_marker``, with the MD5s and checksums of their notes.
        The UploadInfo carries the id's algorithm and type; S3's ListParts does not return
        the upload's metadata or initiation time, so those are empty."""
        location, parsed = await self._upload_id(bucket, key, upload_id)
        upload = UploadInfo(
            key, upload_id, _EPOCH, WriteMetadata(), parsed.algorithm, parsed.checksum_type
        )
        parts, truncated = await self._parts(
            bucket, location, parsed, part_number_marker, max_parts
        )
        listed = [part for part, _ in parts]
        next_marker = listed[-1].part_number if truncated and listed else None
        return upload, PartsPage(listed, next_marker)

    async def _parts(
        self, bucket: str, location: Location, parsed: UploadId, marker: int, limit: int | None
    ) -> tuple[list[tuple[PartInfo, str]], bool]:
        """Up to ``limit`` (None: all) parts after ``marker`` as (gateway view, native ETag),
        and whether more follow."""
        native: list[dict[str, Any]] = []
        truncated = False
        while limit is None or len(native) < limit:
            wanted = 1000 if limit is None else min(1000, limit - len(native))
            requested = min(1000, wanted + 1)
            after = marker
            page: Any = await self._native(
                bucket,
                "ListParts",
                functools.partial(
                    self.store.client.list_parts,
                    Bucket=location.container,
                    Key=location.name,
                    UploadId=parsed.native,
                    PartNumberMarker=after,
                    MaxParts=requested,
                ),
                str(parsed),
            )
            raw = page.get("Parts", [])
            # rclone treats the marker as inclusive: keep only parts after it.
            native += [p for p in raw if int(p["PartNumber"]) > after]
            reported = page.get("IsTruncated")
            truncated = bool(raw) and (
                len(raw) >= requested if reported is None else bool(reported)
            )
            highest = max((int(p["PartNumber"]) for p in raw), default=after)
            if not truncated or highest <= after:
                truncated = False
                break
            marker = highest
        if limit is not None and len(native) > limit:
            native, truncated = native[:limit], True
        notes = await self._part_notes(parsed, native)
        parts: list[tuple[PartInfo, str]] = []
        for item in native:
            number, size = int(item["PartNumber"]), int(item["Size"])
            native_etag = unquote(str(item["ETag"]))
            md5, sums = notes.get((number, native_etag), (native_etag, {}))
            parts.append((PartInfo(number, size, md5, item.get("LastModified"), sums), native_etag))
        return parts, truncated

    async def _part_notes(
        self, parsed: UploadId, native: list[dict[str, Any]]
    ) -> dict[tuple[int, str], tuple[str, dict[str, str]]]:
        """(part number, native ETag) -> (MD5, checksums) from the notes of ``native`` parts."""
        if not native:
            return {}
        prefix = self.part_note_prefix(parsed.native)
        first, last = int(native[0]["PartNumber"]), int(native[-1]["PartNumber"])
        notes: dict[tuple[int, str], tuple[str, dict[str, str]]] = {}
        for name in await self.list_names(prefix, part_note_after(prefix, first - 1), last):
            note = parse_part_note(prefix, name)
            if note is not None:
                number, native_etag, md5, sums = note
                notes[(number, native_etag)] = (md5, sums)
        return notes

    async def list_names(self, prefix: str, start_after: str = "", last_part: int = 0) -> list[str]:
        """Names under ``prefix`` in the bookkeeping container (part notes: stop after the
        notes of part ``last_part``)."""
        names: list[str] = []
        async with contextlib.aclosing(self.store.bookkeeping_pages(prefix, start_after)) as pages:
            async for contents in pages:
                batch = [str(item["Key"]) for item in contents]
                names += batch
                if not batch or (last_part and batch[-1] > part_note_after(prefix, last_part)):
                    break
        return names

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """Uploads started through the gateway, by key then (within a key) in the backend's
        order; markers, delimiter and ``max_uploads`` applied as S3 defines them. The
        gateway's own uploads for large PutObjects have no note and are not listed."""
        await self.store.require_bucket(bucket)
        note_prefix = self.upload_note_prefix(bucket)
        prefixes_by_hash: dict[str, str] = {}
        for name in await self.list_names(note_prefix):
            digest, _, prefix = name[len(note_prefix) :].partition(".")
            prefixes_by_hash[digest] = prefix
        base = self.store.namespace.bucket_prefix(bucket)
        entries: list[tuple[str, str, datetime, UploadId]] = []
        for item in await self._native_uploads(bucket, base + query.prefix):
            native = str(item["UploadId"])
            id_prefix = prefixes_by_hash.get(native_upload_hash(native))
            name = str(item["Key"])
            if id_prefix is None or not name.startswith(base):
                continue
            key = name[len(base) :]
            location = self.store.namespace.object(bucket, key)
            try:
                parsed = parse_upload_id(f"{id_prefix}.{native}", location)
            except S3Error:
                continue
            entries.append((key, str(parsed), item["Initiated"], parsed))
        entries.sort(key=lambda entry: entry[0].encode())
        return s3_listing.uploads_page(entries, query)

    async def _native_uploads(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        container = self.store.namespace.container_for(bucket)
        found: list[dict[str, Any]] = []
        async with contextlib.aclosing(
            self.native_upload_pages(container, prefix, bucket)
        ) as pages:
            async for page in pages:
                found += page
        return found

    async def native_upload_pages(
        self, container: str, prefix: str, bucket: str = ""
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The pages (their ``Uploads``) of the backend's multipart uploads under ``prefix``
        in ``container``; errors name ``bucket``. None at all on a backend that answers
        NoSuchUpload for an empty listing (rclone)."""
        markers: dict[str, str] = {}
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"Bucket": container, "Prefix": prefix, **markers}
            try:
                page: Any = await self.store.call(
                    "ListMultipartUploads",
                    functools.partial(self.store.client.list_multipart_uploads, **params),
                    BucketName=bucket,
                )
            except S3Error as error:
                if error.code != "NoSuchUpload":  # rclone's answer when there are none
                    raise
                return
            fresh = [u for u in page.get("Uploads", []) if u["UploadId"] not in seen]
            seen.update(u["UploadId"] for u in fresh)
            if fresh:
                yield fresh
            if not page.get("IsTruncated") or not fresh:
                return
            markers = {
                "KeyMarker": page.get("NextKeyMarker") or fresh[-1]["Key"],
                "UploadIdMarker": page.get("NextUploadIdMarker") or fresh[-1]["UploadId"],
            }

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Validate against ListParts, write the manifest, then complete natively with the
        write conditions (checked by HEAD too; see :meth:`check_conditions`). The returned
        info carries ETag, size, checksums and parts, not the create-time metadata."""
        location, parsed = await self._upload_id(bucket, key, upload_id)
        listed, _ = await self._parts(bucket, location, parsed, 0, None)
        native_etags = {part.part_number: etag for part, etag in listed}
        upload = UploadInfo(
            key, upload_id, _EPOCH, WriteMetadata(), parsed.algorithm, parsed.checksum_type
        )
        plan = multipart.plan_completion(
            upload,
            {part.part_number: part for part, _ in listed},
            parts,
            min_part_size=self.store.min_part_size,
        )
        info = multipart.completed_object(key, upload, plan)
        native_conditions = await self.store.check_conditions(bucket, key, conditions)
        await self.store.write_manifest(parsed.token, bucket, info)
        chosen = [
            {"PartNumber": p.part_number, "ETag": f'"{native_etags[p.part_number]}"'}
            for p in plan.parts
        ]
        response = await self._native(
            bucket,
            "CompleteMultipartUpload",
            lambda: self.store.client.complete_multipart_upload(
                Bucket=location.container,
                Key=location.name,
                UploadId=parsed.native,
                MultipartUpload={"Parts": chosen},  # type: ignore[typeddict-item]
                **native_conditions,  # type: ignore[arg-type]
            ),
            upload_id,
        )
        await self._forget_upload(bucket, parsed)
        version = response.get("VersionId")  # the backend's; see translators.s3.versions
        return info if version is None else replace(info, version_id=str(version))

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        location, parsed = await self._upload_id(bucket, key, upload_id)
        await self._native(
            bucket,
            "AbortMultipartUpload",
            lambda: self.store.client.abort_multipart_upload(
                Bucket=location.container, Key=location.name, UploadId=parsed.native
            ),
            upload_id,
        )
        await self._forget_upload(bucket, parsed)

    async def _forget_upload(self, bucket: str, parsed: UploadId) -> None:
        """Remove an ended upload's notes (best effort: leftovers are never read again)."""
        with anyio.CancelScope(shield=True):
            names = await self.list_names(self.part_note_prefix(parsed.native))
            names.append(
                self.upload_note_prefix(bucket)
                + f"{native_upload_hash(parsed.native)}.{parsed.prefix()}"
            )
            await self.delete_names(names)

    async def delete_names(self, names: list[str]) -> None:
        """Delete bookkeeping objects (:meth:`S3Store.delete_names`), best effort."""
        try:
            await self.store.delete_names(names)
        except S3Error as error:
            log.warning("S3 backend %s: cleanup failed: %s", self.store.endpoint, error)


def content_md5(data: bytes) -> str:
    import hashlib

    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")
