"""Immutable blob files of the filesystem translator.

A blob is written once under ``tmp/<id>``, fsynced, renamed to ``blobs/<id[:2]>/<id>`` and its
directory fsynced; only then may a catalogue row name it. Blobs are never modified, so a reader
that opened one keeps a consistent version even after the row moves on and the file is
unlinked. Names are random, never derived from keys, so no key can address a path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import anyio.to_thread

from core.errors import S3Error
from core.streams import PayloadDigest, PayloadStream

#: Buffered upload bytes are written out (in a worker thread) once this much has gathered.
FLUSH_SIZE: Final = 1024 * 1024
#: Bytes per chunk of a GET body.
READ_CHUNK: Final = 512 * 1024
#: Reads up to this size run on the event loop: from the page cache they take microseconds.
INLINE_READ: Final = 128 * 1024
_COPY_CHUNK: Final = 1024 * 1024


class BlobStore:
    """The ``blobs/`` and ``tmp/`` directories under a root; all methods here block."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        self.fsync = fsync

    def prepare(self) -> None:
        """Create the directories and remove every temp file (writes a crash interrupted)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        for index in range(256):
            (self.blobs / f"{index:02x}").mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def remove_orphans(self, referenced: set[str]) -> int:
        """Unlink every blob no row references (a crash between rename and commit)."""
        removed = 0
        for directory in self.blobs.iterdir():
            for entry in os.scandir(directory):
                if entry.name not in referenced:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def sweep(self, referenced: Callable[[], set[str]], older_than: float, limit: int) -> int:
        """Unlink temp files and unreferenced blobs modified before ``older_than`` (a POSIX
        time), at most ``limit`` of them. Safe while serving: ``referenced`` (the blob names
        rows name) is read before the scan, to pass over live blobs, and again after it,
        so a blob that gained a row meanwhile is kept; a blob published since the cutoff
        is younger than it."""
        live = referenced()
        candidates: list[tuple[str, str]] = []
        for directory in [self.tmp, *sorted(self.blobs.iterdir())]:
            in_tmp = directory == self.tmp
            with os.scandir(directory) as entries:
                for entry in entries:
                    if not in_tmp and entry.name in live:
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat().st_mtime < older_than:
                            candidates.append((entry.name, entry.path))
                    if len(candidates) >= limit:
                        break
            if len(candidates) >= limit:
                break
        if not candidates:
            return 0
        live = referenced()
        removed = 0
        for name, path in candidates:
            if name in live and not path.startswith(f"{self.tmp}/"):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
        return removed

    def path(self, name: str) -> str:
        return f"{self.blobs}/{name[:2]}/{name}"

    def remove(self, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(name))

    def open(self, name: str) -> int:
        """A read-only fd on blob ``name``; FileNotFoundError if it was just replaced."""
        return os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def sync_directory(self, path: str) -> None:
        if not self.fsync:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class BlobWriter:
    """One new blob being written: buffered bytes, then a temp file, then :meth:`publish`.

    Callers must call :meth:`discard` if anything fails before ``publish`` returned; it is
    safe to call at any time and removes the temp file.
    """

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.name = uuid.uuid4().hex
        self.tmp_path = f"{store.tmp}/{self.name}"
        self.size = 0
        self._fd: int | None = None
        self._buffer = bytearray()

    async def receive(self, body: PayloadStream) -> PayloadDigest:
        """Read ``body`` to its end into this blob; the payload's digest once verified."""
        async for chunk in body:
            self._buffer += chunk
            self.size += len(chunk)
            if len(self._buffer) >= FLUSH_SIZE:
                await anyio.to_thread.run_sync(self.flush)
        return body.digest()

    def flush(self) -> None:
        """Write buffered bytes to the temp file, creating it on first use."""
        if self._fd is None:
            self._fd = os.open(
                self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
        view = memoryview(self._buffer)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        view.release()
        self._buffer.clear()

    def fill_from(self, sources: Iterable[str]) -> None:
        """Append whole blobs (multipart parts) using in-kernel copies where possible."""
        self.flush()
        assert self._fd is not None
        for name in sources:
            source = self.store.open(name)
            try:
                self.size += _copy_all(source, self._fd)
            finally:
                os.close(source)

    def read_back(self) -> Iterable[bytes]:
        """The bytes written so far, in chunks (to compute a checksum the client did not send)."""
        self.flush()
        assert self._fd is not None
        with open(self.tmp_path, "rb") as handle:
            while chunk := handle.read(_COPY_CHUNK):
                yield chunk

    def publish(self) -> str:
        """Make the blob durable under its final name; returns that name."""
        self.flush()
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            if self.store.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        final = self.store.path(self.name)
        os.rename(self.tmp_path, final)
        try:
            self.store.sync_directory(os.path.dirname(final))
        except BaseException:
            # Not durable, so not published: no catalogue row may name it.
            with contextlib.suppress(OSError):
                os.unlink(final)
            raise
        return self.name

    def discard(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


def _copy_all(source: int, target: int) -> int:
    size = os.fstat(source).st_size
    offset = 0
    try:
        while offset < size:
            copied = os.copy_file_range(source, target, size - offset)
            if copied == 0:
                break
            offset += copied
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while offset < size:
        chunk = os.pread(source, min(_COPY_CHUNK, size - offset), offset)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view) :]
        offset += len(chunk)
    if offset != size:
        raise S3Error("InternalError", "A stored part ended early.")
    return size


class BlobBody:
    """The bytes ``start``..``start+length`` of an open blob, in bounded chunks.

    Owns ``fd``: closes it when exhausted, on :meth:`aclose`, or when garbage-collected.
    """

    def __init__(self, fd: int, start: int, length: int) -> None:
        self._fd: int | None = fd
        self._offset = start
        self._remaining = length

    def __aiter__(self) -> BlobBody:
        return self

    async def __anext__(self) -> bytes:
        fd = self._fd
        if fd is None or self._remaining <= 0:
            self._close()
            raise StopAsyncIteration
        want = min(READ_CHUNK, self._remaining)
        if want <= INLINE_READ:
            chunk = os.pread(fd, want, self._offset)
        else:
            chunk = await anyio.to_thread.run_sync(os.pread, fd, want, self._offset)
        if not chunk:
            self._close()
            raise S3Error("InternalError", "A stored object ended early.")
        self._offset += len(chunk)
        self._remaining -= len(chunk)
        if self._remaining <= 0:
            self._close()
        return chunk

    async def aclose(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __del__(self) -> None:
        self._close()
