"""Writing a migration's target: one object copied from the source, verified, keeping its
multipart layout when the target accepts it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from commands.migrate_sealed import StoredFormPayload, is_sealed, part_payload
from commands.migrate_source import CopyPayload, ReadableStore, SourceReader
from commands.migrate_verify import (
    VerificationError,
    verify_part,
    verify_source_read,
    verify_target,
    whole_from_parts,
)
from core import checksums
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadDigest
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
)

#: S3 error codes with which a target refuses a multipart layout: copy as one object instead.
_LAYOUT_REFUSED: Final = frozenset(
    {"NotImplemented", "EntityTooSmall", "InvalidPart", "InvalidRequest", "InvalidArgument"}
)


@dataclass(frozen=True)
class Copied:
    """One object copied: its size, and whether a multipart source became a single object
    (its ETag is now the MD5 of its bytes)."""

    size: int
    flattened: bool


class _LayoutRefused(Exception):
    """The target cannot store a multipart source with its part layout."""


class ObjectCopier:
    """Copies objects from ``source`` to ``target`` under ``ctx``; ``on_bytes`` is told of
    every chunk streamed. With ``flatten_multipart`` every object becomes a single one."""

    def __init__(
        self,
        source: ReadableStore,
        target: Backend,
        ctx: RequestContext,
        *,
        flatten_multipart: bool,
        on_bytes: Callable[[int], None],
    ) -> None:
        self.source = source
        self.target = target
        self.ctx = ctx
        self.flatten_multipart = flatten_multipart
        self.on_bytes = on_bytes

    async def copy(self, bucket: str, listed: ObjectInfo) -> Copied:
        """Copy the object ``listed`` (as the source's listing showed it) and verify the copy;
        :class:`VerificationError` if the source changed since or the bytes do not match."""
        key = listed.key
        result = await self.source.get_object(self.ctx, bucket, key, GetOptions())
        source = result.info
        reader = SourceReader(result.body)
        if source.etag != listed.etag:
            await reader.close()
            raise VerificationError("the source object changed since it was listed; rerun")
        if is_sealed(source):
            try:
                return await self._copy_sealed(bucket, source, reader)
            finally:
                await reader.close()
        if len(source.parts) > 1 and not self.flatten_multipart:
            try:
                return await self._copy_parts(bucket, source, reader)
            except _LayoutRefused:
                pass  # copied as one object below, from a fresh read
            finally:
                await reader.close()
            result = await self.source.get_object(self.ctx, bucket, key, GetOptions())
            reader = SourceReader(result.body)
            if result.info.etag != source.etag:
                await reader.close()
                raise VerificationError("the source object changed during the copy")
        try:
            return await self._copy_whole(bucket, source, reader)
        finally:
            await reader.close()

    async def _copy_whole(self, bucket: str, source: ObjectInfo, reader: SourceReader) -> Copied:
        """Stream the source into one ``put_object`` that commits only if the bytes read
        match the source (checked at the end of the stream), then verify the target."""
        part_sizes = [p.size for p in source.parts] if len(source.parts) > 1 else [source.size]
        payload = CopyPayload(reader, part_sizes, _algorithms(source), self.on_bytes, source)
        await self.target.put_object(
            self.ctx, bucket, source.key, payload, _metadata(source), WriteConditions()
        )
        whole = payload.digest()
        stored = await self.target.head_object(self.ctx, bucket, source.key)
        verify_target(stored, source.size, whole.md5_hex, whole.checksums)
        return Copied(whole.size, flattened=whole.md5_hex != source.etag)

    async def _copy_sealed(self, bucket: str, source: ObjectInfo, reader: SourceReader) -> Copied:
        """An object stored encrypted, copied in its stored form (commands.migrate_sealed):
        a single object as one, a multipart one part by part under the same part numbers."""
        if not source.parts:
            payload = StoredFormPayload(
                reader, source.size, source.etag, source.checksums, self.on_bytes, last=True
            )
            await self.target.put_object(
                self.ctx, bucket, source.key, payload, _metadata(source), WriteConditions()
            )
        else:
            await self._copy_sealed_parts(bucket, source, reader)
        stored = await self.target.head_object(self.ctx, bucket, source.key)
        verify_target(stored, source.size, source.etag, source.checksums)
        return Copied(source.size, flattened=False)

    async def _copy_sealed_parts(
        self, bucket: str, source: ObjectInfo, reader: SourceReader
    ) -> None:
        algorithms = _algorithms(source)
        algorithm = checksums.parse_algorithm(algorithms[0]) if algorithms else None
        upload = await self.target.create_multipart_upload(
            self.ctx,
            bucket,
            source.key,
            _metadata(source),
            algorithm,
            source.checksum_type if algorithm else None,
        )
        completed: list[CompletedPart] = []
        try:
            for index, part in enumerate(source.parts):
                payload = part_payload(
                    reader, part, self.on_bytes, last=index == len(source.parts) - 1
                )
                stored_part = await self.target.upload_part(
                    self.ctx, bucket, source.key, upload.upload_id, part.part_number, payload
                )
                if stored_part.etag != part.etag:
                    raise VerificationError(f"part {part.part_number}: the target changed its ETag")
                completed.append(CompletedPart(part.part_number, part.etag, dict(part.checksums)))
            await self.target.complete_multipart_upload(
                self.ctx, bucket, source.key, upload.upload_id, completed, WriteConditions()
            )
        except BaseException as error:
            with contextlib.suppress(S3Error):
                await self.target.abort_multipart_upload(
                    self.ctx, bucket, source.key, upload.upload_id
                )
            if isinstance(error, S3Error) and error.code in _LAYOUT_REFUSED:
                raise VerificationError(
                    "the target refuses the parts of an encrypted multipart object "
                    f"({error.code}), and such an object cannot be copied as one"
                ) from error
            raise

    async def _copy_parts(self, bucket: str, source: ObjectInfo, reader: SourceReader) -> Copied:
        """Copy a multipart source as a multipart upload with the same part sizes, so the
        ``-N`` ETag and the checksum (COMPOSITE or FULL_OBJECT) stay the same.

        Raises :class:`_LayoutRefused` (after aborting the upload) when the target cannot
        hold that layout; the caller then copies the object as one.
        """
        algorithms = _algorithms(source)
        algorithm = checksums.parse_algorithm(algorithms[0]) if algorithms else None
        try:
            upload = await self.target.create_multipart_upload(
                self.ctx,
                bucket,
                source.key,
                _metadata(source),
                algorithm,
                source.checksum_type if algorithm else None,
            )
        except S3Error as error:
            if error.code in _LAYOUT_REFUSED:
                raise _LayoutRefused from error
            raise
        completed: list[CompletedPart] = []
        read: list[PayloadDigest] = []
        try:
            for number, part in enumerate(source.parts, start=1):
                payload = CopyPayload(reader, [part.size], algorithms, self.on_bytes)
                stored_part = await self.target.upload_part(
                    self.ctx, bucket, source.key, upload.upload_id, number, payload
                )
                digest = payload.digest()
                verify_part(number, part, digest, stored_part)
                read.append(digest)
                completed.append(CompletedPart(number, stored_part.etag, dict(digest.checksums)))
            await reader.finish()
            verify_source_read(source, whole_from_parts(source, read), read)
            await self.target.complete_multipart_upload(
                self.ctx, bucket, source.key, upload.upload_id, completed, WriteConditions()
            )
        except BaseException as error:
            with contextlib.suppress(S3Error):
                await self.target.abort_multipart_upload(
                    self.ctx, bucket, source.key, upload.upload_id
                )
            if isinstance(error, S3Error) and error.code in _LAYOUT_REFUSED:
                raise _LayoutRefused from error
            raise
        stored = await self.target.head_object(self.ctx, bucket, source.key)
        verify_target(stored, source.size, source.etag, source.checksums)
        return Copied(source.size, flattened=False)


def _metadata(source: ObjectInfo) -> WriteMetadata:
    return WriteMetadata(dict(source.headers), dict(source.user_metadata))


def _algorithms(source: ObjectInfo) -> tuple[str, ...]:
    return tuple(sorted(source.checksums))
