"""Server-side encryption at rest: a Backend wrapper that sees plaintext above and stores
ciphertext below, whatever the translator (filesystem, memory, S3, Azure, GCS alike: the
gateway encrypts; the storage only ever holds the format of :mod:`policy.sse_crypto`).

**Where it sits** (``policy.stack``): below ``ValidationBackend`` (archive checks and the
artifact re-hash see plaintext; the catalog and quotas above record the plaintext size,
ETag and checksums) and above ``StartingBackend`` and the per-call wrappers around the
translator (what they time and count is the stored form).

**What a write asks** (``WriteMetadata.encryption``, from the request headers) or, when it
asks nothing, the bucket's default (``default_encryption`` / ``default_kms_key_id`` of the
site policy, set by PutBucketEncryption) decides the mode: SSE-S3 (``AES256``), SSE-KMS
(``aws:kms``, a key id of the configured key ring) or SSE-C (the client's key). Without a
key ring (no master key given to the stack) every encrypted write is refused (501).

**Stored**: each object (each multipart upload) gets a random data key
(:mod:`policy.encryption_keys`), kept wrapped in the reserved user-metadata entry
:data:`~policy.encryption_meta.META_KEY` with its mode, KEK id, KMS key id or SSE-C key
MD5. That entry never reaches a client: this wrapper strips it from every object, upload and
listing it returns, and refuses a client's write that tries to set it. The translator stores
the ciphertext size, and the ETag and checksums of the plaintext. The ETag is the
plaintext's MD5 for SSE-S3 (as S3 sends it); for SSE-KMS and SSE-C, whose ETags S3 says
are not an MD5 of the object, a keyed digest of it (:func:`policy.sse_crypto.protected_etag`)
that does not reveal it.

**Reads** give the plaintext view of an object: its plaintext size (and part sizes), ETag,
checksums (a FULL_OBJECT multipart checksum is recombined with the plaintext part sizes) and
an :class:`~core.sse.EncryptionInfo`. Whole, ranged and part GETs decrypt as
:mod:`policy.encryption_reads` describes; an object replaced while it is read is read again
(a few times, then ``ServiceUnavailable``).

**SSE-C**: reads need the key (``GetOptions.customer_key``): none is ``InvalidRequest``
(400), a different one ``AccessDenied`` (403), a key for an object not stored with one
``InvalidRequest``. Parts of an SSE-C upload need it too, from ``RequestContext``'s
``customer_key``. HeadObject returns the view without checking a key: the HEAD handler
checks it against :attr:`EncryptionInfo.customer_key_md5`.

**Listings** of a bucket that has held an encrypted object report plaintext sizes, at the
cost of one HEAD per listed object (:mod:`policy.encryption_listing`, which also says how
long another replica's first encrypted write may go unseen).

**Multipart**: each part is its own stream (own salt, its part number in every chunk's
associated data), encrypted with the upload's data key; part sizes are mapped back to
plaintext. The upload's sealed entry is kept in its metadata and in a record of its own
(:mod:`policy.encryption_uploads`), read by each part. The translator's check that parts
but the last reach the minimum size sees the stored (slightly larger) sizes.

The metadata side (the sealed entry, the plaintext view, S3's SSE-C key checks, a site's
default) is :mod:`policy.encryption_meta`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.sse import AES256, SSE_C, EncryptionRequest
from core.streams import PayloadStream
from policy.encryption_keys import DataKeys
from policy.encryption_listing import EncryptedBuckets, plaintext_sizes, plaintext_version_sizes
from policy.encryption_meta import (
    META_KEY,
    DefaultLookup,
    Sealed,
    check_customer_key,
    no_default,
    part_view,
    plain_view,
    sealed_entry,
    upload_view,
)
from policy.encryption_reads import StoredRead, open_ranged, open_whole
from policy.encryption_uploads import UploadRecords
from policy.forwarding import ForwardingBackend
from policy.sse_crypto import EncryptingPayload, Keyring
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    GetResult,
    ListPage,
    ListQuery,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)
from translators.versioning import Version, VersionsPage, VersionsQuery

#: How often a GET reads an object again that was replaced while it was being read.
_READ_ATTEMPTS: Final = 3


class EncryptingBackend(
    ForwardingBackend,
    passes_through={
        "start",
        "close",
        "check_ready",
        "list_buckets",
        "create_bucket",
        "head_bucket",
        "delete_bucket",
        "delete_object",
        "get_bucket_versioning",
        "put_bucket_versioning",
        "delete_version",
    },
):
    """``inner`` storing objects encrypted as the module docstring describes.

    ``keyring``: the KEKs (None: encrypted writes are refused with 501, reads of encrypted
    objects fail); ``bucket_default``: a site's default encryption.
    """

    def __init__(
        self,
        inner: Backend,
        keyring: Keyring | None,
        bucket_default: DefaultLookup = no_default,
    ) -> None:
        super().__init__(inner)
        self.bucket_default = bucket_default
        self._keys = DataKeys(keyring)
        self._buckets = EncryptedBuckets(inner)
        self._uploads = UploadRecords(inner)

    @property
    def keyring(self) -> Keyring | None:
        """The KEKs sealing SSE-S3 and SSE-KMS data keys (None: no master key)."""
        return self._keys.keyring

    async def _request(self, bucket: str, metadata: WriteMetadata) -> EncryptionRequest | None:
        if META_KEY in metadata.user_metadata:
            raise S3Error(
                "InvalidArgument",
                f"The metadata name x-amz-meta-{META_KEY} is reserved by the gateway.",
                ArgumentName=f"x-amz-meta-{META_KEY}",
            )
        return metadata.encryption or await self.bucket_default(bucket)

    # Objects

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Store ``body`` encrypted as asked (or as the bucket default says), else as is."""
        request = await self._request(bucket, metadata)
        if request is None:
            plain = replace(metadata, encryption=None)
            return await self.inner.put_object(ctx, bucket, key, body, plain, conditions)
        data_key, entry, _ = self._keys.seal(request)
        await self._buckets.mark(ctx, bucket)
        stored = replace(
            metadata, user_metadata={**metadata.user_metadata, META_KEY: entry}, encryption=None
        )
        payload = EncryptingPayload(body, data_key, 0, hide_md5=request.mode != AES256)
        info = await self.inner.put_object(ctx, bucket, key, payload, stored, conditions)
        return plain_view(info)

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        return plain_view(await self.inner.head_object(ctx, bucket, key))

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the plaintext of the current version (see the module docstring)."""
        return await self._open(
            lambda read_options: self.inner.get_object(ctx, bucket, key, read_options), options
        )

    async def _open(self, read: StoredRead, options: GetOptions) -> GetResult:
        """The plaintext ``options`` asks of the object ``read`` opens (decrypted when it is
        stored encrypted; read again when it is replaced between two reads)."""
        inner_options = replace(options, customer_key=None)
        for _ in range(_READ_ATTEMPTS):
            result = await read(inner_options)
            sealed = sealed_entry(result.info.user_metadata)
            if sealed is None:
                if options.customer_key is not None:
                    await result.body.aclose()
                    check_customer_key(None, options.customer_key)
                return result
            try:
                view = plain_view(result.info)
                data_key = self._keys.open(sealed, options.customer_key)
            except S3Error:
                await result.body.aclose()
                raise
            if options.range is None and options.part_number is None:
                return await open_whole(result, view, data_key)
            await result.body.aclose()
            opened = await open_ranged(read, options, result.info, view, data_key)
            if opened is not None:
                return opened
        raise S3Error("ServiceUnavailable", "The object kept changing while it was read.")

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """The inner page, with plaintext sizes in a bucket that holds encrypted objects."""
        page = await self.inner.list_objects(ctx, bucket, query)
        if not page.objects or not await self._buckets.is_marked(ctx, bucket):
            return page
        return await plaintext_sizes(self.inner, ctx, bucket, page)

    # Multipart (the upload records: policy.encryption_uploads)

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        """Start an upload; an encrypted one gets its data key now (sealed in the upload's
        metadata and in its record), and each part opens it again."""
        request = await self._request(bucket, metadata)
        stored = replace(metadata, encryption=None)
        if request is None:
            return await self.inner.create_multipart_upload(
                ctx, bucket, key, stored, checksum_algorithm, checksum_type
            )
        _, entry, _ = self._keys.seal(request)
        await self._buckets.mark(ctx, bucket)
        stored = replace(stored, user_metadata={**metadata.user_metadata, META_KEY: entry})
        upload = await self.inner.create_multipart_upload(
            ctx, bucket, key, stored, checksum_algorithm, checksum_type
        )
        await self._uploads.keep(ctx, bucket, upload.upload_id, entry)
        return upload_view(upload, Sealed(entry))

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Store the part encrypted with its upload's data key, if the upload has one."""
        await self.inner.list_parts(ctx, bucket, key, upload_id, 0, 0)  # NoSuchUpload
        sealed = await self._uploads.sealed(ctx, bucket, upload_id)
        if sealed is None:
            check_customer_key(None, ctx.customer_key)
            return await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, body)
        if sealed.mode == SSE_C and ctx.customer_key is None:
            raise S3Error(
                "InvalidRequest",
                "The multipart upload initiate requested encryption. Subsequent part requests "
                "must include the appropriate encryption parameters.",
            )
        data_key = self._keys.open(sealed, ctx.customer_key if sealed.mode == SSE_C else None)
        payload = EncryptingPayload(body, data_key, part_number, hide_md5=sealed.mode != AES256)
        part = await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, payload)
        return part_view(part)

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        upload, page = await self.inner.list_parts(
            ctx, bucket, key, upload_id, part_number_marker, max_parts
        )
        sealed = await self._uploads.sealed(ctx, bucket, upload_id)
        if sealed is None:
            return upload, page
        parts = [part_view(p) for p in page.parts]
        return upload_view(upload, sealed), replace(page, parts=parts)

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        """The inner page; uploads show their encryption where the translator returns their
        metadata (S3's ListMultipartUploads carries none either)."""
        page = await self.inner.list_multipart_uploads(ctx, bucket, query)
        uploads = [upload_view(u, sealed_entry(u.metadata.user_metadata)) for u in page.uploads]
        return replace(page, uploads=uploads)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        sealed = await self._uploads.sealed(ctx, bucket, upload_id)
        if sealed is not None and sealed.mode == SSE_C and ctx.customer_key is not None:
            check_customer_key(sealed.info(), ctx.customer_key)
        info = await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
        if sealed is not None:
            await self._uploads.forget(ctx, bucket, upload_id)
        return plain_view(info, sealed)

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        await self._uploads.forget(ctx, bucket, upload_id)

    # Versions: read as the current object is; deletes and the bucket's state pass.

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        found = await self.inner.head_version(ctx, bucket, key, version_id)
        return found if found.info is None else replace(found, info=plain_view(found.info))

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        """Open the plaintext of version ``version_id`` (as :meth:`get_object`)."""
        return await self._open(
            lambda read_options: self.inner.get_version(ctx, bucket, key, version_id, read_options),
            options,
        )

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        """The inner page, with plaintext sizes in a bucket that holds encrypted objects."""
        page = await self.inner.list_versions(ctx, bucket, query)
        if not page.versions or not await self._buckets.is_marked(ctx, bucket):
            return page
        return await plaintext_version_sizes(self.inner, ctx, bucket, page)
