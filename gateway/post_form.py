"""A POST Object form (``multipart/form-data``) read as it streams.

:class:`FormReader` feeds the request body to python-multipart's push parser. The fields
before the ``file`` part are kept (at most :data:`MAX_FIELD_BYTES` of them, as S3 allows:
``MaxPostPreDataLengthExceededError`` beyond), so the policy and signature can be checked
before a byte of the file is stored; the file part is then streamed, never buffered whole,
and whatever follows it is ignored (S3 ignores fields after the file). Field names are
case-insensitive (kept lower-cased); values are UTF-8.

:class:`FormFilePayload` is the file as the ``PayloadStream`` a Backend stores: it digests
the bytes (MD5 for the ETag, CRC64NVME as S3 adds) and enforces the policy's
``content-length-range`` and the gateway's object size limit while they flow
(``EntityTooLarge`` as soon as the upper bound is passed, ``EntityTooSmall`` at the end),
so a translator, which commits only after a full iteration, never stores a refused file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Final

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from core import checksums
from core.digest import Digester
from core.errors import S3Error
from core.streams import ReadOncePayload

#: S3's limit on the form fields before the file (names, values and part headers).
MAX_FIELD_BYTES: Final = 20 * 1024
FILE_FIELD: Final = "file"


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a POST Object's ``Content-Type``; S3's 412
    ``PreconditionFailed`` when the body is not ``multipart/form-data``."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind.lower() != b"multipart/form-data" or not boundary:
        raise S3Error(
            "PreconditionFailed",
            Condition="Bucket POST must be of the enclosure-type multipart/form-data",
        )
    return boundary


def malformed(detail: str) -> S3Error:
    return S3Error(
        "MalformedPOSTRequest",
        f"The body of your POST request is not well-formed multipart/form-data: {detail}",
    )


@dataclass(frozen=True)
class FormFile:
    """The file part's headers: its ``filename`` (for ``${filename}``) and Content-Type."""

    filename: str
    content_type: str | None


class FormReader:
    """Reads one form from ``source`` (raw body chunks) with ``boundary``."""

    def __init__(self, source: AsyncIterator[bytes], boundary: bytes) -> None:
        self._source = source
        self._events: list[tuple[str, bytes]] = []
        callbacks = {
            "on_part_begin": lambda: self._events.append(("begin", b"")),
            "on_header_field": lambda d, s, e: self._events.append(("name", d[s:e])),
            "on_header_value": lambda d, s, e: self._events.append(("value", d[s:e])),
            "on_headers_finished": lambda: self._events.append(("headers", b"")),
            "on_part_data": lambda d, s, e: self._events.append(("data", d[s:e])),
            "on_part_end": lambda: self._events.append(("end", b"")),
        }
        self._parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        self._headers: list[list[bytes]] = []
        self._part: str | None = None
        self._values: dict[str, bytearray] = {}
        self._field_bytes = 0
        self.file: FormFile | None = None
        self._file_done = False

    async def fields(self) -> dict[str, str]:
        """The fields before the file part, once its headers have arrived; ``InvalidArgument``
        when the form holds no file, ``MalformedPOSTRequest`` when it is not a form."""
        while self.file is None:
            if not await self._feed():
                raise S3Error(
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                    ArgumentName=FILE_FIELD,
                    ArgumentValue="0",
                )
            self._take_field_events()
        fields: dict[str, str] = {}
        for name, value in self._values.items():
            try:
                fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise malformed(f"the field {name!r} is not UTF-8") from None
        return fields

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes (after :meth:`fields`); ``IncompleteBody`` when the body ends
        inside the file."""
        while True:
            while self._events:
                kind, data = self._events.pop(0)
                if kind == "data" and data:
                    yield data
                elif kind == "end":
                    self._file_done = True
                    self._events.clear()
                    return
            if not await self._feed():
                raise S3Error("IncompleteBody", "The request body ended inside the file.")

    async def _feed(self) -> bool:
        """Parse the next body chunk into events; False at the end of the body."""
        async for chunk in self._source:
            try:
                self._parser.write(chunk)
            except MultipartParseError as error:
                raise malformed(str(error)) from None
            return True
        return False

    def _take_field_events(self) -> None:
        while self._events and self.file is None:
            kind, data = self._events.pop(0)
            if kind == "begin":
                self._headers, self._part = [], None
            elif kind == "name":
                self._headers.append([data, b""])
                self._count(len(data))
            elif kind == "value":
                if self._headers:
                    self._headers[-1][1] += data
                self._count(len(data))
            elif kind == "headers":
                self._start_part()
            elif kind == "data" and self._part is not None:
                self._values[self._part] += data
                self._count(len(data))

    def _count(self, size: int) -> None:
        self._field_bytes += size
        if self._field_bytes > MAX_FIELD_BYTES:
            raise S3Error("MaxPostPreDataLengthExceededError")

    def _start_part(self) -> None:
        headers = {name.decode("latin-1").lower(): value for name, value in self._headers}
        _, options = parse_options_header(headers.get("content-disposition", b""))
        raw_name = options.get(b"name")
        if raw_name is None:
            raise malformed("a part has no Content-Disposition name")
        name = raw_name.decode("utf-8", "replace").lower()
        if name == FILE_FIELD:
            filename = options.get(b"filename", b"").decode("utf-8", "replace")
            content_type = headers.get("content-type")
            self.file = FormFile(
                filename, None if content_type is None else content_type.decode("latin-1")
            )
            return
        if name in self._values:
            raise S3Error(
                "InvalidArgument",
                f"The form field {name!r} is given more than once.",
                ArgumentName=name,
            )
        self._values[name] = bytearray()
        self._part = name


class FormFilePayload(ReadOncePayload):
    """The file part as a ``PayloadStream`` (see the module docstring): ``minimum`` and
    ``maximum`` bytes (inclusive) from the policy's content-length-range, ``limit`` the
    gateway's largest object. ``expected``: the form's ``x-amz-checksum-<algorithm>`` field
    (algorithm, base64 value), checked against the file once it is read (``BadDigest``
    before anything is stored); that algorithm is then the object's checksum."""

    __slots__ = ("_algorithms", "_chunks", "_expected", "_limit", "_maximum", "_minimum")

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        minimum: int = 0,
        maximum: int | None = None,
        limit: int,
        algorithms: Iterable[str] = ("CRC64NVME",),
        expected: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._minimum = minimum
        self._maximum = maximum
        self._limit = limit
        self._expected = expected
        self._algorithms = (expected[0],) if expected is not None else tuple(algorithms)

    @property
    def declared_size(self) -> int | None:
        return None  # a form announces no file length

    async def _stream(self) -> AsyncIterator[bytes]:
        digester = Digester(self._algorithms)
        async for data in self._chunks:
            digester.update(data)
            if self._maximum is not None and digester.size > self._maximum:
                raise S3Error(
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                    ProposedSize=str(digester.size),
                    MaxSizeAllowed=str(self._maximum),
                )
            if digester.size > self._limit:
                raise S3Error(
                    "EntityTooLarge",
                    ProposedSize=str(digester.size),
                    MaxSizeAllowed=str(self._limit),
                )
            yield data
        if digester.size < self._minimum:
            raise S3Error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=str(digester.size),
                MinSizeAllowed=str(self._minimum),
            )
        result = digester.result()
        if self._expected is not None:
            algorithm, value = self._expected
            if checksums.decode(algorithm, result.checksums[algorithm]) != checksums.decode(
                algorithm, value
            ):
                raise S3Error(
                    "BadDigest",
                    f"The {checksums.header_name(algorithm)} you specified did not match the "
                    "calculated checksum.",
                )
        self._finish(result)
