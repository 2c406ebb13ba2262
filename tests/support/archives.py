"""Real and crafted tar archives for the archive validation tests."""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import zstandard


@dataclass(frozen=True)
class Member:
    """One archive entry: a regular file unless ``kind`` says otherwise."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""


def make_tar(members: Iterable[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.linkname = member.linkname
            info.size = len(member.data) if member.kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(member.data) if info.size else None)
    return buffer.getvalue()


def site(extra: Iterable[Member] = ()) -> list[Member]:
    """A small static site: index.html, a stylesheet, an image-ish blob, a nested page."""
    return [
        Member("index.html", b"<!doctype html><h1>Hello</h1>\n"),
        Member("assets/", kind=tarfile.DIRTYPE),
        Member("assets/site.css", b"body { margin: 0 }\n" * 300),
        Member("assets/logo.bin", bytes(range(256)) * 40),
        Member("docs/guide/index.html", b"<p>guide</p>" * 100),
        *extra,
    ]


def gzip(data: bytes) -> bytes:
    return gzip_stream([data])


def gzip_stream(pieces: Iterable[bytes], level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(piece) for piece in pieces]
    out.append(compressor.flush())
    return b"".join(out)


def zstd(data: bytes, *, checksum: bool = True) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=checksum).compress(data)


def zstd_stream(pieces: Iterable[bytes]) -> bytes:
    compressor = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    out = [compressor.compress(piece) for piece in pieces]
    out.append(compressor.flush())
    return b"".join(out)


def big_zero_file_tar(name: str, size: int, step: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    """The tar stream of one ``size``-byte file of zeros, in pieces (never materialised)."""
    info = tarfile.TarInfo(name)
    info.size = size
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    remaining = size
    while remaining:
        take = min(step, remaining)
        yield bytes(take)
        remaining -= take
    yield bytes(-size % 512 + 1024)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def empty_files_tar(count: int) -> bytes:
    """A ustar archive of ``count`` empty files ``f0``, ``f1``..., built without tarfile
    (which takes seconds for 100k members)."""
    template = bytearray(tarfile.TarInfo("x").tobuf(format=tarfile.USTAR_FORMAT))
    blocks = []
    for index in range(count):
        header = bytearray(template)
        name = f"f{index}".encode()
        header[0:100] = name.ljust(100, b"\0")
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        blocks.append(bytes(header))
    blocks.append(bytes(1024))
    return b"".join(blocks)
