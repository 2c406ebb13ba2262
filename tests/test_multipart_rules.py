"""Unit tests of translators.multipart: completion validation and partNumber ranges."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from core import checksums
from core.checksums import ChecksumAlgorithm, ChecksumType
from core.digest import multipart_etag
from core.errors import S3Error
from core.ranges import ByteRange
from translators.base import CompletedPart, PartInfo, UploadInfo, WriteMetadata
from translators.multipart import MIN_PART_SIZE, part_range, plan_completion, unquote_etag

MIB = 1024 * 1024


def upload(
    algorithm: ChecksumAlgorithm | None = None, kind: ChecksumType | None = None
) -> UploadInfo:
    return UploadInfo(
        key="k",
        upload_id="u",
        initiated=datetime.now(UTC),
        metadata=WriteMetadata(),
        checksum_algorithm=algorithm,
        checksum_type=kind,
    )


def stored_part(number: int, data: bytes, size: int | None = None) -> PartInfo:
    return PartInfo(
        part_number=number,
        size=len(data) if size is None else size,
        etag=hashlib.md5(data).hexdigest(),
        checksums={name: checksums.checksum(name, data) for name in ("CRC32", "SHA256")},
    )


PARTS = {n: stored_part(n, bytes([n]), size=MIN_PART_SIZE) for n in range(1, 6)}


def named(*numbers: int) -> list[CompletedPart]:
    return [CompletedPart(n, PARTS[n].etag) for n in numbers]


def error_of(requested: list[CompletedPart], **kwargs: int) -> S3Error:
    with pytest.raises(S3Error) as caught:
        plan_completion(upload(), PARTS, requested, **kwargs)
    return caught.value


def test_plan_chooses_named_parts() -> None:
    plan = plan_completion(upload(), PARTS, named(1, 3, 5))
    assert [p.part_number for p in plan.parts] == [1, 3, 5]
    assert plan.size == 3 * MIN_PART_SIZE
    assert plan.checksums == {}
    assert plan.checksum_type is None


def test_multipart_etag() -> None:
    plan = plan_completion(upload(), PARTS, named(1, 2))
    digests = b"".join(hashlib.md5(bytes([n])).digest() for n in (1, 2))
    assert plan.etag == f"{hashlib.md5(digests).hexdigest()}-2"
    assert multipart_etag(part.etag for part in plan.parts) == plan.etag


def test_empty_list_is_malformed() -> None:
    assert error_of([]).code == "MalformedXML"


@pytest.mark.parametrize("numbers", [(2, 1), (1, 1), (1, 3, 2)])
def test_order(numbers: tuple[int, ...]) -> None:
    assert error_of(named(*numbers)).code == "InvalidPartOrder"


def test_order_is_checked_before_existence() -> None:
    assert error_of([CompletedPart(9, "x"), CompletedPart(1, "y")]).code == "InvalidPartOrder"


def test_missing_part() -> None:
    error = error_of([CompletedPart(9, PARTS[1].etag)])
    assert (error.code, error.fields["PartNumber"]) == ("InvalidPart", "9")


def test_etag_mismatch_and_quotes() -> None:
    error = error_of([CompletedPart(1, "deadbeef")])
    assert (error.code, error.fields["ETag"]) == ("InvalidPart", "deadbeef")
    plan = plan_completion(upload(), PARTS, [CompletedPart(1, f'"{PARTS[1].etag}"')])
    assert plan.parts == (PARTS[1],)


def test_unquote_etag() -> None:
    assert unquote_etag('"abc"') == "abc"
    assert unquote_etag("abc") == "abc"
    assert unquote_etag(' "abc" ') == "abc"
    assert unquote_etag('"') == '"'


def test_client_checksums_must_match() -> None:
    good = CompletedPart(1, PARTS[1].etag, {"CRC32": PARTS[1].checksums["CRC32"]})
    assert plan_completion(upload(), PARTS, [good]).parts == (PARTS[1],)
    bad = CompletedPart(1, PARTS[1].etag, {"CRC32": checksums.checksum("CRC32", b"other")})
    assert error_of([bad]).code == "InvalidPart"
    unknown = CompletedPart(1, PARTS[1].etag, {"CRC32C": checksums.checksum("CRC32C", b"x")})
    assert error_of([unknown]).code == "InvalidPart"


def test_entity_too_small() -> None:
    small = {1: stored_part(1, b"a"), 2: stored_part(2, b"b")}
    requested = [CompletedPart(n, small[n].etag) for n in (1, 2)]
    with pytest.raises(S3Error) as caught:
        plan_completion(upload(), small, requested)
    error = caught.value
    assert (error.code, error.status) == ("EntityTooSmall", 400)
    assert error.fields["ProposedSize"] == "1"
    assert error.fields["MinSizeAllowed"] == str(MIN_PART_SIZE)
    assert plan_completion(upload(), small, requested, min_part_size=1).size == 2
    # The last part may be any size, even alone.
    assert plan_completion(upload(), small, requested[:1]).size == 1


def test_exact_minimum_is_allowed() -> None:
    plan = plan_completion(upload(), PARTS, named(1, 2), min_part_size=MIN_PART_SIZE)
    assert plan.size == 2 * MIN_PART_SIZE


def test_full_object_checksum() -> None:
    data = [b"hello ", b"multipart ", b"world"]
    parts = {n: stored_part(n, d) for n, d in enumerate(data, 1)}
    requested = [CompletedPart(n, p.etag) for n, p in parts.items()]
    plan = plan_completion(upload("CRC32", "FULL_OBJECT"), parts, requested, min_part_size=1)
    assert plan.checksums == {"CRC32": checksums.checksum("CRC32", b"".join(data))}
    assert plan.checksum_type == "FULL_OBJECT"


def test_composite_checksum() -> None:
    data = [b"one", b"two"]
    parts = {n: stored_part(n, d) for n, d in enumerate(data, 1)}
    requested = [CompletedPart(n, p.etag) for n, p in parts.items()]
    plan = plan_completion(upload("SHA256", "COMPOSITE"), parts, requested, min_part_size=1)
    digests = b"".join(hashlib.sha256(d).digest() for d in data)
    expected = checksums.encode(hashlib.sha256(digests).digest()) + "-2"
    assert plan.checksums == {"SHA256": expected}
    assert plan.checksum_type == "COMPOSITE"


def test_object_checksum_comparison() -> None:
    """CompleteMultipartUpload's object checksum: FULL_OBJECT as it is, COMPOSITE with or
    without its -N (a -N given must be the part count)."""
    full = checksums.checksum("CRC32", b"abc")
    assert checksums.same_object_checksum("CRC32", full, full)
    assert not checksums.same_object_checksum("CRC32", checksums.checksum("CRC32", b"x"), full)
    composite = checksums.composite("SHA256", [checksums.checksum("SHA256", b"a")] * 3)
    bare = composite.rpartition("-")[0]
    assert checksums.same_object_checksum("SHA256", composite, composite)
    assert checksums.same_object_checksum("SHA256", bare, composite)
    assert not checksums.same_object_checksum("SHA256", f"{bare}-2", composite)
    assert checksums.parse_object_checksum("SHA256", f" {composite} ")[1] == 3


@pytest.mark.parametrize("value", ["", "!!!", "AAAA", "AAAAAA==-", "AAAAAA==-x", "AAAAAA==-٣"])
def test_malformed_object_checksum(value: str) -> None:
    with pytest.raises(S3Error) as excinfo:
        checksums.parse_object_checksum("CRC32", value)
    assert excinfo.value.code == "InvalidRequest"


def test_default_checksum_type() -> None:
    parts = {1: stored_part(1, b"x")}
    plan = plan_completion(upload("CRC32"), parts, [CompletedPart(1, parts[1].etag)])
    assert plan.checksum_type == "COMPOSITE"


def test_part_without_required_checksum() -> None:
    parts = {1: PartInfo(1, 1, hashlib.md5(b"x").hexdigest())}
    with pytest.raises(S3Error) as caught:
        plan_completion(upload("CRC32"), parts, [CompletedPart(1, parts[1].etag)])
    assert caught.value.code == "InvalidPart"


def test_part_range_of_simple_object() -> None:
    assert part_range(100, (), 1) is None
    assert part_range(0, (), 1) is None
    with pytest.raises(S3Error) as caught:
        part_range(100, (), 2)
    error = caught.value
    assert (error.code, error.status) == ("InvalidPartNumber", 416)
    assert (error.fields["PartNumberRequested"], error.fields["ActualPartCount"]) == ("2", "1")


def test_part_range_of_multipart_object() -> None:
    parts = (PartInfo(1, 10, "a"), PartInfo(3, 20, "b"), PartInfo(4, 5, "c"))
    assert part_range(35, parts, 1) == ByteRange(0, 9)
    assert part_range(35, parts, 2) == ByteRange(10, 29)
    assert part_range(35, parts, 3) == ByteRange(30, 34)
    with pytest.raises(S3Error) as caught:
        part_range(35, parts, 4)
    assert caught.value.code == "InvalidPartNumber"


@pytest.mark.parametrize("number", [0, -1, 10_001])
def test_part_number_out_of_bounds(number: int) -> None:
    with pytest.raises(S3Error) as caught:
        part_range(10, (), number)
    assert caught.value.code == "InvalidArgument"
