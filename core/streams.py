"""The stream types of object bodies: an upload's :class:`PayloadStream` and its
:class:`PayloadDigest`, and the :class:`ObjectBody` a read returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PayloadDigest:
    """What a fully read :class:`PayloadStream` carried: size, hex MD5 and checksums."""

    size: int
    md5_hex: str
    checksums: dict[str, str]  # algorithm -> base64 (full-object checksums of this payload)


class PayloadStream(Protocol):
    """An upload body. Iterating yields the decoded bytes; verification failures (signature,
    Content-MD5, x-amz-checksum-*, length) raise ``S3Error`` from the iterator, at the latest
    when it is exhausted. ``digest()`` is valid only after iteration finished without error;
    translators store what it returns and must not commit before then."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def digest(self) -> PayloadDigest: ...

    @property
    def declared_size(self) -> int | None:
        """The decoded length the client announced, if it announced one."""
        ...


class ObjectBody(Protocol):
    """A stream of an object's bytes. Callers must ``aclose()`` it if they stop early."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...
