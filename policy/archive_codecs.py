"""The decompressing stages of archive validation: gzip (one or more members) and zstd.

A stage is fed compressed bytes and pushes what they decompress to into a :data:`Sink`,
in bounded pieces; its ``finish`` raises ``InvalidArchive`` when the stream is truncated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Final

import zstandard

from core.errors import S3Error
from policy.archive_rules import invalid_archive

#: Largest zstd window accepted (zstd's own default decoder limit, 2**27).
MAX_ZSTD_WINDOW: Final = 1 << 27
_GZIP_IN_SLICE: Final = 16 * 1024  # compressed bytes per zlib call: bounds unconsumed_tail
_GZIP_OUT_MAX: Final = 256 * 1024  # decompressed bytes per zlib call
_ZSTD_MAGIC: Final = 0xFD2FB528
_ZSTD_SKIPPABLE: Final = 0x184D2A50  # ..0x184D2A5F

Sink = Callable[[bytes], None]


class GzipStage:
    """A gzip stream of one or more members; zlib checks each member's CRC32 and ISIZE."""

    def __init__(self) -> None:
        self._inflater: zlib._Decompress | None = None
        self._members = 0

    def feed(self, data: bytes, sink: Sink) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _GZIP_IN_SLICE):
            self._feed_slice(bytes(view[start : start + _GZIP_IN_SLICE]), sink)

    def _feed_slice(self, data: bytes, sink: Sink) -> None:
        while True:
            if self._inflater is None:
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._members += 1
            try:
                out = self._inflater.decompress(data, _GZIP_OUT_MAX)
            except zlib.error as error:
                raise self._error(error) from error
            if out:
                sink(out)
            if self._inflater.eof:
                data = self._inflater.unused_data
                self._inflater = None
                if not data:
                    return
                continue
            data = self._inflater.unconsumed_tail
            if not data and len(out) < _GZIP_OUT_MAX:
                return

    def _error(self, error: zlib.error) -> S3Error:
        if self._members > 1 and "header" in str(error):
            return invalid_archive(f"bytes after gzip member {self._members - 1} are not gzip data")
        return invalid_archive(f"the gzip stream is corrupt ({error})")

    def finish(self, sink: Sink) -> None:
        if self._members == 0:
            raise invalid_archive("the artifact is empty")
        if self._inflater is not None:
            raise invalid_archive(
                f"the gzip stream is truncated (member {self._members} is incomplete)"
            )


class ZstdStage:
    """A sequence of zstd frames (and skippable frames), decoded with checksum verification.

    A small walker follows the frame structure (frame header, block headers, checksum) so
    each decompressor call completes at most one block: output per call is bounded by the
    block size (128 KiB) even for a bomb of tiny RLE blocks, and a frame cut short or bytes
    that are no frame are detected exactly.
    """

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW)
        self._decoder: zstandard.ZstdDecompressionObj | None = None
        self._frames = 0
        self._state = "magic"
        self._header = bytearray()  # the fixed-size field being collected
        self._remaining = 0  # bytes left in the current pass-through or skipped span
        self._has_checksum = False
        self._last_block = False

    def feed(self, data: bytes, sink: Sink) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self._state in ("frame_header", "block_body", "checksum", "skip_body"):
                take = min(self._remaining, len(view) - pos)
                if self._state != "skip_body":
                    self._decode(bytes(view[pos : pos + take]), sink)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._span_done(sink)
                continue
            need = {"magic": 4, "descriptor": 1, "block_header": 3, "skip_size": 4}[self._state]
            take = min(need - len(self._header), len(view) - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == need:
                field, self._header = bytes(self._header), bytearray()
                self._field_done(field, sink)

    def _field_done(self, field: bytes, sink: Sink) -> None:
        if self._state == "magic":
            magic = int.from_bytes(field, "little")
            if magic == _ZSTD_MAGIC:
                self._frames += 1
                self._decoder = self._dctx.decompressobj()
                self._decode(field, sink)
                self._state = "descriptor"
            elif magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
                self._state = "skip_size"
            elif self._frames:
                raise invalid_archive(f"bytes after zstd frame {self._frames} are not a zstd frame")
            else:
                raise invalid_archive("the artifact is not zstd data (bad magic number)")
        elif self._state == "descriptor":
            self._decode(field, sink)
            descriptor = field[0]
            if descriptor & 0x08:
                raise invalid_archive(f"zstd frame {self._frames} has a reserved header bit set")
            single_segment = bool(descriptor & 0x20)
            self._has_checksum = bool(descriptor & 0x04)
            content_size = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
            size = (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + content_size
            self._start_span("frame_header", size, sink)
        elif self._state == "block_header":
            self._decode(field, sink)
            header = int.from_bytes(field, "little")
            self._last_block = bool(header & 1)
            kind, size = (header >> 1) & 3, header >> 3
            if kind == 3:
                raise invalid_archive(f"zstd frame {self._frames} has a block of reserved type")
            self._start_span("block_body", 1 if kind == 1 else size, sink)
        else:  # skip_size
            self._start_span("skip_body", int.from_bytes(field, "little"), sink)

    def _start_span(self, state: str, size: int, sink: Sink) -> None:
        self._state = state
        self._remaining = size
        if size == 0:
            self._span_done(sink)

    def _span_done(self, sink: Sink) -> None:
        if self._state == "frame_header":
            self._state = "block_header"
        elif self._state == "block_body":
            if not self._last_block:
                self._state = "block_header"
            else:
                self._start_span("checksum", 4 if self._has_checksum else 0, sink)
        elif self._state == "checksum":
            assert self._decoder is not None
            if not self._decoder.eof:
                raise invalid_archive(f"zstd frame {self._frames} did not end where its blocks end")
            self._decoder = None
            self._state = "magic"
        else:  # skip_body
            self._state = "magic"

    def _decode(self, data: bytes, sink: Sink) -> None:
        assert self._decoder is not None
        try:
            out = self._decoder.decompress(data)
        except zstandard.ZstdError as error:
            raise invalid_archive(f"zstd frame {self._frames} is corrupt ({error})") from error
        if out:
            sink(out)

    def finish(self, sink: Sink) -> None:
        if self._frames == 0 and self._state == "magic" and not self._header:
            raise invalid_archive("the artifact is empty or holds no zstd frame")
        if self._state != "magic" or self._header:
            raise invalid_archive(
                f"the zstd stream is truncated (frame {self._frames} is incomplete)"
            )
