"""policy.archive: the streaming validator over real and crafted archives, in odd chunks."""

from __future__ import annotations

import tarfile

import pytest

from core.errors import S3Error
from policy.archive import RATIO_GRACE_BYTES, ArchiveValidator
from policy.archive_rules import ArchiveReport
from policy.model import Compression, SitePolicy
from tests.support.archives import (
    Member,
    big_zero_file_tar,
    chunks,
    empty_files_tar,
    gzip,
    gzip_stream,
    make_tar,
    site,
    zstd,
    zstd_stream,
)

POLICY = SitePolicy(required_member="index.html")
CHUNK_SIZES = (1, 7, 511, 512, 513, 4099, 65536, 10**9)


def validate(
    data: bytes, compression: Compression, policy: SitePolicy = POLICY, chunk: int = 4099
) -> ArchiveReport:
    validator = ArchiveValidator(compression, policy)
    for piece in chunks(data, chunk):
        validator.feed(piece)
    return validator.finish()


def rejected(
    data: bytes, compression: Compression, policy: SitePolicy = POLICY, chunk: int = 4099
) -> S3Error:
    with pytest.raises(S3Error) as caught:
        validate(data, compression, policy, chunk)
    assert caught.value.status == 400
    return caught.value


def feed_until_error(
    validator: ArchiveValidator, data: bytes, chunk: int = 4096
) -> tuple[S3Error, int]:
    """Feed ``data`` until the validator raises; the error and the bytes fed by then."""
    fed = 0
    for piece in chunks(data, chunk):
        fed += len(piece)
        try:
            validator.feed(piece)
        except S3Error as error:
            return error, fed
    raise AssertionError("the validator accepted every chunk")


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip(data)
    if compression == "zstd":
        return zstd(data)
    return data


COMPRESSIONS: tuple[Compression, ...] = ("none", "gzip", "zstd")


# Valid archives


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_valid_site_in_any_format_and_chunking(
    compression: Compression, fmt: int, chunk: int
) -> None:
    members = site([Member("a/" + "deep/" * 30 + "page.html", b"x")])  # > 100 chars: prefix
    if fmt != tarfile.USTAR_FORMAT:
        members.append(Member("n" * 300, b"long name"))
        members.append(Member("link", kind=tarfile.SYMTYPE, linkname="assets/" + "l" * 150))
    tar = make_tar(members, fmt)
    report = validate(compress(tar, compression), compression, chunk=chunk)
    assert report.members == len(members)
    assert report.uncompressed_bytes == len(tar)
    assert report.found_required_member
    assert report.required_member == "index.html"


def test_multi_member_gzip_and_multi_frame_zstd_with_skippable_frame() -> None:
    tar = make_tar(site())
    half = len(tar) // 2
    assert validate(gzip(tar[:half]) + gzip(tar[half:]), "gzip", chunk=100).members == 5
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    stream = zstd(tar[:half]) + skippable + zstd(tar[half:], checksum=False)
    assert validate(stream, "zstd", chunk=5).members == 5
    assert validate(zstd_stream(chunks(tar, 1000)), "zstd", chunk=33).members == 5


def test_required_member_accepts_dot_slash_and_is_optional() -> None:
    tar = make_tar([Member("./index.html", b"hi")])
    assert validate(gzip(tar), "gzip").found_required_member
    no_rule = validate(make_tar([Member("a.txt")]), "none", SitePolicy())
    assert no_rule.found_required_member
    assert no_rule.required_member is None


def test_internal_links_are_allowed() -> None:
    tar = make_tar(
        [
            *site(),
            Member("docs/guide/up", kind=tarfile.SYMTYPE, linkname="../../index.html"),
            Member("docs/hard", kind=tarfile.LNKTYPE, linkname="index.html"),
            Member("self", kind=tarfile.SYMTYPE, linkname="."),
        ]
    )
    assert validate(zstd(tar), "zstd").members == 8


# Corrupt streams


@pytest.mark.parametrize("chunk", [1, 13, 4099])
def test_truncated_gzip(chunk: int) -> None:
    data = gzip(make_tar(site()))
    for cut in (len(data) - 1, len(data) - 8, len(data) // 2):
        error = rejected(data[:cut], "gzip", chunk=chunk)
        assert error.code == "InvalidArchive"
        assert "truncated" in error.message or "corrupt" in error.message


@pytest.mark.parametrize("offset", [-8, -5, -4, -1])  # CRC32 and ISIZE of the trailer
def test_flipped_gzip_trailer(offset: int) -> None:
    data = bytearray(gzip(make_tar(site())))
    data[offset] ^= 0x01
    error = rejected(bytes(data), "gzip")
    assert error.code == "InvalidArchive"
    assert "gzip" in error.message


def test_gzip_trailing_garbage() -> None:
    error = rejected(gzip(make_tar(site())) + b"garbage!", "gzip")
    assert error.code == "InvalidArchive"
    assert "after gzip member 1" in error.message


def test_not_gzip_and_empty() -> None:
    assert rejected(make_tar(site()), "gzip").code == "InvalidArchive"
    assert "empty" in rejected(b"", "gzip").message
    assert rejected(b"", "zstd").code == "InvalidArchive"
    assert rejected(b"", "none").code == "InvalidArchive"


def test_zstd_truncated_flipped_and_trailing_garbage() -> None:
    data = zstd(make_tar(site()))
    for cut in (len(data) - 1, len(data) - 4, 5, len(data) // 2):
        error = rejected(data[:cut], "zstd", chunk=3)
        assert error.code == "InvalidArchive"
        assert "truncated" in error.message
    flipped = bytearray(data)
    flipped[-1] ^= 0x01  # the content checksum
    assert "checksum" in rejected(bytes(flipped), "zstd").message
    error = rejected(data + b"\x00\x01\x02\x03more", "zstd")
    assert "after zstd frame 1" in error.message
    assert "bad magic" in rejected(gzip(make_tar(site())), "zstd").message


def test_tar_truncated_or_without_end_marker() -> None:
    tar = make_tar(site())
    members_end = len(tar.rstrip(b"\0")) + 511 & ~511  # the end-of-archive marker starts here
    for cut in (700, 512 * 3 + 100, members_end):
        error = rejected(tar[:cut], "none")
        assert error.code == "InvalidArchive"
        assert "truncated" in error.message


def test_tar_bad_header_checksum() -> None:
    tar = bytearray(make_tar(site()))
    tar[1] ^= 0x20  # a name byte of the first header
    error = rejected(gzip(bytes(tar)), "gzip")
    assert error.code == "InvalidArchive"
    assert "checksum" in error.message


def test_data_after_end_of_archive() -> None:
    tar = make_tar(site()) + make_tar([Member("smuggled.html", b"x")])
    error = rejected(zstd(tar), "zstd")
    assert "after its end-of-archive marker" in error.message


# Unsafe members


@pytest.mark.parametrize(
    "name",
    ["../evil", "/etc/x", "a/../../x", "a/..", "..", "ok/..\\..\\x", "C:/windows/x"],
)
@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_unsafe_paths(name: str, fmt: int) -> None:
    error = rejected(gzip(make_tar(site([Member(name, b"pwned")]), fmt)), "gzip")
    assert error.code == "UnsafeArchivePath"
    assert repr(name) in error.message
    assert error.fields["Member"] == name


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_unsafe_long_names_via_gnu_longname_or_pax_path(fmt: int) -> None:
    name = "x" * 120 + "/../../../etc/cron.d/evil"
    error = rejected(zstd(make_tar([Member(name, b"x")], fmt)), "zstd")
    assert error.code == "UnsafeArchivePath"


@pytest.mark.parametrize(
    ("name", "kind", "target"),
    [
        ("passwd", tarfile.SYMTYPE, "../../etc/passwd"),
        ("a/link", tarfile.SYMTYPE, "../../x"),
        ("abs", tarfile.SYMTYPE, "/etc/passwd"),
        ("hard", tarfile.LNKTYPE, "../outside"),
        ("hard2", tarfile.LNKTYPE, "/etc/shadow"),
        ("pax", tarfile.SYMTYPE, "d/" * 60 + "../" * 61 + "etc"),
    ],
)
def test_links_escaping_the_root(name: str, kind: bytes, target: str) -> None:
    error = rejected(gzip(make_tar(site([Member(name, kind=kind, linkname=target)]))), "gzip")
    assert error.code == "UnsafeArchiveLink"
    assert repr(target) in error.message


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.CHRTYPE, "character device"),
        (tarfile.BLKTYPE, "block device"),
        (tarfile.FIFOTYPE, "FIFO"),
    ],
)
def test_device_files_and_fifos(kind: bytes, what: str) -> None:
    error = rejected(zstd(make_tar(site([Member("dev/null", kind=kind)]))), "zstd")
    assert error.code == "ForbiddenArchiveMember"
    assert what in error.message
    assert "'dev/null'" in error.message


def test_unsupported_member_type() -> None:
    error = rejected(make_tar(site([Member("sparse", kind=tarfile.GNUTYPE_SPARSE)])), "none")
    assert error.code == "ForbiddenArchiveMember"


# Limits


def test_too_many_members_is_stopped_early() -> None:
    data = gzip(empty_files_tar(100_000))
    assert validate(data, "gzip", SitePolicy(), chunk=65536).members == 100_000
    error, fed = feed_until_error(ArchiveValidator("gzip", SitePolicy(max_members=1000)), data)
    assert fed < len(data) // 10
    assert error.code == "ArchiveTooManyMembers"
    assert "limit 1000" in error.message
    assert "'f1000'" in error.message
    assert error.fields["Rule"] == "max_members"


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compression_bomb_is_stopped_early(compression: Compression) -> None:
    size = 256 * 1024 * 1024
    pieces = big_zero_file_tar("bomb.bin", size)
    data = gzip_stream(pieces, 9) if compression == "gzip" else zstd_stream(pieces)
    assert len(data) * 200 < size
    error, fed = feed_until_error(ArchiveValidator(compression, SitePolicy()), data, 1024)
    assert error.code == "ArchiveCompressionRatio"
    assert "limit of 200" in error.message
    assert fed < len(data) // 2


def test_small_archives_are_not_ratio_bombs() -> None:
    tar = make_tar(Member(f"empty{i}") for i in range(1000))  # ~1 MiB of nearly all zeros
    assert len(tar) < RATIO_GRACE_BYTES * 2
    assert validate(gzip(tar), "gzip", SitePolicy()).members == 1000


def test_uncompressed_size_limit() -> None:
    tar = make_tar([Member("big.bin", bytes(300_000))])
    for compression in COMPRESSIONS:
        error = rejected(
            compress(tar, compression), compression, SitePolicy(max_uncompressed_bytes=100_000)
        )
        assert error.code == "ArchiveTooLarge"
        assert "limit 100000" in error.message


def test_missing_required_member() -> None:
    tar = make_tar([Member("about.html", b"x"), Member("index.html/", kind=tarfile.DIRTYPE)])
    error = rejected(gzip(tar), "gzip")
    assert error.code == "MissingRequiredMember"
    assert "'index.html'" in error.message
    assert error.fields["Rule"] == "required_member"


def test_spent_validator_repeats_its_error() -> None:
    validator = ArchiveValidator("none", POLICY)
    with pytest.raises(S3Error) as first:
        validator.feed(make_tar([Member("../x")]))
    with pytest.raises(S3Error) as again:
        validator.finish()
    assert again.value is first.value
