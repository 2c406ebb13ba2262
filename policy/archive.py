"""Streaming validation of build artifacts: ``.tar``, ``.tar.gz`` and ``.tar.zst``.

:class:`ArchiveValidator` is push-based: the caller feeds the artifact's bytes as they arrive
and calls :meth:`~ArchiveValidator.finish` at the end. Memory stays bounded whatever the
archive size: nothing holds a member or the archive. It keeps one 512-byte tar header, the
data of metadata members (GNU long names, pax headers; at most :data:`MAX_METADATA_BYTES`),
the decompressor state (zlib's 32 KiB window; a zstd window of at most
:data:`MAX_ZSTD_WINDOW`) and one bounded piece of decompressed output at a time.

Every rejection is an :class:`~core.errors.S3Error` (HTTP 400) whose code names the rule
and whose message names the member and the limit:

* ``InvalidArchive``: corrupt or truncated gzip/zstd (bad CRC32/ISIZE, bad content
  checksum), bytes after the compressed stream that are not another gzip member or zstd frame,
  a tar header with a bad checksum or field, data after the end-of-archive marker, a missing
  end-of-archive marker (truncation).
* ``UnsafeArchivePath``: a member with an absolute path or a ``..`` component.
* ``UnsafeArchiveLink``: a symlink whose target resolves outside the archive root, or a hard
  link naming an absolute path or a ``..`` component.
* ``ForbiddenArchiveMember``: a character or block device, a FIFO, or a member type the
  validator does not understand (GNU sparse, multi-volume ...).
* ``ArchiveTooManyMembers``, ``ArchiveTooLarge``, ``ArchiveCompressionRatio``: the
  ``max_members``, ``max_uncompressed_bytes`` and ``max_compression_ratio`` limits of
  :class:`~policy.model.SitePolicy`, checked as bytes flow so a bomb is stopped early.
* ``MissingRequiredMember``: ``required_member`` (e.g. ``index.html``) is not a regular file
  (or hard link) of the archive; ``./index.html`` counts as ``index.html``.

The compression ratio is uncompressed bytes over compressed bytes consumed so far, checked
only once more than :data:`RATIO_GRACE_BYTES` are decompressed: a small tar is mostly zero
padding and compresses far beyond any sensible bomb limit.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import zstandard

from core.errors import S3Error
from policy.model import Compression, SitePolicy

#: Largest GNU long name / long link / pax header member accepted.
MAX_METADATA_BYTES: Final = 1024 * 1024
#: Largest zstd window accepted (zstd's own default decoder limit, 2**27).
MAX_ZSTD_WINDOW: Final = 1 << 27
#: Decompressed bytes after which the compression ratio is enforced.
RATIO_GRACE_BYTES: Final = 1024 * 1024

_BLOCK: Final = 512
_ZERO_BLOCK: Final = bytes(_BLOCK)
_GZIP_IN_SLICE: Final = 16 * 1024  # compressed bytes per zlib call: bounds unconsumed_tail
_GZIP_OUT_MAX: Final = 256 * 1024  # decompressed bytes per zlib call
_ZSTD_MAGIC: Final = 0xFD2FB528
_ZSTD_SKIPPABLE: Final = 0x184D2A50  # ..0x184D2A5F
_SEPARATORS: Final = re.compile(r"[/\\]")

_REGULAR: Final = frozenset({b"0", b"\0", b"7"})
_HARDLINK, _SYMLINK, _DIRECTORY = b"1", b"2", b"5"
_FORBIDDEN: Final = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_METADATA: Final = frozenset({b"L", b"K", b"x", b"g"})

Sink = Callable[[bytes], None]


@dataclass(frozen=True)
class ArchiveReport:
    """What a valid archive held.

    ``members`` counts real entries (files, directories, links), not metadata headers;
    ``uncompressed_bytes`` is the size of the tar stream; ``compressed_bytes`` what was fed.
    ``found_required_member`` is True when the policy names no required member.
    """

    members: int
    uncompressed_bytes: int
    compressed_bytes: int
    required_member: str | None
    found_required_member: bool


def _invalid(detail: str) -> S3Error:
    return S3Error("InvalidArchive", f"Archive integrity: {detail}.", Rule="archive_integrity")


class ArchiveValidator:
    """Validates one artifact pushed through :meth:`feed`; :meth:`finish` ends it.

    Both raise ``S3Error`` on the first broken rule (see the module docstring); after that the
    validator is spent and every call raises the same error again. ``compression`` ``"none"``
    means a plain tar. Not thread-safe; feed chunks in order, of any size.
    """

    def __init__(self, compression: Compression, policy: SitePolicy) -> None:
        self._policy = policy
        self._tar = _TarScanner(policy)
        self._compressed = 0
        self._uncompressed = 0
        self._error: S3Error | None = None
        self._finished = False
        self._stage: _Gzip | _Zstd | None
        if compression == "gzip":
            self._stage = _Gzip()
        elif compression == "zstd":
            self._stage = _Zstd()
        else:
            self._stage = None

    def feed(self, chunk: bytes) -> None:
        """Validate the next bytes of the artifact."""
        self._check_usable()
        if not chunk:
            return
        try:
            self._compressed += len(chunk)
            if self._stage is None:
                self._on_tar(chunk)
            else:
                self._stage.feed(chunk, self._on_tar)
        except S3Error as error:
            self._error = error
            raise

    def finish(self) -> ArchiveReport:
        """Check the archive ended properly and met every rule; its report if so."""
        self._check_usable()
        self._finished = True
        try:
            if self._stage is not None:
                self._stage.finish(self._on_tar)
            return self._tar.finish(self._uncompressed, self._compressed)
        except S3Error as error:
            self._error = error
            raise

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._finished:
            raise RuntimeError("the archive validator has already finished")

    def _on_tar(self, data: bytes) -> None:
        """Decompressed bytes: enforce the size and ratio limits, then scan the tar."""
        self._uncompressed += len(data)
        limit = self._policy.max_uncompressed_bytes
        if limit is not None and self._uncompressed > limit:
            raise S3Error(
                "ArchiveTooLarge",
                f"Archive rule max_uncompressed_bytes: the archive expands to more than "
                f"{limit} bytes (limit {limit}).",
                Rule="max_uncompressed_bytes",
            )
        ratio = self._policy.max_compression_ratio
        if (
            ratio is not None
            and self._stage is not None
            and self._uncompressed > RATIO_GRACE_BYTES
            and self._uncompressed > ratio * self._compressed
        ):
            raise S3Error(
                "ArchiveCompressionRatio",
                f"Archive rule max_compression_ratio: {self._compressed} compressed bytes "
                f"expanded to {self._uncompressed} bytes, a ratio above the limit of {ratio:g}.",
                Rule="max_compression_ratio",
            )
        self._tar.feed(data)


class _Gzip:
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
            return _invalid(f"bytes after gzip member {self._members - 1} are not gzip data")
        return _invalid(f"the gzip stream is corrupt ({error})")

    def finish(self, sink: Sink) -> None:
        if self._members == 0:
            raise _invalid("the artifact is empty")
        if self._inflater is not None:
            raise _invalid(f"the gzip stream is truncated (member {self._members} is incomplete)")


class _Zstd:
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
                raise _invalid(f"bytes after zstd frame {self._frames} are not a zstd frame")
            else:
                raise _invalid("the artifact is not zstd data (bad magic number)")
        elif self._state == "descriptor":
            self._decode(field, sink)
            descriptor = field[0]
            if descriptor & 0x08:
                raise _invalid(f"zstd frame {self._frames} has a reserved header bit set")
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
                raise _invalid(f"zstd frame {self._frames} has a block of reserved type")
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
                raise _invalid(f"zstd frame {self._frames} did not end where its blocks end")
            self._decoder = None
            self._state = "magic"
        else:  # skip_body
            self._state = "magic"

    def _decode(self, data: bytes, sink: Sink) -> None:
        assert self._decoder is not None
        try:
            out = self._decoder.decompress(data)
        except zstandard.ZstdError as error:
            raise _invalid(f"zstd frame {self._frames} is corrupt ({error})") from error
        if out:
            sink(out)

    def finish(self, sink: Sink) -> None:
        if self._frames == 0 and self._state == "magic" and not self._header:
            raise _invalid("the artifact is empty or holds no zstd frame")
        if self._state != "magic" or self._header:
            raise _invalid(f"the zstd stream is truncated (frame {self._frames} is incomplete)")


class _TarScanner:
    """Walks a tar stream header by header, skipping member data without keeping it.

    Understands v7, ustar (the ``prefix`` field), GNU (``L``/``K`` long names, base-256
    numbers) and pax (``x``/``g`` records ``path``, ``linkpath``, ``size``).
    """

    def __init__(self, policy: SitePolicy) -> None:
        self._policy = policy
        required = policy.required_member
        self._required = _normalise(required) if required else None
        self._found = False
        self._members = 0
        self._header = bytearray()
        self._skip = 0  # member data and padding still to pass over
        self._metadata: bytearray | None = None  # data of an L/K/x/g member being collected
        self._metadata_type = b""
        self._metadata_left = 0
        self._metadata_padding = 0
        self._next: dict[str, str] = {}  # overrides for the next member (L, K, x)
        self._global: dict[str, str] = {}  # overrides for every later member (g)
        self._ended = False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
            elif self._metadata is not None:
                take = min(self._metadata_left, end - pos)
                self._metadata += view[pos : pos + take]
                self._metadata_left -= take
                pos += take
                if self._metadata_left == 0:
                    self._metadata_done()
            elif not self._header and end - pos >= _BLOCK:
                self._block(bytes(view[pos : pos + _BLOCK]))
                pos += _BLOCK
            else:
                take = min(_BLOCK - len(self._header), end - pos)
                self._header += view[pos : pos + take]
                pos += take
                if len(self._header) == _BLOCK:
                    block, self._header = bytes(self._header), bytearray()
                    self._block(block)

    def finish(self, uncompressed: int, compressed: int) -> ArchiveReport:
        if self._skip or self._metadata is not None or self._header:
            raise _invalid("the tar stream is truncated inside a member")
        if not self._ended:
            raise _invalid("the tar stream has no end-of-archive marker (it is truncated)")
        if self._required is not None and not self._found:
            raise S3Error(
                "MissingRequiredMember",
                f"Archive rule required_member: the archive has no regular file "
                f"{self._policy.required_member!r}.",
                Rule="required_member",
                Member=self._policy.required_member or "",
            )
        return ArchiveReport(
            members=self._members,
            uncompressed_bytes=uncompressed,
            compressed_bytes=compressed,
            required_member=self._policy.required_member,
            found_required_member=self._required is None or self._found,
        )

    def _block(self, block: bytes) -> None:
        if self._ended:
            if block != _ZERO_BLOCK:
                raise _invalid("the tar stream has data after its end-of-archive marker")
            return
        if block == _ZERO_BLOCK:
            if self._next:
                raise _invalid("the tar stream ends right after a metadata header")
            self._ended = True
            return
        self._header_block(block)

    def _header_block(self, block: bytes) -> None:
        _check_header_checksum(block, self._members)
        kind = block[156:157]
        size = _number(block[124:136], "size", self._members)
        if kind in _METADATA:
            if size > MAX_METADATA_BYTES:
                raise _invalid(
                    f"a tar metadata header of type {kind.decode()!r} is {size} bytes long "
                    f"(limit {MAX_METADATA_BYTES})"
                )
            self._metadata = bytearray()
            self._metadata_type = kind
            self._metadata_left = size
            self._metadata_padding = -size % _BLOCK
            if size == 0:
                self._metadata_done()
            return

        name = _text(_cstring(block[0:100]))
        if block[257:263] == b"ustar\0":
            prefix = _text(_cstring(block[345:500]))
            if prefix:
                name = f"{prefix}/{name}"
        linkname = _text(_cstring(block[157:257]))
        overrides = {**self._global, **self._next}
        self._next = {}
        name = overrides.get("path", name)
        linkname = overrides.get("linkpath", linkname)
        if "size" in overrides:
            size = int(overrides["size"])
        self._member(name, kind, linkname, size)

    def _member(self, name: str, kind: bytes, linkname: str, size: int) -> None:
        self._members += 1
        limit = self._policy.max_members
        if limit is not None and self._members > limit:
            raise S3Error(
                "ArchiveTooManyMembers",
                f"Archive rule max_members: the archive holds more than {limit} members "
                f"(limit {limit}); member {name!r} is number {self._members}.",
                Rule="max_members",
                Member=name,
            )
        if not name:
            raise _invalid(f"tar member {self._members} has an empty name")
        _check_path(name)
        if kind in _FORBIDDEN:
            raise S3Error(
                "ForbiddenArchiveMember",
                f"Archive rule no special files: member {name!r} is a {_FORBIDDEN[kind]}.",
                Rule="no_special_files",
                Member=name,
            )
        if kind == _SYMLINK:
            _check_symlink(name, linkname)
        elif kind == _HARDLINK:
            _check_hardlink(name, linkname)
        elif kind not in _REGULAR and kind != _DIRECTORY:
            raise S3Error(
                "ForbiddenArchiveMember",
                f"Archive rule no special files: member {name!r} has the unsupported tar "
                f"type {kind.decode('latin-1')!r}.",
                Rule="no_special_files",
                Member=name,
            )
        if kind in _REGULAR or kind == _HARDLINK:
            self._skip = size + (-size % _BLOCK)
            if self._required is not None and _normalise(name) == self._required:
                self._found = True
        elif size:
            raise _invalid(f"member {name!r} of type {kind.decode()!r} declares {size} data bytes")

    def _metadata_done(self) -> None:
        assert self._metadata is not None
        data, self._metadata = bytes(self._metadata), None
        self._skip = self._metadata_padding
        if self._metadata_type == b"L":
            self._next["path"] = _text(_cstring(data))
        elif self._metadata_type == b"K":
            self._next["linkpath"] = _text(_cstring(data))
        else:
            target = self._next if self._metadata_type == b"x" else self._global
            target.update(_pax_records(data))


def _check_header_checksum(block: bytes, index: int) -> None:
    stored = _number(block[148:156], "checksum", index)
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    if stored == unsigned:
        return
    signed = unsigned - 256 * sum(1 for byte in block if byte > 127)
    signed += 256 * sum(1 for byte in block[148:156] if byte > 127)
    if stored != signed:
        raise _invalid(f"the tar header after member {index} has a bad checksum")


def _number(field: bytes, what: str, index: int) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80)."""
    if field and field[0] & 0x80:
        if field[0] != 0x80:
            raise _invalid(f"the tar header after member {index} has a negative {what}")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _invalid(f"the tar header after member {index} has a malformed {what}") from None


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``path``, ``linkpath`` and ``size`` records of a pax header (``LEN key=value\\n``)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        length_text = data[pos:space] if space > 0 else b""
        if not length_text.isdigit():
            raise _invalid("a pax header record has a malformed length")
        length = int(length_text)
        record = data[pos : pos + length]
        if length <= len(length_text) + 1 or len(record) < length or not record.endswith(b"\n"):
            raise _invalid("a pax header record is malformed")
        key, sep, value = record[len(length_text) + 1 : -1].partition(b"=")
        if not sep:
            raise _invalid("a pax header record has no '='")
        name = key.decode("utf-8", "surrogateescape")
        if name in ("path", "linkpath", "size") and value:
            text = _text(value)
            if name == "size" and not text.isdigit():
                raise _invalid(f"a pax size record is not a number: {text!r}")
            records[name] = text
        pos += length
    return records


def _cstring(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _normalise(name: str) -> str:
    """A member name without leading ``./`` or ``/`` and trailing ``/``, for matching."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def _check_path(name: str) -> None:
    """Reject an absolute name or one with a ``..`` component (``\\`` counts as ``/`` too)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise S3Error(
            "UnsafeArchivePath",
            f"Archive rule safe paths: member {name!r} has an absolute path.",
            Rule="safe_paths",
            Member=name,
        )
    if ".." in _SEPARATORS.split(name):
        raise S3Error(
            "UnsafeArchivePath",
            f"Archive rule safe paths: member {name!r} has a '..' component.",
            Rule="safe_paths",
            Member=name,
        )


def _unsafe_link(name: str, target: str, kind: str) -> S3Error:
    return S3Error(
        "UnsafeArchiveLink",
        f"Archive rule safe links: {kind} {name!r} points to {target!r}, outside the archive.",
        Rule="safe_links",
        Member=name,
    )


def _check_symlink(name: str, target: str) -> None:
    """A symlink's target, resolved from the link's directory, must stay inside the root."""
    if not target:
        raise _invalid(f"symlink {name!r} has an empty target")
    if target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        raise _unsafe_link(name, target, "symlink")
    depth = 0
    parts = _SEPARATORS.split(name.rstrip("/"))[:-1] + _SEPARATORS.split(target)
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                raise _unsafe_link(name, target, "symlink")
        else:
            depth += 1


def _check_hardlink(name: str, target: str) -> None:
    """A hard link names another member from the root: no absolute path, no ``..``."""
    if not target:
        raise _invalid(f"hard link {name!r} has an empty target")
    if (
        target.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", target)
        or ".." in _SEPARATORS.split(target)
    ):
        raise _unsafe_link(name, target, "hard link")
