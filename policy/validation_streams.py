"""The streams of artifact integrity: a validating upload body and a re-hashing download body.

:class:`ValidatingPayload` feeds an upload to an archive validator and a SHA256 hasher as it
streams and raises a broken rule from its iterator, so a translator (which commits only after
a full, error-free iteration) stores nothing. :class:`RehashingBody` checks a download
against the artifact's stored SHA256 and raises :class:`CorruptArtifactError` before the
last chunk, so a consumer never receives wrong bytes presented as complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Final

import anyio

from core import checksums
from core.errors import S3Error
from core.streams import ObjectBody, PassThroughPayload, PayloadDigest, PayloadStream
from policy.archive import ArchiveValidator
from policy.archive_rules import ArchiveReport
from translators.base import ObjectInfo

#: The S3 error codes of archive rules (see :mod:`policy.archive`).
ARCHIVE_ERRORS: Final = frozenset(
    {
        "InvalidArchive",
        "UnsafeArchivePath",
        "UnsafeArchiveLink",
        "ForbiddenArchiveMember",
        "ArchiveTooManyMembers",
        "ArchiveTooLarge",
        "ArchiveCompressionRatio",
        "MissingRequiredMember",
    }
)


class CorruptArtifactError(S3Error):
    """Raised from a GET body whose bytes do not match the artifact's stored SHA256."""

    def __init__(self, site: str, key: str, expected: str, actual: str) -> None:
        super().__init__(
            "InternalError",
            f"The stored artifact {key!r} of site {site!r} is corrupt "
            f"(SHA256 {actual}, expected {expected}).",
        )
        self.site = site
        self.key = key
        self.expected = expected
        self.actual = actual


def sha256_hex(info: ObjectInfo) -> str | None:
    """The object's full-object SHA256 in hex, or None (absent, composite or malformed)."""
    value = info.checksums.get("SHA256")
    if value is None or info.checksum_type == "COMPOSITE" or "-" in value:
        return None
    try:
        return checksums.decode("SHA256", value).hex()
    except S3Error:
        return None


class ValidatingPayload(PassThroughPayload):
    """A :class:`~translators.base.PayloadStream` over ``source`` that validates and hashes.

    Each chunk goes to ``validator`` (None: hash only) and a SHA256 hasher before it is
    yielded. When ``source`` is exhausted, the validator's :meth:`finish` runs and the SHA256
    is compared with the one ``source`` computed from the client's checksum, if any; every
    failure is raised from the iterator. :meth:`digest` is ``source``'s digest with
    ``SHA256`` added; :attr:`report` the validator's report (None when not validated).
    ``on_reject`` is told of each rule the archive broke, before the error is raised.
    """

    def __init__(
        self,
        source: PayloadStream,
        validator: ArchiveValidator | None,
        *,
        on_reject: Callable[[S3Error], None] | None = None,
    ) -> None:
        super().__init__(source)
        self._validator = validator
        self._on_reject = on_reject
        self._digest: PayloadDigest | None = None
        self.report: ArchiveReport | None = None

    async def _stream(self) -> AsyncIterator[bytes]:
        sha = hashlib.sha256()
        validator = self._validator
        try:
            async for chunk in self._inner:
                sha.update(chunk)
                if validator is not None:
                    validator.feed(chunk)
                yield chunk
            digest = self._inner.digest()
            if validator is not None:
                self.report = validator.finish()
        except S3Error as error:
            if validator is not None and error.code in ARCHIVE_ERRORS and self._on_reject:
                self._on_reject(error)
            raise
        ours = checksums.encode(sha.digest())
        theirs = digest.checksums.get("SHA256")
        if theirs is not None and theirs != ours:
            raise S3Error(
                "BadDigest",
                "The x-amz-checksum-sha256 you specified did not match the calculated checksum.",
            )
        self._digest = replace(digest, checksums={**digest.checksums, "SHA256": ours})

    def digest(self) -> PayloadDigest:
        if self._digest is None:
            raise RuntimeError("digest() before the payload was fully and successfully read")
        return self._digest


class RehashingBody:
    """An :class:`~translators.base.ObjectBody` that checks ``source`` against a SHA256.

    Chunks are yielded one behind: the last one is held until the whole body hashed to
    ``expected_hex``. On a mismatch ``on_corrupt(actual_hex)`` is awaited, then
    :class:`CorruptArtifactError` is raised, so a consumer never receives the full length.
    """

    def __init__(
        self,
        source: ObjectBody,
        *,
        site: str,
        key: str,
        expected_hex: str,
        on_corrupt: Callable[[str], Awaitable[None]],
    ) -> None:
        self._source = source
        self._site = site
        self._key = key
        self._expected = expected_hex
        self._on_corrupt = on_corrupt

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        sha = hashlib.sha256()
        held: bytes | None = None
        async for chunk in self._source:
            sha.update(chunk)
            if held is not None:
                yield held
            held = chunk
        actual = sha.hexdigest()
        if actual != self._expected:
            with anyio.CancelScope(shield=True):
                await self._on_corrupt(actual)
            raise CorruptArtifactError(self._site, self._key, self._expected, actual)
        if held is not None:
            yield held

    async def aclose(self) -> None:
        await self._source.aclose()
