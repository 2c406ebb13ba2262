"""Streaming validation of build artifacts: ``.tar``, ``.tar.gz`` and ``.tar.zst``.

:class:`ArchiveValidator` is push-based: the caller feeds the artifact's bytes as they arrive
and calls :meth:`~ArchiveValidator.finish` at the end. Memory stays bounded whatever the
archive size: nothing holds a member or the archive. It keeps one 512-byte tar header, the
data of metadata members (GNU long names, pax headers; at most
:data:`policy.archive_tar.MAX_METADATA_BYTES`), the decompressor state (zlib's 32 KiB window;
a zstd window of at most :data:`policy.archive_codecs.MAX_ZSTD_WINDOW`) and one bounded piece
of decompressed output at a time.

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

The stages are modules of their own: :mod:`policy.archive_codecs` (gzip, zstd),
:mod:`policy.archive_tar` (the tar headers) and :mod:`policy.archive_rules` (the member
rules and the report).

The compression ratio is uncompressed bytes over compressed bytes consumed so far, checked
only once more than :data:`RATIO_GRACE_BYTES` are decompressed: a small tar is mostly zero
padding and compresses far beyond any sensible bomb limit.
"""

from __future__ import annotations

from typing import Final

from core.errors import S3Error
from policy.archive_codecs import GzipStage, ZstdStage
from policy.archive_rules import ArchiveReport
from policy.archive_tar import TarScanner
from policy.model import Compression, SitePolicy

#: Decompressed bytes after which the compression ratio is enforced.
RATIO_GRACE_BYTES: Final = 1024 * 1024


class ArchiveValidator:
    """Validates one artifact pushed through :meth:`feed`; :meth:`finish` ends it.

    Both raise ``S3Error`` on the first broken rule (see the module docstring); after that the
    validator is spent and every call raises the same error again. ``compression`` ``"none"``
    means a plain tar. Not thread-safe; feed chunks in order, of any size.
    """

    def __init__(self, compression: Compression, policy: SitePolicy) -> None:
        self._policy = policy
        self._tar = TarScanner(policy)
        self._compressed = 0
        self._uncompressed = 0
        self._error: S3Error | None = None
        self._finished = False
        self._stage: GzipStage | ZstdStage | None
        if compression == "gzip":
            self._stage = GzipStage()
        elif compression == "zstd":
            self._stage = ZstdStage()
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
