"""The one ``Backend`` interface every storage translator implements, and its value types.

Contracts shared by all translators:

* Keys are opaque strings: ``a``, ``a/b``, ``a//b``, ``dir/``, ``../x`` are distinct keys.
  A translator never normalises them and never lets one address anything outside its root.
* Writes are atomic: an object becomes visible only after its whole body was received and
  verified (the :class:`PayloadStream` raised nothing) and is durable; a failed write leaves
  the previous version untouched and nothing partial visible.
* Reads stream: bodies are async iterators of bounded chunks; nothing buffers a whole object.
* Errors are :class:`core.errors.S3Error`; SDK exceptions never escape a translator.
* Every method takes a :class:`RequestContext` first, so wrappers see who asks.
* An operation a translator cannot do raises ``NotImplemented`` (501) naming it.
* An object stored encrypted by the gateway (``policy.encryption``; its user metadata holds
  :data:`core.sse.STORED_ENCRYPTION_KEY`) has ciphertext as its bytes and size, but the
  plaintext's ETag and checksums: a translator stores them as given and never checks the
  bytes against them (:func:`etag_is_md5_of_bytes`); AES-GCM authenticates those bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.object_lock import ObjectLock
from core.ranges import ByteRange, RangeSpec
from core.sse import STORED_ENCRYPTION_KEY, CustomerKey, EncryptionInfo, EncryptionRequest
from core.streams import ObjectBody, PayloadDigest, PayloadStream

if TYPE_CHECKING:
    from translators.versioning import (
        DeleteOutcome,
        Version,
        VersioningStatus,
        VersionsPage,
        VersionsQuery,
    )

#: Headers stored with an object and returned verbatim on GET/HEAD (lower-case names).
STORED_HEADERS: tuple[str, ...] = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
)


@dataclass(frozen=True)
class PartInfo:
    """One part of a multipart upload or of a completed multipart object."""

    part_number: int
    size: int
    etag: str  # hex MD5, unquoted
    last_modified: datetime | None = None
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64


@dataclass(frozen=True)
class ObjectInfo:
    """What a translator knows of a stored object.

    ``etag`` is unquoted (hex MD5, or ``<hex>-N`` for a multipart object). ``headers`` holds
    the :data:`STORED_HEADERS` the client set; ``user_metadata`` the ``x-amz-meta-*`` pairs
    without their prefix. ``checksums`` maps an algorithm to its base64 value, of type
    ``checksum_type``. ``parts`` is empty unless the object came from a multipart upload.
    ``encryption`` is set (by ``policy.encryption``, never by a translator) on an object
    stored encrypted; its ``size``, ``etag`` and ``checksums`` are then the plaintext's.
    ``version_id`` is set by a translator with the ``translators.versioning.Versioning``
    capability on a bucket whose versioning was ever enabled (``null`` for a version written
    while it was suspended), else None.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime
    headers: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: ChecksumType | None = None
    parts: tuple[PartInfo, ...] = ()
    encryption: EncryptionInfo | None = None
    version_id: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "binary/octet-stream")


_HEX_MD5 = frozenset("0123456789abcdef")


def etag_is_md5_of_bytes(info: ObjectInfo) -> bool:
    """Whether reading ``info``'s bytes can be checked against its ETag: a single-part
    object (a 32-hex-digit MD5 ETag) not stored encrypted by the gateway."""
    return (
        len(info.etag) == 32
        and set(info.etag) <= _HEX_MD5
        and STORED_ENCRYPTION_KEY not in info.user_metadata
    )


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime


@dataclass(frozen=True)
class WriteMetadata:
    """Metadata a client sets on a new object (PutObject, CopyObject REPLACE, multipart).

    ``tags`` is the new object's tag set (``x-amz-tagging``, or a copy's source tags). Tags
    are catalog state: the catalog wrapper (``policy.catalog_backend``) keeps them with the
    object's row, replacing the previous object's; translators neither store nor return them.
    ``encryption`` is what the client asked for (``x-amz-server-side-encryption*``); the
    encryption wrapper (``policy.encryption``) acts on it and passes it on as None, so a
    translator never sees one. ``object_lock`` likewise (``x-amz-object-lock-*``), for the
    object lock wrapper (``policy.object_lock``).
    """

    headers: dict[str, str] = field(default_factory=dict)
    user_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    encryption: EncryptionRequest | None = None
    object_lock: ObjectLock | None = None


def written_object(key: str, digest: PayloadDigest, metadata: WriteMetadata) -> ObjectInfo:
    """The object a single write of a verified payload becomes, modified now: the payload's
    MD5 as ETag and its checksums as full-object checksums."""
    return ObjectInfo(
        key=key,
        size=digest.size,
        etag=digest.md5_hex,
        last_modified=datetime.now(UTC),
        headers=dict(metadata.headers),
        user_metadata=dict(metadata.user_metadata),
        checksums=dict(digest.checksums),
        checksum_type="FULL_OBJECT" if digest.checksums else None,
    )


@dataclass(frozen=True)
class WriteConditions:
    """Preconditions checked atomically with the commit of a write.

    ``if_none_match`` is ``"*"`` (fail when the key exists) or None; ``if_match`` an
    unquoted ETag the current object must have. Failure raises ``PreconditionFailed``.
    """

    if_match: str | None = None
    if_none_match: str | None = None

    def check(self, current: ObjectInfo | None) -> None:
        """Raise PreconditionFailed (or NoSuchKey for If-Match on a missing key) if unmet."""
        if self.if_none_match is not None and current is not None:
            raise S3Error("PreconditionFailed", Condition="If-None-Match")
        if self.if_match is not None:
            if current is None:
                raise S3Error("NoSuchKey", Key="")
            if self.if_match != "*" and self.if_match != current.etag:
                raise S3Error("PreconditionFailed", Condition="If-Match")


@dataclass(frozen=True)
class GetOptions:
    """A read: a range or a part number (not both), never both resolved by the caller.

    ``customer_key``: the SSE-C key the client sent to read an object stored with one
    (used by ``policy.encryption``; translators ignore it).
    """

    range: RangeSpec | None = None
    part_number: int | None = None
    customer_key: CustomerKey | None = None


@dataclass(frozen=True)
class GetResult:
    """An open object: its info, the resolved range (None = whole object) and its body."""

    info: ObjectInfo
    range: ByteRange | None
    body: ObjectBody


@dataclass(frozen=True)
class ListQuery:
    """ListObjects: keys under ``prefix`` sorted by UTF-8 bytes, strictly after ``start_after``.

    With a ``delimiter``, keys whose remainder after ``prefix`` holds the delimiter roll up
    into one common prefix (up to and including the first delimiter). A common prefix counts
    as one entry toward ``max_keys``. When ``start_after`` is itself such a common prefix,
    every key under it is skipped, so a page's ``next_start_after`` resumes cleanly.
    """

    prefix: str = ""
    delimiter: str = ""
    start_after: str = ""
    max_keys: int = 1000


@dataclass(frozen=True)
class ListPage:
    """A page of a listing; ``next_start_after`` is None when the listing is complete.

    Listed objects carry key, size, ETag, last-modified time and checksums; like S3's own
    listings they need not carry headers, user metadata or parts (HeadObject does).
    """

    objects: list[ObjectInfo]
    common_prefixes: list[str]
    next_start_after: str | None


@dataclass(frozen=True)
class UploadInfo:
    """An in-progress multipart upload."""

    key: str
    upload_id: str
    initiated: datetime
    metadata: WriteMetadata
    checksum_algorithm: ChecksumAlgorithm | None = None
    checksum_type: ChecksumType | None = None
    encryption: EncryptionInfo | None = None  # set by policy.encryption, as on ObjectInfo


@dataclass(frozen=True)
class UploadsQuery:
    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    upload_id_marker: str = ""
    max_uploads: int = 1000


@dataclass(frozen=True)
class UploadsPage:
    uploads: list[UploadInfo]
    common_prefixes: list[str]
    next_key_marker: str | None  # None when complete
    next_upload_id_marker: str | None


@dataclass(frozen=True)
class PartsPage:
    parts: list[PartInfo]
    next_part_number_marker: int | None  # None when complete


@dataclass(frozen=True)
class CompletedPart:
    """A part as named in CompleteMultipartUpload: number, unquoted ETag, checksums given."""

    part_number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """The storage interface. See the module docstring for the contracts all methods share."""

    name: str

    async def start(self) -> None:
        """Open connections, create roots, clean leftovers of interrupted writes."""
        ...

    async def close(self) -> None: ...

    async def check_ready(self) -> None:
        """Raise ``ServiceUnavailable`` when the storage cannot be reached."""
        ...

    # Buckets
    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]: ...

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """Create ``bucket``; ``BucketAlreadyOwnedByYou`` if it exists."""
        ...

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        """``NoSuchBucket`` if absent."""
        ...

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        """``BucketNotEmpty`` if it holds objects; pending multipart uploads are aborted."""
        ...

    # Objects
    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        """``NoSuchBucket`` / ``NoSuchKey`` if absent."""
        ...

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        """Open the current version; the body reads the resolved range of that version even if
        the key is overwritten meanwhile. ``InvalidRange`` / ``InvalidPart`` as S3 defines."""
        ...

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Store ``body`` atomically under ``key``; ``conditions`` are checked at commit."""
        ...

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        """Remove ``key``; succeeds if it is absent (S3 semantics). ``NoSuchBucket``."""
        ...

    async def list_objects(
        self, ctx: RequestContext, bucket: str, query: ListQuery
    ) -> ListPage: ...

    # Multipart
    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo: ...

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        """Store a part (replacing an earlier one of that number). ``NoSuchUpload``."""
        ...

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]: ...

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage: ...

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        """Assemble the named parts atomically (see ``translators.multipart`` for the rules).
        Once completed, the upload is gone: a repeat is ``NoSuchUpload`` here, and the policy
        stack answers it from its record of the completion (policy.completed_uploads)."""
        ...

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None: ...

    # Versioning: the rules are translators.versioning's. A translator that keeps no versions
    # takes translators.unversioned's methods: never-versioned buckets, whose objects are
    # their ``null`` versions, and ``NotImplemented`` for enabling versioning.
    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        """The bucket's state (None: never enabled); ``NoSuchBucket`` if absent."""
        ...

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        """Enable or suspend; entries already written keep their ids."""
        ...

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        """The entry ``version_id`` of ``key`` (a delete marker too); ``NoSuchVersion``."""
        ...

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        """Open object version ``version_id``; ``NoSuchVersion``, or ``MethodNotAllowed``
        when it is a delete marker. The body reads that version whatever happens next."""
        ...

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        """Without an id: ``delete_object`` per the bucket's versioning (a delete marker on
        an Enabled bucket); with one, that entry for good."""
        ...

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        """Every entry of the keys under the query's prefix, keys in order, newest first."""
        ...


@dataclass(frozen=True)
class VolumeSpace:
    """The free and total bytes of the volume a translator stores on."""

    free: int
    total: int


@runtime_checkable
class LocalVolume(Protocol):
    """Optional capability: a translator whose data lives on a local volume it can measure
    (the filesystem translator). Cloud translators have no such volume and lack it; the
    free-space floor (``policy.free_space``) applies only to translators that have it."""

    def volume_space(self) -> VolumeSpace:
        """Free space now; a storage error (``ServiceUnavailable``) if it cannot be measured.
        Cheap (one ``statvfs``): called before every write."""
        ...


@runtime_checkable
class Sweeper(Protocol):
    """Optional capability: a translator that keeps leftovers of its own (temporary objects
    or files of interrupted writes, blobs or parts nothing refers to) and can remove them
    while serving. Only leftovers last written before ``older_than`` are touched, so writes
    in flight are safe when ``older_than`` is well in the past."""

    async def sweep(self, older_than: datetime, limit: int) -> int:
        """Remove at most ``limit`` leftovers last written before ``older_than``; how many
        were removed. Live objects, parts of live uploads and their data are never touched."""
        ...
