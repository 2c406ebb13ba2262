"""The tar stage of archive validation: headers parsed, member data skipped, rules applied.

:class:`TarScanner` understands v7, ustar, GNU and pax headers and keeps one header block
and the data of metadata members (at most :data:`MAX_METADATA_BYTES`), never a member.
"""

from __future__ import annotations

from typing import Final

from core.errors import S3Error
from policy.archive_rules import (
    ArchiveReport,
    check_hardlink,
    check_path,
    check_symlink,
    invalid_archive,
    normalise_member,
)
from policy.model import SitePolicy

#: Largest GNU long name / long link / pax header member accepted.
MAX_METADATA_BYTES: Final = 1024 * 1024

_BLOCK: Final = 512
_ZERO_BLOCK: Final = bytes(_BLOCK)

_REGULAR: Final = frozenset({b"0", b"\0", b"7"})
_HARDLINK, _SYMLINK, _DIRECTORY = b"1", b"2", b"5"
_FORBIDDEN: Final = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_METADATA: Final = frozenset({b"L", b"K", b"x", b"g"})


class TarScanner:
    """Walks a tar stream header by header, skipping member data without keeping it.

    Understands v7, ustar (the ``prefix`` field), GNU (``L``/``K`` long names, base-256
    numbers) and pax (``x``/``g`` records ``path``, ``linkpath``, ``size``).
    """

    def __init__(self, policy: SitePolicy) -> None:
        self._policy = policy
        required = policy.required_member
        self._required = normalise_member(required) if required else None
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
            raise invalid_archive("the tar stream is truncated inside a member")
        if not self._ended:
            raise invalid_archive("the tar stream has no end-of-archive marker (it is truncated)")
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
                raise invalid_archive("the tar stream has data after its end-of-archive marker")
            return
        if block == _ZERO_BLOCK:
            if self._next:
                raise invalid_archive("the tar stream ends right after a metadata header")
            self._ended = True
            return
        self._header_block(block)

    def _header_block(self, block: bytes) -> None:
        _check_header_checksum(block, self._members)
        kind = block[156:157]
        size = _number(block[124:136], "size", self._members)
        if kind in _METADATA:
            if size > MAX_METADATA_BYTES:
                raise invalid_archive(
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
            raise invalid_archive(f"tar member {self._members} has an empty name")
        check_path(name)
        if kind in _FORBIDDEN:
            raise S3Error(
                "ForbiddenArchiveMember",
                f"Archive rule no special files: member {name!r} is a {_FORBIDDEN[kind]}.",
                Rule="no_special_files",
                Member=name,
            )
        if kind == _SYMLINK:
            check_symlink(name, linkname)
        elif kind == _HARDLINK:
            check_hardlink(name, linkname)
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
            if self._required is not None and normalise_member(name) == self._required:
                self._found = True
        elif size:
            raise invalid_archive(
                f"member {name!r} of type {kind.decode()!r} declares {size} data bytes"
            )

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
        raise invalid_archive(f"the tar header after member {index} has a bad checksum")


def _number(field: bytes, what: str, index: int) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80)."""
    if field and field[0] & 0x80:
        if field[0] != 0x80:
            raise invalid_archive(f"the tar header after member {index} has a negative {what}")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise invalid_archive(
            f"the tar header after member {index} has a malformed {what}"
        ) from None


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``path``, ``linkpath`` and ``size`` records of a pax header (``LEN key=value\\n``)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        length_text = data[pos:space] if space > 0 else b""
        if not length_text.isdigit():
            raise invalid_archive("a pax header record has a malformed length")
        length = int(length_text)
        record = data[pos : pos + length]
        if length <= len(length_text) + 1 or len(record) < length or not record.endswith(b"\n"):
            raise invalid_archive("a pax header record is malformed")
        key, sep, value = record[len(length_text) + 1 : -1].partition(b"=")
        if not sep:
            raise invalid_archive("a pax header record has no '='")
        name = key.decode("utf-8", "surrogateescape")
        if name in ("path", "linkpath", "size") and value:
            text = _text(value)
            if name == "size" and not text.isdigit():
                raise invalid_archive(f"a pax size record is not a number: {text!r}")
            records[name] = text
        pos += length
    return records


def _cstring(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
