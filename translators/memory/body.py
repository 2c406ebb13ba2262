"""The body of a read from the in-memory translator."""

from __future__ import annotations

from typing import Final

#: Bytes per chunk of a GET body, as the filesystem translator reads them.
READ_CHUNK: Final = 512 * 1024


class BytesBody:
    """The bytes ``start``..``start+length`` of an immutable buffer, in bounded chunks.

    It holds its own reference to the buffer, so it keeps reading the version it opened
    even after the key is overwritten or deleted. After :meth:`aclose` it yields nothing.
    """

    def __init__(self, data: bytes, start: int, length: int) -> None:
        self._view: memoryview | None = memoryview(data)[start : start + length]
        self._offset = 0

    def __aiter__(self) -> BytesBody:
        return self

    async def __anext__(self) -> bytes:
        view = self._view
        if view is None or self._offset >= len(view):
            self._view = None
            raise StopAsyncIteration
        chunk = bytes(view[self._offset : self._offset + READ_CHUNK])
        self._offset += len(chunk)
        return chunk

    async def aclose(self) -> None:
        self._view = None
