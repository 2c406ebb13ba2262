"""S3's additional checksums: CRC32, CRC32C, CRC64NVME, SHA1, SHA256.

Values travel as base64 of the big-endian digest (``x-amz-checksum-<algo>``). CRCs come from
``awscrt`` (the C library the AWS SDKs use), hashes from ``hashlib``. Multipart objects carry
either a FULL_OBJECT checksum (CRCs only: the part CRCs combined as if computed over the whole
object) or a COMPOSITE one (the checksum of the concatenated part digests, suffixed ``-N``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable
from typing import Final, Literal, Protocol

from awscrt import checksums as crt

from core.errors import S3Error

ChecksumAlgorithm = Literal["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
ChecksumType = Literal["FULL_OBJECT", "COMPOSITE"]
CHECKSUM_ALGORITHMS: tuple[ChecksumAlgorithm, ...] = (
    "CRC32",
    "CRC32C",
    "CRC64NVME",
    "SHA1",
    "SHA256",
)

#: Digest width in bytes per algorithm.
WIDTH: Final[dict[str, int]] = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
CRC_ALGORITHMS: Final = frozenset({"CRC32", "CRC32C", "CRC64NVME"})

_CRC_UPDATE: Final[dict[str, Callable[[bytes, int], int]]] = {
    "CRC32": crt.crc32,
    "CRC32C": crt.crc32c,
    "CRC64NVME": crt.crc64nvme,
}
_CRC_COMBINE: Final[dict[str, Callable[[int, int, int], int]]] = {
    "CRC32": crt.combine_crc32,
    "CRC32C": crt.combine_crc32c,
    "CRC64NVME": crt.combine_crc64nvme,
}


class Hasher(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    __slots__ = ("_update", "_value", "_width")

    def __init__(self, algorithm: str) -> None:
        self._update = _CRC_UPDATE[algorithm]
        self._width = WIDTH[algorithm]
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._update(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def parse_algorithm(name: str) -> ChecksumAlgorithm:
    """The algorithm named by a header value such as ``crc32c``; ``InvalidRequest`` otherwise."""
    upper = name.strip().upper()
    if upper not in CHECKSUM_ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {name!r} is not supported.")
    return upper


def header_name(algorithm: str) -> str:
    """``x-amz-checksum-crc32`` for ``CRC32``."""
    return f"x-amz-checksum-{algorithm.lower()}"


def new_hasher(algorithm: str) -> Hasher:
    """A streaming hasher for one of :data:`CHECKSUM_ALGORITHMS`."""
    if algorithm in _CRC_UPDATE:
        return _Crc(algorithm)
    return hashlib.new(algorithm.lower())


def encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode(algorithm: str, value: str) -> bytes:
    """The digest in a client's base64 value; ``InvalidRequest`` if malformed or wrong size."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != WIDTH[algorithm]:
        raise S3Error(
            "InvalidRequest",
            f"Value for {header_name(algorithm)} header is invalid.",
        )
    return raw


def checksum(algorithm: str, data: bytes) -> str:
    """The base64 checksum of ``data`` (a convenience for small buffers and tests)."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return encode(hasher.digest())


def combine_full_object(algorithm: str, parts: Iterable[tuple[str, int]]) -> str:
    """The FULL_OBJECT CRC of an object made of parts given as (base64 CRC, size)."""
    if algorithm not in _CRC_COMBINE:
        raise S3Error(
            "InvalidRequest",
            f"The FULL_OBJECT checksum type is not supported for {algorithm}.",
        )
    combine = _CRC_COMBINE[algorithm]
    total: int | None = None
    for value, size in parts:
        crc = int.from_bytes(decode(algorithm, value), "big")
        total = crc if total is None else combine(total, crc, size)
    return encode((total or 0).to_bytes(WIDTH[algorithm], "big"))


def composite(algorithm: str, part_checksums: list[str]) -> str:
    """The COMPOSITE checksum: the checksum of the concatenated part digests, ``-N`` suffixed."""
    hasher = new_hasher(algorithm)
    for value in part_checksums:
        hasher.update(decode(algorithm, value))
    return f"{encode(hasher.digest())}-{len(part_checksums)}"


def parse_object_checksum(algorithm: str, given: str) -> tuple[bytes, int | None]:
    """A client's checksum of a multipart object (CompleteMultipartUpload's
    ``x-amz-checksum-<algorithm>``): the digest, and the part count of a COMPOSITE value
    given as ``<base64>-N``. ``InvalidRequest`` when it is not a value of ``algorithm``."""
    value, dash, count = given.strip().partition("-")
    if dash and not (count.isascii() and count.isdigit()):
        raise S3Error("InvalidRequest", f"Value for {header_name(algorithm)} header is invalid.")
    return decode(algorithm, value), int(count) if dash else None


def same_object_checksum(algorithm: str, given: str, computed: str) -> bool:
    """Whether ``given`` (see :func:`parse_object_checksum`) is the ``computed`` checksum:
    a FULL_OBJECT value as it is, a COMPOSITE one with or without its ``-N`` (when given,
    N must be the part count)."""
    raw, count = parse_object_checksum(algorithm, given)
    computed_raw, computed_count = parse_object_checksum(algorithm, computed)
    return raw == computed_raw and (count is None or count == computed_count)


def default_type(algorithm: str) -> ChecksumType:
    """S3's default multipart checksum type: FULL_OBJECT for CRC64NVME, else COMPOSITE."""
    return "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
