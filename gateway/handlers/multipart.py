"""Multipart uploads: create, upload part (and part copy), complete, abort, list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import cast

from core import checksums
from core.checksums import ChecksumType
from core.digest import HashingPayload
from core.errors import S3Error
from core.numbers import saturating_decimal
from core.ranges import RangeSpec
from gateway import s3xml, sse_headers
from gateway.handlers.access import keep_object_acl, requested_object_acl
from gateway.handlers.common import int_param, owner_element, part_number
from gateway.handlers.copy import copy_source_version_headers, open_copy_source
from gateway.handlers.listing import url_encoder
from gateway.handlers.object_lock import requested_lock
from gateway.handlers.object_tags import with_requested_tags
from gateway.handlers.objects import (
    check_size,
    checksum_elements,
    customer_key,
    write_conditions,
    write_encryption,
)
from gateway.handlers.versions import version_headers
from gateway.headers import write_metadata
from gateway.payload import checksum_values
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, quote_etag, xml_reply
from translators.base import CompletedPart, ObjectInfo, PartInfo, UploadInfo, UploadsQuery
from translators.multipart import object_checksum, plan_completion, resolve_checksum_type

E, T, G = s3xml.element, s3xml.text, s3xml.group
MAX_PART_SIZE = 5 * 1024**3
_COPY_RANGE = re.compile(r"^bytes=([0-9]+)-([0-9]+)$")


def _upload_headers(upload: UploadInfo) -> list[tuple[str, str]]:
    headers = sse_headers.response_headers(upload.encryption)
    if upload.checksum_algorithm:
        headers.append(("x-amz-checksum-algorithm", upload.checksum_algorithm))
    if upload.checksum_type:
        headers.append(("x-amz-checksum-type", upload.checksum_type))
    return headers


def _part_checksum_headers(part: PartInfo) -> list[tuple[str, str]]:
    return [(checksums.header_name(a), v) for a, v in part.checksums.items()]


async def create_multipart_upload(req: S3Request) -> Reply:
    # The ACL is kept at once: the object it names exists only once the upload completes,
    # and any other write of the key in between sets the ACL again.
    acl = await requested_object_acl(req)
    # The tags are the catalog's until the upload completes (policy.catalog_backend).
    metadata = await with_requested_tags(req, write_metadata(req.headers))
    metadata = replace(metadata, encryption=write_encryption(req), object_lock=requested_lock(req))
    raw_algorithm = req.headers.get("x-amz-checksum-algorithm")
    raw_type = req.headers.get("x-amz-checksum-type")
    algorithm = checksums.parse_algorithm(raw_algorithm) if raw_algorithm else None
    checksum_type: ChecksumType | None = None
    if raw_type is not None:
        if raw_type.upper() not in ("FULL_OBJECT", "COMPOSITE") or algorithm is None:
            raise S3Error(
                "InvalidRequest",
                "The x-amz-checksum-type header requires x-amz-checksum-algorithm "
                "and is FULL_OBJECT or COMPOSITE.",
            )
        checksum_type = cast(ChecksumType, raw_type.upper())
    checksum_type = resolve_checksum_type(algorithm, checksum_type)
    upload = await req.backend.create_multipart_upload(
        req.ctx, req.bucket, req.key, metadata, algorithm, checksum_type
    )
    await keep_object_acl(req, acl)
    root = E(
        "InitiateMultipartUploadResult",
        T("Bucket", req.bucket),
        T("Key", req.key),
        T("UploadId", upload.upload_id),
    )
    return xml_reply(root, headers=_upload_headers(upload))


def _part_number(req: S3Request) -> int:
    return part_number(req.query.get("partNumber", ""))


async def _upload(req: S3Request) -> UploadInfo:
    upload, _ = await req.backend.list_parts(
        req.ctx, req.bucket, req.key, req.query["uploadId"], 0, 0
    )
    return upload


async def upload_part(req: S3Request) -> Reply:
    number = _part_number(req)
    check_size(req, MAX_PART_SIZE)
    ctx = replace(req.ctx, customer_key=customer_key(req))
    upload = await _upload(req)
    extra = [upload.checksum_algorithm] if upload.checksum_algorithm else []
    part = await req.backend.upload_part(
        ctx, req.bucket, req.key, upload.upload_id, number, req.payload(extra_algorithms=extra)
    )
    return empty_reply(
        headers=[
            ("ETag", quote_etag(part.etag)),
            *_part_checksum_headers(part),
            *sse_headers.response_headers(upload.encryption),
        ]
    )


async def upload_part_copy(req: S3Request) -> Reply:
    number = _part_number(req)
    ctx = replace(req.ctx, customer_key=customer_key(req))
    upload = await _upload(req)
    spec = None
    raw_range = req.headers.get("x-amz-copy-source-range")
    if raw_range is not None:
        match = _COPY_RANGE.match(raw_range.strip())
        first = saturating_decimal(match.group(1)) if match else 0
        last = saturating_decimal(match.group(2)) if match else -1
        if last < first:
            raise S3Error(
                "InvalidArgument",
                "The x-amz-copy-source-range value must be of the form "
                "bytes=first-last where first and last are the zero-based offsets of the first "
                "and last bytes to copy",
                ArgumentName="x-amz-copy-source-range",
                ArgumentValue=raw_range,
            )
        spec = RangeSpec(first, last)
    _, result = await open_copy_source(req, spec)
    if (
        spec is not None
        and result.range is not None
        and spec.last is not None
        and spec.last > result.info.size - 1
    ):
        await result.body.aclose()
        raise S3Error(
            "InvalidRange",
            f"Range specified is not valid for source object of size: {result.info.size}",
        )
    size = result.range.length if result.range is not None else result.info.size
    if size > MAX_PART_SIZE:
        await result.body.aclose()
        raise S3Error("EntityTooLarge", ProposedSize=str(size), MaxSizeAllowed=str(MAX_PART_SIZE))
    algorithms = [upload.checksum_algorithm] if upload.checksum_algorithm else []
    part = await req.backend.upload_part(
        ctx,
        req.bucket,
        req.key,
        upload.upload_id,
        number,
        HashingPayload(result.body, size, algorithms),
    )
    root = E(
        "CopyPartResult",
        T("ETag", quote_etag(part.etag)),
        T("LastModified", part.last_modified),
        *[T(s3xml.checksum_tag(a), v) for a, v in part.checksums.items()],
    )
    headers = sse_headers.response_headers(upload.encryption)
    return xml_reply(root, headers=headers + copy_source_version_headers(result.info))


@dataclass(frozen=True)
class ObjectChecksum:
    """CompleteMultipartUpload's ``x-amz-checksum-<algorithm>`` (and ``-type``): the
    checksum the client expects of the whole object, not of the request body."""

    algorithm: str
    value: str
    checksum_type: str | None

    def check_upload(self, upload: UploadInfo) -> None:
        """``InvalidRequest`` unless the upload was created with this algorithm (and type)."""
        if upload.checksum_algorithm != self.algorithm:
            raise S3Error(
                "InvalidRequest",
                f"The upload was created using the {upload.checksum_algorithm or 'null'} "
                "checksum algorithm. The complete request must use the same checksum "
                "algorithm.",
            )
        if self.checksum_type is not None and self.checksum_type != upload.checksum_type:
            raise S3Error(
                "InvalidRequest",
                f"The upload was created using the {upload.checksum_type} checksum type. "
                "The complete request must use the same checksum type.",
            )

    def check(self, computed: Mapping[str, str]) -> None:
        """``BadDigest`` unless ``computed`` (the object's checksums) holds this value."""
        value = computed.get(self.algorithm)
        if value is None or not checksums.same_object_checksum(self.algorithm, self.value, value):
            raise S3Error(
                "BadDigest",
                f"The {checksums.header_name(self.algorithm)} you specified did not match the "
                "calculated checksum.",
            )


def expected_object_checksum(headers: Mapping[str, str]) -> ObjectChecksum | None:
    """The object checksum a CompleteMultipartUpload names, if any; ``InvalidRequest`` for
    several, an unknown algorithm or type, or a malformed value."""
    given = [
        (checksums.parse_algorithm(suffix), value)
        for suffix, value in checksum_values(headers).items()
    ]
    if not given:
        return None
    if len(given) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    algorithm, value = given[0]
    checksums.parse_object_checksum(algorithm, value)
    raw_type = headers.get("x-amz-checksum-type")
    kind = raw_type.strip().upper() if raw_type is not None else None
    if kind is not None and kind not in ("FULL_OBJECT", "COMPOSITE"):
        raise S3Error(
            "InvalidRequest", "The x-amz-checksum-type header is FULL_OBJECT or COMPOSITE."
        )
    return ObjectChecksum(algorithm, value, kind)


async def _check_object_checksum(
    req: S3Request, parts: list[CompletedPart], expected: ObjectChecksum
) -> None:
    """Compare ``expected`` with the checksum the completion will give the object, before it
    commits. The parts are matched by ETag, so a part replaced meanwhile fails the
    completion itself (``InvalidPart``). An upload gone is left to the completion (a repeat
    of one that succeeded is answered from its record, and checked by the caller)."""
    upload_id = req.query["uploadId"]
    stored: dict[int, PartInfo] = {}
    marker = 0
    try:
        while True:
            upload, page = await req.backend.list_parts(
                req.ctx, req.bucket, req.key, upload_id, marker, 1000
            )
            stored.update((part.part_number, part) for part in page.parts)
            if page.next_part_number_marker is None:
                break
            marker = page.next_part_number_marker
    except S3Error as error:
        if error.code == "NoSuchUpload":
            return
        raise
    expected.check_upload(upload)
    plan = plan_completion(upload, stored, parts, min_part_size=0)
    expected.check(object_checksum(upload, plan.parts)[0])


async def complete_multipart_upload(req: S3Request) -> Reply:
    parts = s3xml.parse_complete_multipart(await req.read_body(body_checksums=False))
    ctx = replace(req.ctx, customer_key=customer_key(req))
    expected = expected_object_checksum(req.headers)
    if expected is not None:
        await _check_object_checksum(req, parts, expected)
    info: ObjectInfo = await req.backend.complete_multipart_upload(
        ctx, req.bucket, req.key, req.query["uploadId"], parts, write_conditions(req.headers)
    )
    if expected is not None:
        expected.check(info.checksums)
    root = E(
        "CompleteMultipartUploadResult",
        T("Location", f"/{req.bucket}/{req.key}"),
        T("Bucket", req.bucket),
        T("Key", req.key),
        T("ETag", quote_etag(info.etag)),
        *checksum_elements(info),
    )
    headers = sse_headers.response_headers(info.encryption) + version_headers(info)
    return xml_reply(root, headers=headers)


async def abort_multipart_upload(req: S3Request) -> Reply:
    await req.backend.abort_multipart_upload(req.ctx, req.bucket, req.key, req.query["uploadId"])
    return empty_reply(204)


async def list_parts(req: S3Request) -> Reply:
    marker = int_param(req.query, "part-number-marker", 0, 0, 10000)
    max_parts = int_param(req.query, "max-parts", 1000, 0, 1000)
    upload, page = await req.backend.list_parts(
        req.ctx, req.bucket, req.key, req.query["uploadId"], marker, max_parts
    )
    root = E(
        "ListPartsResult",
        T("Bucket", req.bucket),
        T("Key", req.key),
        T("UploadId", upload.upload_id),
        owner_element(req, "Initiator"),
        owner_element(req),
        T("StorageClass", "STANDARD"),
        T("PartNumberMarker", marker),
        T(
            "NextPartNumberMarker",
            page.next_part_number_marker
            if page.next_part_number_marker is not None
            else (page.parts[-1].part_number if page.parts else marker),
        ),
        T("MaxParts", max_parts),
        T("IsTruncated", page.next_part_number_marker is not None),
        T("ChecksumAlgorithm", upload.checksum_algorithm),
        T("ChecksumType", upload.checksum_type),
    )
    for part in page.parts:
        root.append(
            G(
                "Part",
                [
                    T("PartNumber", part.part_number),
                    T("LastModified", part.last_modified),
                    T("ETag", quote_etag(part.etag)),
                    T("Size", part.size),
                    *[T(s3xml.checksum_tag(a), v) for a, v in part.checksums.items()],
                ],
            )
        )
    return xml_reply(root)


async def list_multipart_uploads(req: S3Request) -> Reply:
    encode = url_encoder(req)
    query = UploadsQuery(
        prefix=req.query.get("prefix", ""),
        delimiter=req.query.get("delimiter", ""),
        key_marker=req.query.get("key-marker", ""),
        upload_id_marker=req.query.get("upload-id-marker", ""),
        max_uploads=int_param(req.query, "max-uploads", 1000, 0, 1000),
    )
    page = await req.backend.list_multipart_uploads(req.ctx, req.bucket, query)
    root = E(
        "ListMultipartUploadsResult",
        T("Bucket", req.bucket),
        T("KeyMarker", encode(query.key_marker)),
        T("UploadIdMarker", query.upload_id_marker),
        T(
            "NextKeyMarker",
            encode(page.next_key_marker) if page.next_key_marker is not None else None,
        ),
        T("NextUploadIdMarker", page.next_upload_id_marker),
        T("Delimiter", encode(query.delimiter) if query.delimiter else None),
        T("Prefix", encode(query.prefix)),
        T("EncodingType", req.query.get("encoding-type")),
        T("MaxUploads", query.max_uploads),
        T("IsTruncated", page.next_key_marker is not None),
    )
    for upload in page.uploads:
        root.append(
            G(
                "Upload",
                [
                    T("Key", encode(upload.key)),
                    T("UploadId", upload.upload_id),
                    owner_element(req, "Initiator"),
                    owner_element(req),
                    T("StorageClass", "STANDARD"),
                    T("Initiated", upload.initiated),
                    T("ChecksumAlgorithm", upload.checksum_algorithm),
                    T("ChecksumType", upload.checksum_type),
                ],
            )
        )
    root.extend(G("CommonPrefixes", [T("Prefix", encode(p))]) for p in page.common_prefixes)
    return xml_reply(root)
