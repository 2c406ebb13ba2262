"""Backend-independent multipart rules, shared by every translator.

``plan_completion`` validates a CompleteMultipartUpload request against the stored parts and
computes what the new object will be (parts, ETag, checksum); ``part_range`` resolves GetObject's
``partNumber`` to the bytes of that part.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.digest import multipart_etag
from core.errors import S3Error
from core.ranges import ByteRange
from core.streams import PayloadDigest
from translators.base import (
    CompletedPart,
    GetOptions,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    WriteMetadata,
)

#: S3's minimum size of every part but the last.
MIN_PART_SIZE: Final = 5 * 1024 * 1024
#: S3's largest part number.
MAX_PART_NUMBER: Final = 10_000


@dataclass(frozen=True)
class CompletionPlan:
    """What completing an upload produces: the parts in order, the ETag and the checksum."""

    parts: tuple[PartInfo, ...]
    etag: str  # unquoted ``<hex>-N``
    size: int
    checksums: dict[str, str]
    checksum_type: ChecksumType | None


def new_upload(
    key: str,
    upload_id: str,
    metadata: WriteMetadata,
    checksum_algorithm: ChecksumAlgorithm | None,
    checksum_type: ChecksumType | None,
) -> UploadInfo:
    """The upload CreateMultipartUpload starts, initiated now, with a copy of ``metadata``;
    ``checksum_type`` is already resolved (:func:`resolve_checksum_type`)."""
    return UploadInfo(
        key=key,
        upload_id=upload_id,
        initiated=datetime.now(UTC),
        metadata=WriteMetadata(dict(metadata.headers), dict(metadata.user_metadata)),
        checksum_algorithm=checksum_algorithm,
        checksum_type=checksum_type,
    )


def received_part(
    part_number: int, digest: PayloadDigest, computed: Mapping[str, str] | None = None
) -> PartInfo:
    """The part a verified payload becomes, modified now: the payload's MD5 as ETag, its
    checksums, and those the translator ``computed`` itself (for an upload's algorithm the
    client sent no checksum of) where the payload has none."""
    part_checksums = dict(digest.checksums)
    for algorithm, value in (computed or {}).items():
        part_checksums.setdefault(algorithm, value)
    return PartInfo(part_number, digest.size, digest.md5_hex, datetime.now(UTC), part_checksums)


def parts_page(parts: Sequence[PartInfo], max_parts: int) -> PartsPage:
    """A ListParts page of ``max_parts`` from ``parts`` (those above the marker, in order;
    one more than ``max_parts`` is enough to tell whether the page is truncated)."""
    page = list(parts[: max(max_parts, 0)])
    more = max_parts > 0 and len(parts) > max_parts
    return PartsPage(page, page[-1].part_number if more else None)


def completed_object(key: str, upload: UploadInfo, plan: CompletionPlan) -> ObjectInfo:
    """The object a completed upload becomes: the plan's size, ETag, checksums and parts
    (without their upload times), the upload's metadata, modified now."""
    return ObjectInfo(
        key=key,
        size=plan.size,
        etag=plan.etag,
        last_modified=datetime.now(UTC),
        headers=dict(upload.metadata.headers),
        user_metadata=dict(upload.metadata.user_metadata),
        checksums=plan.checksums,
        checksum_type=plan.checksum_type,
        parts=tuple(PartInfo(p.part_number, p.size, p.etag, None, p.checksums) for p in plan.parts),
    )


def unquote_etag(etag: str) -> str:
    """An ETag without surrounding double quotes (clients send either form)."""
    stripped = etag.strip()
    if len(stripped) >= 2 and stripped[0] == '"' and stripped[-1] == '"':
        return stripped[1:-1]
    return stripped


def plan_completion(
    upload: UploadInfo,
    stored: Mapping[int, PartInfo],
    requested: Sequence[CompletedPart],
    *,
    min_part_size: int = MIN_PART_SIZE,
) -> CompletionPlan:
    """Validate ``requested`` against ``stored`` parts and plan the completed object.

    Raises, in this order of checks: ``MalformedXML`` for an empty list; ``InvalidPartOrder``
    unless part numbers strictly ascend; ``InvalidPart`` when a part is missing, its ETag
    differs (quotes ignored) or a checksum the client gave differs from the stored one;
    ``EntityTooSmall`` when a part other than the last is below ``min_part_size``.
    """
    if not requested:
        raise S3Error("MalformedXML")
    previous = 0
    for item in requested:
        if item.part_number <= previous:
            raise S3Error("InvalidPartOrder", PartNumber=str(item.part_number))
        previous = item.part_number

    chosen: list[PartInfo] = []
    for item in requested:
        part = stored.get(item.part_number)
        if part is None or unquote_etag(item.etag) != part.etag:
            raise S3Error("InvalidPart", PartNumber=str(item.part_number), ETag=item.etag)
        for algorithm, value in item.checksums.items():
            if part.checksums.get(algorithm) != value:
                raise S3Error(
                    "InvalidPart",
                    f"The {algorithm.lower()} checksum given for part {item.part_number} "
                    "does not match the checksum of the uploaded part.",
                    PartNumber=str(item.part_number),
                    ETag=item.etag,
                )
        chosen.append(part)

    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise S3Error(
                "EntityTooSmall",
                PartNumber=str(part.part_number),
                ETag=part.etag,
                ProposedSize=str(part.size),
                MinSizeAllowed=str(min_part_size),
            )

    object_checksums, checksum_type = object_checksum(upload, chosen)
    return CompletionPlan(
        parts=tuple(chosen),
        etag=multipart_etag(part.etag for part in chosen),
        size=sum(part.size for part in chosen),
        checksums=object_checksums,
        checksum_type=checksum_type,
    )


def object_checksum(
    upload: UploadInfo, parts: Sequence[PartInfo]
) -> tuple[dict[str, str], ChecksumType | None]:
    """The checksum (algorithm -> value) and its type of the object ``upload`` becomes when
    completed with ``parts``; none when the upload has no algorithm. ``InvalidPart`` for a
    part without the upload's checksum."""
    algorithm = upload.checksum_algorithm
    if algorithm is None:
        return {}, None
    kind = upload.checksum_type or checksums.default_type(algorithm)
    values: list[str] = []
    for part in parts:
        value = part.checksums.get(algorithm)
        if value is None:
            raise S3Error(
                "InvalidPart",
                f"Part {part.part_number} has no {algorithm} checksum, which the upload requires.",
                PartNumber=str(part.part_number),
                ETag=part.etag,
            )
        values.append(value)
    if kind == "FULL_OBJECT":
        combined = checksums.combine_full_object(
            algorithm, zip(values, (part.size for part in parts), strict=True)
        )
    else:
        combined = checksums.composite(algorithm, values)
    return {algorithm: combined}, kind


def part_range(size: int, parts: Sequence[PartInfo], part_number: int) -> ByteRange | None:
    """The bytes of part ``part_number`` of an object of ``size`` bytes made of ``parts``.

    Parts are counted by position (S3 reports ``x-amz-mp-parts-count`` = ``len(parts)``). An
    object not uploaded in parts has one part, the whole object, and gets None (no range),
    as does an empty object. Otherwise the part's range; an empty part inside a larger object
    is ``ByteRange(start, start - 1)`` (length 0). A part number outside 1..10,000 is
    ``InvalidArgument``; beyond the object's part count it is ``InvalidPartNumber`` (416),
    as S3 answers.
    """
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(part_number),
        )
    count = len(parts) if parts else 1
    if part_number > count:
        raise S3Error(
            "InvalidPartNumber",
            PartNumberRequested=str(part_number),
            ActualPartCount=str(count),
        )
    if not parts:
        return None
    start = sum(part.size for part in parts[: part_number - 1])
    length = parts[part_number - 1].size
    if size == 0:
        return None
    return ByteRange(start, start + length - 1)


def read_span(info: ObjectInfo, options: GetOptions) -> ByteRange | None:
    """The bytes of ``info`` a GetObject with ``options`` reads: its part (see
    :func:`part_range`), its resolved range, or None for the whole object."""
    if options.part_number is not None:
        return part_range(info.size, info.parts, options.part_number)
    if options.range is not None:
        return options.range.resolve(info.size)
    return None


def resolve_checksum_type(
    algorithm: ChecksumAlgorithm | None, kind: ChecksumType | None
) -> ChecksumType | None:
    """A new upload's checksum type: S3's default for the algorithm when none is given;
    ``InvalidRequest`` for the combinations S3 refuses."""
    if algorithm is None:
        return None
    if kind is None:
        return checksums.default_type(algorithm)
    if kind == "FULL_OBJECT" and algorithm not in checksums.CRC_ALGORITHMS:
        raise S3Error(
            "InvalidRequest", f"The FULL_OBJECT checksum type is not supported for {algorithm}."
        )
    if kind == "COMPOSITE" and algorithm == "CRC64NVME":
        raise S3Error(
            "InvalidRequest", "The COMPOSITE checksum type is not supported for CRC64NVME."
        )
    return kind


class UploadIds:
    """Upload ids that sort by creation time, so listing by id lists by initiation: 16 hex
    digits of a strictly increasing nanosecond stamp, then 16 random ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            stamp = self._last
        return f"{stamp:016x}{os.urandom(8).hex()}"
