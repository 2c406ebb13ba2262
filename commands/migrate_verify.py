"""Verifying a migrated object: the bytes read against what the source reports, the
target's copy against what was sent, and whether a target object already is a copy."""

from __future__ import annotations

from collections.abc import Mapping

from core import checksums
from core.digest import multipart_etag
from core.errors import S3Error
from core.streams import PayloadDigest
from translators.base import ObjectInfo, PartInfo


class VerificationError(S3Error):
    """A copy (or the source read) does not match what the source reports.

    An ``S3Error`` (``BadDigest``) so that, raised from a copy's payload stream, translators
    treat it as the failed verification it is and commit nothing."""

    def __init__(self, message: str) -> None:
        super().__init__("BadDigest", message)


def _is_md5(etag: str) -> bool:
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


def _is_composite(source: ObjectInfo, value: str) -> bool:
    return source.checksum_type == "COMPOSITE" or "-" in value


def verify_source_read(
    source: ObjectInfo, whole: PayloadDigest, parts: list[PayloadDigest]
) -> None:
    """The bytes read are the object the source describes: size, ETag, checksums."""
    if whole.size != source.size:
        raise VerificationError(f"read {whole.size} bytes, the source reports {source.size}")
    if "-" in source.etag and len(parts) > 1:
        if multipart_etag(part.md5_hex for part in parts) != source.etag:
            raise VerificationError(f"the bytes read do not match source ETag {source.etag}")
    elif _is_md5(source.etag) and whole.md5_hex != source.etag:
        raise VerificationError(
            f"MD5 of the bytes read {whole.md5_hex} differs from source ETag {source.etag}"
        )
    for algorithm, value in source.checksums.items():
        if _is_composite(source, value):
            if not value.endswith(f"-{len(parts)}"):
                continue  # the source does not tell its part layout: nothing to check with
            computed = checksums.composite(algorithm, [p.checksums[algorithm] for p in parts])
        else:
            computed = whole.checksums[algorithm]
        if computed != value:
            raise VerificationError(
                f"{algorithm} of the bytes read {computed} differs from the source's {value}"
            )


def verify_target(
    stored: ObjectInfo, size: int, etag: str, expected_checksums: Mapping[str, str]
) -> None:
    """The target object, as read back, has the size, ETag and checksums that were sent."""
    if stored.size != size:
        raise VerificationError(f"the target holds {stored.size} bytes, expected {size}")
    if stored.etag != etag:
        raise VerificationError(f"the target ETag is {stored.etag}, expected {etag}")
    for algorithm, value in expected_checksums.items():
        found = stored.checksums.get(algorithm)
        if found != value:
            raise VerificationError(
                f"the target {algorithm} checksum is {found}, expected {value} "
                "(the target did not keep the checksum)"
            )


def same_object(source: ObjectInfo, target: ObjectInfo) -> bool:
    """Whether ``target`` already is a copy of ``source`` (without reading any bytes)."""
    if source.size != target.size:
        return False
    if (source.headers, source.user_metadata) != (target.headers, target.user_metadata):
        return False
    if source.etag == target.etag:
        return all(target.checksums.get(a) == v for a, v in source.checksums.items())
    # A multipart source copied as one object: a full-object checksum still identifies it.
    shared = [
        algorithm
        for algorithm, value in source.checksums.items()
        if not _is_composite(source, value) and algorithm in target.checksums
    ]
    return bool(shared) and all(source.checksums[a] == target.checksums[a] for a in shared)


def whole_from_parts(source: ObjectInfo, parts: list[PayloadDigest]) -> PayloadDigest:
    """The whole object's full-object CRCs, combined from the parts' (no MD5)."""
    combined = {
        algorithm: checksums.combine_full_object(
            algorithm, [(p.checksums[algorithm], p.size) for p in parts]
        )
        for algorithm, value in source.checksums.items()
        if not _is_composite(source, value) and algorithm in checksums.CRC_ALGORITHMS
    }
    return PayloadDigest(sum(p.size for p in parts), "", combined)


def verify_part(number: int, source: PartInfo, read: PayloadDigest, stored: PartInfo) -> None:
    if stored.etag != read.md5_hex:
        raise VerificationError(f"part {number}: the target ETag {stored.etag} is not the MD5")
    if source.etag and source.etag != read.md5_hex:
        raise VerificationError(f"part {number}: the bytes read differ from the source part")
    for algorithm, value in source.checksums.items():
        if read.checksums.get(algorithm, value) != value:
            raise VerificationError(f"part {number}: {algorithm} differs from the source part")
