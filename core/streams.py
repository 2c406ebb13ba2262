"""The stream types of object bodies: an upload's :class:`PayloadStream` and its
:class:`PayloadDigest`, and the :class:`ObjectBody` a read returns; the two bases payload
implementations share (:class:`PassThroughPayload`, :class:`ReadOncePayload`); and bodies
of bytes already in memory (:class:`BytesBody`, :class:`EmptyBody`), the source of a
``core.digest.HashingPayload`` when the gateway writes a small record of its own."""

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


class PassThroughPayload:
    """A :class:`PayloadStream` that wraps ``inner``: its declared size and digest are
    ``inner``'s; a subclass writes :meth:`_stream`, which reads ``inner`` and yields its
    chunks unchanged (checking what it must on the way, raising from the iterator)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: PayloadStream) -> None:
        self._inner = inner

    @property
    def declared_size(self) -> int | None:
        return self._inner.declared_size

    def digest(self) -> PayloadDigest:
        return self._inner.digest()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    def _stream(self) -> AsyncIterator[bytes]:
        raise NotImplementedError


class ReadOncePayload:
    """A :class:`PayloadStream` that can be iterated once (a second ``__aiter__`` raises
    ``RuntimeError``) and whose digest is known only once :meth:`_stream` has run to its
    end and called :meth:`_finish`; ``digest()`` before then raises ``RuntimeError``.
    A subclass writes ``declared_size`` and :meth:`_stream`."""

    __slots__ = ("_digest", "_started")

    def __init__(self) -> None:
        self._digest: PayloadDigest | None = None
        self._started = False

    def digest(self) -> PayloadDigest:
        if self._digest is None:
            raise RuntimeError("digest() before the payload was fully and successfully read")
        return self._digest

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a payload can be read only once")
        self._started = True
        return self._stream()

    def _finish(self, digest: PayloadDigest) -> None:
        self._digest = digest

    def _stream(self) -> AsyncIterator[bytes]:
        raise NotImplementedError


class BytesBody:
    """An :class:`ObjectBody` of a few bytes in memory, yielded as one chunk, once (after
    :meth:`aclose`, nothing)."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> BytesBody:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data

    async def aclose(self) -> None:
        self._data = None


class EmptyBody:
    """An :class:`ObjectBody` that yields nothing."""

    def __aiter__(self) -> EmptyBody:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration

    async def aclose(self) -> None:
        return None
