"""PutObject for the S3 translator: one PutObject up to ``part_size``, a native multipart
upload beyond, committed only after the body verified (see
:class:`translators.s3.backend.S3Backend`)."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import replace
from typing import Any

import anyio

from core.errors import S3Error
from core.streams import PayloadStream
from translators.base import (
    ObjectInfo,
    WriteConditions,
    WriteMetadata,
    written_object,
)
from translators.s3.client import S3Store
from translators.s3.codec import (
    native_headers,
    object_metadata,
)
from translators.s3.io import PartSplitter
from translators.s3.multipart import content_md5


class S3Writes:
    """Writes objects into an :class:`~translators.s3.client.S3Store`."""

    def __init__(self, store: S3Store) -> None:
        self.store = store

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Buffer up to ``part_size`` and send one PutObject, else stream a native multipart
        upload; either commits only after ``body`` verified (see the module docstring)."""
        await self.store.require_bucket_for_writes(bucket)
        splitter = PartSplitter(body.__aiter__())
        first = await splitter.next(self._part_size_for(body.declared_size, 1))
        if splitter.finished:
            return await self._put_single(bucket, key, first, body, metadata, conditions)
        return await self._put_parts(bucket, key, first, splitter, body, metadata, conditions)

    def _part_size_for(self, declared: int | None, number: int) -> int:
        """Parts of ``part_size``, larger when 10,000 would not hold the object; for an
        unknown size they grow every 1,000 parts (about 440 GB at 8 MiB)."""
        if declared is not None:
            return max(self.store.part_size, -(-declared // 9_000))
        return self.store.part_size * (1 + (number - 1) // 1_000)

    async def _put_single(
        self,
        bucket: str,
        key: str,
        data: bytes,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        digest = body.digest()
        info = written_object(key, digest, metadata)
        native_conditions = await self.store.check_conditions(bucket, key, conditions)
        location = self.store.namespace.object(bucket, key)
        params: dict[str, Any] = {
            "Bucket": location.container,
            "Key": location.name,
            "Body": data,
            "ContentLength": len(data),
            "ContentMD5": content_md5(data),
            "Metadata": object_metadata(
                info.headers,
                info.user_metadata,
                etag=info.etag,
                checksums=info.checksums,
                checksum_type=info.checksum_type,
            ),
            **native_headers(info.headers),
            **native_conditions,
        }
        response: Any = await self.store.call(
            "PutObject",
            lambda: self.store.client.put_object(**params),
            BucketName=bucket,
            Key=key,
        )
        return backend_version(info, response)

    async def _put_parts(
        self,
        bucket: str,
        key: str,
        first: bytes,
        splitter: PartSplitter,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        location = self.store.namespace.object(bucket, key)
        token, native = await self.store.start_native_upload(bucket, location, metadata)
        manifest = self.store.manifest_location(token)
        try:
            parts: list[dict[str, Any]] = []
            data, number = first, 1
            while True:
                last = splitter.finished
                sent: Any = await self.store.call(
                    "UploadPart",
                    functools.partial(
                        self.store.client.upload_part,
                        Bucket=location.container,
                        Key=location.name,
                        UploadId=native,
                        PartNumber=number,
                        Body=data,
                        ContentLength=len(data),
                        ContentMD5=content_md5(data),
                    ),
                )
                parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                if last:
                    break
                number += 1
                data = await splitter.next(self._part_size_for(body.declared_size, number))
            digest = body.digest()
            info = written_object(key, digest, metadata)
            native_conditions = await self.store.check_conditions(bucket, key, conditions)
            await self.store.write_manifest(token, bucket, info)
            response: Any = await self.store.call(
                "CompleteMultipartUpload",
                lambda: self.store.client.complete_multipart_upload(
                    Bucket=location.container,
                    Key=location.name,
                    UploadId=native,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                    **native_conditions,  # type: ignore[arg-type]
                ),
                BucketName=bucket,
                Key=key,
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.store.quietly(
                    "AbortMultipartUpload",
                    lambda: self.store.client.abort_multipart_upload(
                        Bucket=location.container, Key=location.name, UploadId=native
                    ),
                )
                with contextlib.suppress(S3Error):  # best effort: the sweep removes it later
                    await self.store.delete_names([manifest.name])
            raise
        return backend_version(info, response)


def backend_version(info: ObjectInfo, response: Any) -> ObjectInfo:
    """``info`` with the backend's version id of the write that answered ``response``
    (:mod:`translators.s3.versions` turns it into the client's)."""
    version = response.get("VersionId")
    return info if version is None else replace(info, version_id=str(version))
