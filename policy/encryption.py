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

**Stored**: each object (each multipart upload) gets a random data key, kept wrapped in the
reserved user-metadata entry :data:`META_KEY` with its mode, KEK id, KMS key id or SSE-C key
MD5. That entry never reaches a client: this wrapper strips it from every object, upload and
listing it returns, and refuses a client's write that tries to set it. The translator stores
the ciphertext size, and the ETag and checksums of the plaintext. The ETag is the
plaintext's MD5 for SSE-S3 (as S3 sends it); for SSE-KMS and SSE-C, whose ETags S3 says
are not an MD5 of the object, a keyed digest of it (:func:`policy.sse_crypto.protected_etag`)
that does not reveal it.

**Reads** give the plaintext view of an object: its plaintext size (and part sizes), ETag,
checksums (a FULL_OBJECT multipart checksum is recombined with the plaintext part sizes) and
an :class:`~core.sse.EncryptionInfo`. A whole GET decrypts the stored stream as it flows; a
ranged or part GET reads only the chunks covering the range (plus the 20-byte header of the
first stream touched when the range starts far into it), one stored range read of the same
version. The first chunk is decrypted before the result is returned, so a wrong key or a
tampered start is an S3 error, not a broken reply; tampering found later cuts the reply
(never wrong bytes).

**SSE-C**: reads need the key (``GetOptions.customer_key``): none is ``InvalidRequest``
(400), a different one ``AccessDenied`` (403), a key for an object not stored with one
``InvalidRequest``. Parts of an SSE-C upload need it too, from ``RequestContext``'s
``customer_key``. HeadObject returns the view without checking a key: the HEAD handler
checks it against :attr:`EncryptionInfo.customer_key_md5`.

**Listings** of a bucket that has held an encrypted object (a marker object in the reserved
area says so) head each listed object to report its plaintext size: a listing of such a
bucket costs one HEAD per object, done concurrently. Whether a bucket is marked is
remembered for good once it is, and its absence for :data:`UNMARKED_RECHECK_S`: a listing
on another replica within that time of a bucket's first encrypted write may show that
object's stored (slightly larger) size.

**Multipart**: each part is its own stream (own salt, its part number in every chunk's
associated data), encrypted with the upload's data key; part sizes are mapped back to
plaintext. Not every translator returns an upload's create-time metadata from ListParts
(the S3 one cannot), so the upload's sealed entry is also kept in a small record in the
reserved area (:data:`~policy.encryption_meta.UPLOAD_RECORDS` + upload id), read by each
part, removed on completion and abort. The translator's check that parts but the last
reach the minimum size sees the stored (slightly larger) sizes.

The metadata side (the sealed entry, the plaintext view, S3's SSE-C key checks, a site's
default) is :mod:`policy.encryption_meta`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Final

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.digest import HashingPayload
from core.errors import S3Error
from core.ranges import ByteRange, RangeSpec
from core.sse import (
    AES256,
    SSE_C,
    CustomerKey,
    EncryptionInfo,
    EncryptionRequest,
)
from core.streams import BytesBody, EmptyBody, PayloadStream
from policy.encryption_meta import (
    MARKER_KEY,
    META_KEY,
    UPLOAD_RECORDS,
    DefaultLookup,
    EncryptionDefaults,
    Sealed,
    check_customer_key,
    encryption_of,
    no_default,
    part_view,
    plain_view,
    sealed_entry,
    stored_streams,
    upload_view,
)
from policy.forwarding import ForwardingBackend
from policy.model import SITE_STATE_PREFIX
from policy.sse_crypto import (
    CHUNK,
    CUSTOMER_KEK_ID,
    HEADER,
    DecryptingBody,
    EncryptingPayload,
    HeldFirstBody,
    Keyring,
    Segment,
    TamperedError,
    new_data_key,
    plan_read,
    unwrap_key,
    wrap_key,
)
from translators import multipart
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

__all__ = [
    "MARKER_KEY",
    "META_KEY",
    "EncryptingBackend",
    "EncryptionDefaults",
    "check_customer_key",
    "encryption_of",
    "plain_view",
]
_RECORD_CACHE: Final = 4096
LIST_CONCURRENCY: Final = 32
#: How long a bucket found without the marker is believed unmarked (see Listings).
UNMARKED_RECHECK_S: Final = 2.0
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
        self.keyring = keyring
        self.bucket_default = bucket_default
        self._marked: set[str] = set()
        self._unmarked: dict[str, float] = {}  # bucket -> when it was found unmarked
        self._uploads: dict[tuple[str, str], Sealed | None] = {}

    # Keys

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise S3Error(
                "NotImplemented",
                "Server-side encryption is not available: the gateway has no master key.",
            )
        return self.keyring

    def _seal(self, request: EncryptionRequest) -> tuple[bytes, str, EncryptionInfo]:
        """A new data key, its :data:`META_KEY` entry and the encryption reported."""
        data_key = new_data_key()
        if request.mode == SSE_C:
            customer = request.customer_key
            if customer is None:
                raise S3Error(
                    "InvalidRequest",
                    "The object is stored with a customer-provided key: the request must "
                    "include the appropriate encryption parameters.",
                )
            wrapped = wrap_key(customer.key, CUSTOMER_KEK_ID, data_key)
            entry = Sealed.dump(SSE_C, CUSTOMER_KEK_ID, wrapped, None, customer.md5)
            return data_key, entry, EncryptionInfo(SSE_C, customer_key_md5=customer.md5)
        kek, kms_key_id = self._keyring().current(request.mode, request.kms_key_id)
        wrapped = wrap_key(kek.key, kek.id, data_key)
        entry = Sealed.dump(request.mode, kek.id, wrapped, kms_key_id, None)
        return data_key, entry, EncryptionInfo(request.mode, kms_key_id)

    def _open(self, sealed: Sealed, key: CustomerKey | None) -> bytes:
        """The data key of an object sealed as ``sealed``, read with SSE-C key ``key``."""
        check_customer_key(sealed.info(), key)
        if sealed.mode == SSE_C:
            assert key is not None
            data_key = unwrap_key(key.key, CUSTOMER_KEK_ID, sealed.wrapped)
            if data_key is None:
                raise S3Error("AccessDenied", "The provided customer key does not open the object.")
            return data_key
        kek = self.keyring.find(sealed.kek_id) if self.keyring is not None else None
        if kek is None:
            raise S3Error(
                "InternalError",
                f"The object is sealed under key {sealed.kek_id}, which this gateway's key "
                "ring does not hold.",
            )
        data_key = unwrap_key(kek.key, kek.id, sealed.wrapped)
        if data_key is None:
            raise TamperedError("its data key does not open")
        return data_key

    async def _request(self, bucket: str, metadata: WriteMetadata) -> EncryptionRequest | None:
        if META_KEY in metadata.user_metadata:
            raise S3Error(
                "InvalidArgument",
                f"The metadata name x-amz-meta-{META_KEY} is reserved by the gateway.",
                ArgumentName=f"x-amz-meta-{META_KEY}",
            )
        return metadata.encryption or await self.bucket_default(bucket)

    async def _mark(self, ctx: RequestContext, bucket: str) -> None:
        """Record that ``bucket`` holds encrypted objects (once per process and bucket)."""
        if bucket in self._marked:
            return
        try:
            await self.inner.head_object(ctx, bucket, MARKER_KEY)
        except S3Error as error:
            if error.code != "NoSuchKey":
                raise
            await self.inner.put_object(
                ctx,
                bucket,
                MARKER_KEY,
                HashingPayload(EmptyBody(), 0),
                WriteMetadata(),
                WriteConditions(),
            )
        self._marked.add(bucket)
        self._unmarked.pop(bucket, None)

    async def _is_marked(self, ctx: RequestContext, bucket: str) -> bool:
        if bucket in self._marked:
            return True
        checked = self._unmarked.get(bucket)
        now = time.monotonic()
        if checked is not None and now - checked < UNMARKED_RECHECK_S:
            return False
        try:
            await self.inner.head_object(ctx, bucket, MARKER_KEY)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                if len(self._unmarked) >= _RECORD_CACHE:
                    self._unmarked.clear()
                self._unmarked[bucket] = now
                return False
            raise
        self._marked.add(bucket)
        return True

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
        data_key, entry, _ = self._seal(request)
        await self._mark(ctx, bucket)
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
        inner_options = replace(options, customer_key=None)
        for _ in range(_READ_ATTEMPTS):
            result = await self.inner.get_object(ctx, bucket, key, inner_options)
            sealed = sealed_entry(result.info.user_metadata)
            if sealed is None:
                if options.customer_key is not None:
                    await result.body.aclose()
                    check_customer_key(None, options.customer_key)
                return result
            try:
                view = plain_view(result.info)
                data_key = self._open(sealed, options.customer_key)
            except S3Error:
                await result.body.aclose()
                raise
            if options.range is None and options.part_number is None:
                return await _decrypted(result, view, None, data_key, _whole(result.info))
            await result.body.aclose()
            opened = await self._ranged(ctx, bucket, key, options, result.info, view, data_key)
            if opened is not None:
                return opened
        raise S3Error("ServiceUnavailable", "The object kept changing while it was read.")

    async def _ranged(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        options: GetOptions,
        stored: ObjectInfo,
        view: ObjectInfo,
        data_key: bytes,
    ) -> GetResult | None:
        """A range or part of ``view`` (None: the object changed since ``stored``)."""
        span = multipart.read_span(view, GetOptions(options.range, options.part_number))
        whole = span is None
        if span is None:
            span = ByteRange(0, view.size - 1)
        if span.length <= 0:  # an empty object, or an empty part of a larger one
            return GetResult(view, None if whole else span, EmptyBody())
        plan = plan_read(stored_streams(stored), span.start, span.end)
        segments = plan.segments
        if plan.header_at is not None:
            header = await self._read_bytes(ctx, bucket, key, plan.header_at, HEADER, stored)
            if header is None:
                return None
            segments = [replace(segments[0], header=header), *segments[1:]]
        result = await self.inner.get_object(
            ctx, bucket, key, GetOptions(RangeSpec(plan.stored_start, plan.stored_end))
        )
        if result.info.etag != stored.etag or result.info.size != stored.size:
            await result.body.aclose()
            return None
        return await _decrypted(result, view, None if whole else span, data_key, segments)

    async def _read_bytes(
        self, ctx: RequestContext, bucket: str, key: str, at: int, length: int, stored: ObjectInfo
    ) -> bytes | None:
        result = await self.inner.get_object(
            ctx, bucket, key, GetOptions(RangeSpec(at, at + length - 1))
        )
        if result.info.etag != stored.etag or result.info.size != stored.size:
            await result.body.aclose()
            return None
        data = b"".join([piece async for piece in result.body])
        return data if len(data) == length else None

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        """The inner page, with plaintext sizes in a bucket that holds encrypted objects."""
        page = await self.inner.list_objects(ctx, bucket, query)
        if not page.objects or not await self._is_marked(ctx, bucket):
            return page
        limit = asyncio.Semaphore(LIST_CONCURRENCY)

        async def fix(listed: ObjectInfo) -> ObjectInfo:
            if listed.key.startswith(SITE_STATE_PREFIX):
                return listed
            async with limit:
                try:
                    info = await self.inner.head_object(ctx, bucket, listed.key)
                except S3Error as error:
                    if error.code == "NoSuchKey":
                        return listed
                    raise
            # The same stored object (a translator's listing may show another ETag form):
            if info.size != listed.size or sealed_entry(info.user_metadata) is None:
                return listed
            view = plain_view(info)
            return replace(listed, size=view.size, checksums=view.checksums)

        objects = await asyncio.gather(*(fix(o) for o in page.objects))
        return replace(page, objects=list(objects))

    # Multipart
    #
    # Not every translator returns an upload's create-time metadata from ListParts (the S3
    # one cannot), so an encrypted upload's sealed entry is also kept in a small record in
    # the reserved area (UPLOAD_RECORDS + upload id), read by each part (and cached: an
    # upload's encryption never changes), removed on completion and abort.

    def _record_key(self, upload_id: str) -> str:
        return UPLOAD_RECORDS + upload_id

    async def _uploadsealed_entry(
        self, ctx: RequestContext, bucket: str, upload_id: str
    ) -> Sealed | None:
        """The sealed entry of upload ``upload_id`` (None: it is not encrypted)."""
        cache_key = (bucket, upload_id)
        if cache_key in self._uploads:
            return self._uploads[cache_key]
        try:
            result = await self.inner.get_object(
                ctx, bucket, self._record_key(upload_id), GetOptions()
            )
        except S3Error as error:
            if error.code not in ("NoSuchKey", "NoSuchBucket"):
                raise
            sealed = None
        else:
            raw = b"".join([piece async for piece in result.body])
            sealed = Sealed(raw.decode("utf-8", "replace"))
        if len(self._uploads) >= _RECORD_CACHE:
            self._uploads.pop(next(iter(self._uploads)))
        self._uploads[cache_key] = sealed
        return sealed

    async def _forget_upload(self, ctx: RequestContext, bucket: str, upload_id: str) -> None:
        self._uploads.pop((bucket, upload_id), None)
        await self.inner.delete_object(ctx, bucket, self._record_key(upload_id))

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
        _, entry, _ = self._seal(request)
        await self._mark(ctx, bucket)
        stored = replace(stored, user_metadata={**metadata.user_metadata, META_KEY: entry})
        upload = await self.inner.create_multipart_upload(
            ctx, bucket, key, stored, checksum_algorithm, checksum_type
        )
        record = entry.encode()
        await self.inner.put_object(
            ctx,
            bucket,
            self._record_key(upload.upload_id),
            HashingPayload(BytesBody(record), len(record)),
            WriteMetadata(),
            WriteConditions(),
        )
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
        sealed = await self._uploadsealed_entry(ctx, bucket, upload_id)
        if sealed is None:
            check_customer_key(None, ctx.customer_key)
            return await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, body)
        if sealed.mode == SSE_C and ctx.customer_key is None:
            raise S3Error(
                "InvalidRequest",
                "The multipart upload initiate requested encryption. Subsequent part requests "
                "must include the appropriate encryption parameters.",
            )
        data_key = self._open(sealed, ctx.customer_key if sealed.mode == SSE_C else None)
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
        sealed = await self._uploadsealed_entry(ctx, bucket, upload_id)
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
        sealed = await self._uploadsealed_entry(ctx, bucket, upload_id)
        if sealed is not None and sealed.mode == SSE_C and ctx.customer_key is not None:
            check_customer_key(sealed.info(), ctx.customer_key)
        info = await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )
        if sealed is not None:
            await self._forget_upload(ctx, bucket, upload_id)
        return plain_view(info, sealed)

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
        await self._forget_upload(ctx, bucket, upload_id)


def _whole(info: ObjectInfo) -> list[Segment]:
    """Segments reading every stored stream of ``info`` from its header on."""
    result = []
    for stream in stored_streams(info):
        if stream.size == 0:
            result.append(Segment(stream.part_number, 0, 0, 0, 0, 0))
        else:
            last = stream.size - 1
            result.append(
                Segment(stream.part_number, stream.size, 0, last // CHUNK, 0, stream.size)
            )
    return result


async def _decrypted(
    result: GetResult,
    view: ObjectInfo,
    span: ByteRange | None,
    data_key: bytes,
    segments: list[Segment],
) -> GetResult:
    body = DecryptingBody(result.body, data_key, segments)
    first = await body.first_chunk()
    return GetResult(view, span, HeldFirstBody(body, first))
