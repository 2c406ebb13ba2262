"""The encrypted format of objects at rest, and the key ring its data keys are sealed under.

**A stream** (a whole single-part object, or one part of a multipart object) is::

    header = b"PWE1" + salt (16 random bytes)
    chunk 0 .. chunk n-1:  AES-256-GCM(chunk key, nonce_i, plaintext_i, aad_i) (text + 16-byte tag)

Plaintext is cut into :data:`CHUNK` (64 KiB) pieces; every chunk but the last is full, the
last holds 0..CHUNK bytes (an empty stream is one empty final chunk), so the stream's
ciphertext size follows from its plaintext size and back (:func:`cipher_size`,
:func:`plain_size`). The chunk key is HKDF-SHA256(data key, salt): a fresh key for each
stream, so re-uploading a part never reuses a (key, nonce) pair. ``nonce_i`` is the chunk
index (96 bits, big-endian); ``aad_i`` = magic, part number (0 for a single-part object),
chunk index and a final-chunk flag, so a chunk moved, dropped, swapped between parts or a
stream cut short fails to authenticate (:class:`TamperedError`), never yields wrong bytes.

**Data keys**: each object (each multipart upload) has a random 256-bit data key, stored
wrapped (AES-256-GCM) under a key-encryption key (KEK) with the KEK's id, so the id says
which key opens it:

* SSE-S3: KEK = HKDF(master key, "sse-s3"); id ``sse-s3@<master fingerprint>``;
* SSE-KMS: KEK = HKDF(master key, "sse-kms:" + key id) for each id of the configured key
  ring (a local stand-in for KMS); id ``sse-kms:<key id>@<master fingerprint>``;
* SSE-C: the customer's key itself wraps the data key (id ``sse-c``); the gateway keeps
  only the key's MD5, as S3 reports it.

Rotation: a :class:`Keyring` holds the current master key and any retired ones; new objects
are sealed under the current one, existing ones open under whichever their id names.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import S3Error
from core.sse import AES256, AWS_KMS, SSE_C, SseMode
from core.streams import ObjectBody, PayloadDigest, PayloadStream

MAGIC: Final = b"PWE1"
SALT_BYTES: Final = 16
HEADER: Final = len(MAGIC) + SALT_BYTES
CHUNK: Final = 64 * 1024
TAG: Final = 16
KEY_BYTES: Final = 32
_WRAP_NONCE: Final = 12


class TamperedError(S3Error):
    """Stored ciphertext that does not authenticate: altered, cut short, or reordered."""

    def __init__(self, what: str) -> None:
        super().__init__(
            "InternalError",
            f"The stored object failed its integrity check ({what}); it was altered or is "
            "corrupt, and none of its bytes were returned from the failing chunk on.",
        )


# Sizes


def chunk_count(size: int) -> int:
    """Chunks of a stream of ``size`` plaintext bytes (at least one)."""
    return max(1, -(-size // CHUNK))


def cipher_size(size: int) -> int:
    """The stored size of a stream of ``size`` plaintext bytes."""
    return HEADER + size + TAG * chunk_count(size)


def plain_size(stored: int) -> int:
    """The plaintext size of a stream stored as ``stored`` bytes; :class:`TamperedError`
    when no plaintext size encrypts to it."""
    body = stored - HEADER
    if body < TAG:
        raise TamperedError("stored size too small")
    size = body - TAG * -(-body // (CHUNK + TAG))
    if size < 0 or cipher_size(size) != stored:
        raise TamperedError("stored size impossible")
    return size


def chunk_plain_length(index: int, size: int) -> int:
    """Plaintext bytes of chunk ``index`` of a stream of ``size`` plaintext bytes."""
    return min(CHUNK, size - index * CHUNK)


def chunk_offset(index: int) -> int:
    """Where chunk ``index`` starts in its stored stream."""
    return HEADER + index * (CHUNK + TAG)


# Keys


def _hkdf(secret: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(secret)


def _aad(part_number: int, index: int, final: bool) -> bytes:
    return MAGIC + part_number.to_bytes(4, "big") + index.to_bytes(8, "big") + bytes([final])


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def wrap_key(kek: bytes, kek_id: str, data_key: bytes) -> bytes:
    """``data_key`` sealed under ``kek``, bound to ``kek_id``."""
    nonce = os.urandom(_WRAP_NONCE)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, b"pagewright-sse-dk:" + kek_id.encode())


def unwrap_key(kek: bytes, kek_id: str, wrapped: bytes) -> bytes | None:
    """The data key ``wrapped`` holds, or None when ``kek`` does not open it."""
    if len(wrapped) != _WRAP_NONCE + KEY_BYTES + TAG:
        return None
    try:
        return AESGCM(kek).decrypt(
            wrapped[:_WRAP_NONCE], wrapped[_WRAP_NONCE:], b"pagewright-sse-dk:" + kek_id.encode()
        )
    except InvalidTag:
        return None


def protected_etag(data_key: bytes, md5_hex: str) -> str:
    """The ETag of an SSE-C or SSE-KMS object or part: not the plaintext's MD5 (S3 does not
    reveal it either), but a keyed digest of it, stable for this stored object."""
    mac = hmac.new(data_key, b"etag:" + bytes.fromhex(md5_hex), hashlib.sha256)
    return mac.hexdigest()[:32]


@dataclass(frozen=True)
class Kek:
    """A key-encryption key and its id (the id is stored with every key it wraps)."""

    id: str
    key: bytes = field(repr=False)


class Keyring:
    """The KEKs of SSE-S3 and of the SSE-KMS key ids, derived from master keys.

    ``master_keys``: raw master key bytes, the current one first, retired ones after (they
    still open what they sealed). ``kms_key_ids``: the key ids SSE-KMS accepts; the first is
    the default when a request names none. Never logs or shows a key.
    """

    def __init__(self, master_keys: Sequence[bytes], kms_key_ids: Sequence[str] = ()) -> None:
        if not master_keys:
            raise ValueError("a key ring needs a master key")
        self._masters = [(hashlib.sha256(b"pwg-fp:" + m).hexdigest()[:12], m) for m in master_keys]
        self.kms_key_ids = tuple(kms_key_ids)

    def __repr__(self) -> str:
        return f"Keyring(<{len(self._masters)} master keys hidden>, kms={self.kms_key_ids})"

    def _derive(self, purpose: str, master: tuple[str, bytes]) -> Kek:
        fingerprint, secret = master
        return Kek(f"{purpose}@{fingerprint}", _hkdf(secret, b"pagewright " + purpose.encode()))

    def current(self, mode: SseMode, kms_key_id: str | None = None) -> tuple[Kek, str | None]:
        """The KEK new objects of ``mode`` are sealed under, and the KMS key id used
        (``KMS.NotFoundException`` for a key id the ring does not hold)."""
        if mode == AES256:
            return self._derive("sse-s3", self._masters[0]), None
        if mode != AWS_KMS:
            raise ValueError(mode)
        key_id = kms_key_id or (self.kms_key_ids[0] if self.kms_key_ids else None)
        if key_id is None:
            raise S3Error(
                "KMS.NotFoundException",
                "SSE-KMS needs a key id, and the gateway's key ring (kms_key_ids) is empty.",
            )
        if key_id not in self.kms_key_ids:
            raise S3Error("KMS.NotFoundException", f"Invalid keyId {key_id}")
        return self._derive(f"sse-kms:{key_id}", self._masters[0]), key_id

    def find(self, kek_id: str) -> Kek | None:
        """The KEK named ``kek_id`` (any master key of the ring), or None."""
        purpose, _, fingerprint = kek_id.rpartition("@")
        if purpose != "sse-s3" and not (
            purpose.startswith("sse-kms:") and purpose[len("sse-kms:") :] in self.kms_key_ids
        ):
            return None
        for master in self._masters:
            if master[0] == fingerprint:
                return self._derive(purpose, master)
        return None


CUSTOMER_KEK_ID: Final = "sse-c"
#: What the key ring's master secret is derived for from the master key
#: (``SecretBox.subkey``).
SSE_PURPOSE: Final = "pagewright server-side encryption"


# Streams


class EncryptingPayload:
    """A :class:`PayloadStream` of the stored form of ``inner``'s plaintext (one stream).

    Its ``declared_size`` and ``digest().size`` are the stored (ciphertext) size; the
    digest's MD5 and checksums are the plaintext's (with ``hide_md5``, for SSE-C and
    SSE-KMS, the MD5 is replaced by :func:`protected_etag`), which is what the translator
    records. Memory stays at one
    chunk plus one piece of ``inner``.
    """

    def __init__(
        self, inner: PayloadStream, data_key: bytes, part_number: int, *, hide_md5: bool
    ) -> None:
        self._inner = inner
        self._data_key = data_key
        self._part_number = part_number
        self._hide_md5 = hide_md5

    @property
    def declared_size(self) -> int | None:
        declared = self._inner.declared_size
        return None if declared is None else cipher_size(declared)

    def digest(self) -> PayloadDigest:
        plain = self._inner.digest()
        md5 = protected_etag(self._data_key, plain.md5_hex) if self._hide_md5 else plain.md5_hex
        return PayloadDigest(cipher_size(plain.size), md5, dict(plain.checksums))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        salt = os.urandom(SALT_BYTES)
        aead = AESGCM(_hkdf(self._data_key, b"pagewright-sse-chunks", salt))
        yield MAGIC + salt
        pending = b""  # at most CHUNK bytes not yet known to be followed by more
        index = 0
        async for piece in self._inner:
            if not piece:
                continue
            data = pending + piece if pending else piece
            view = memoryview(data)
            ready = (len(view) - 1) // CHUNK  # chunks known not to be the last
            out = []
            for n in range(ready):
                chunk = view[n * CHUNK : (n + 1) * CHUNK]
                out.append(
                    aead.encrypt(_nonce(index), chunk, _aad(self._part_number, index, False))
                )
                index += 1
            pending = bytes(view[ready * CHUNK :])
            if out:
                yield b"".join(out)
        yield aead.encrypt(_nonce(index), pending, _aad(self._part_number, index, True))


@dataclass(frozen=True)
class Segment:
    """The share of one stored stream a read decrypts: chunks ``first..last`` of a stream of
    ``size`` plaintext bytes (part ``part_number``), dropping ``skip`` bytes of the first
    and yielding ``take`` bytes. ``header``: the stream's header when the read starts at
    chunk ``first`` (it was fetched apart); None when the read starts at the stream's
    header (the chunks before ``first`` are then read and dropped)."""

    part_number: int
    size: int
    first: int
    last: int
    skip: int
    take: int
    header: bytes | None = None

    def end(self) -> int:
        """Where, in its stored stream, the last byte this segment reads ends (exclusive)."""
        return chunk_offset(self.last) + chunk_plain_length(self.last, self.size) + TAG


def segment(part_number: int, size: int, start: int, end: int) -> Segment:
    """The segment reading plaintext ``start..end`` (inclusive) of a stream of ``size``
    bytes, from the header on (see :class:`Segment`)."""
    if size == 0:
        return Segment(part_number, 0, 0, 0, 0, 0)
    return Segment(part_number, size, start // CHUNK, end // CHUNK, start % CHUNK, end - start + 1)


@dataclass(frozen=True)
class Stream:
    """One stored stream of an object: its part number (0: a single-part object), its
    plaintext size and its stored size."""

    part_number: int
    size: int
    stored: int


#: A read starting further than this into its first stream fetches that stream's header
#: apart rather than reading (and dropping) the chunks before the range.
SKIP_LIMIT: Final = 1024 * 1024


@dataclass(frozen=True)
class ReadPlan:
    """What a read of plaintext ``start..end`` needs: stored bytes ``stored_start ..
    stored_end`` (inclusive), decrypted as ``segments``; ``header_at`` is where the first
    stream's header must be fetched from first (None: the read includes it)."""

    stored_start: int
    stored_end: int
    segments: list[Segment]
    header_at: int | None


def plan_read(streams: Sequence[Stream], start: int, end: int) -> ReadPlan:
    """The stored bytes and segments that give plaintext ``start..end`` of ``streams``
    stored back to back (``0 <= start <= end < total plaintext size``)."""
    plain_at = stored_at = 0
    first_index = last_index = -1
    offsets: list[tuple[int, int]] = []
    for index, stream in enumerate(streams):
        offsets.append((plain_at, stored_at))
        if first_index < 0 and start < plain_at + stream.size:
            first_index = index
        if end < plain_at + stream.size:
            last_index = index
            break
        plain_at += stream.size
        stored_at += stream.stored
    if first_index < 0 or last_index < 0:
        raise ValueError("range outside the streams")
    segments = []
    for index in range(first_index, last_index + 1):
        stream = streams[index]
        plain_offset = offsets[index][0]
        local_start = start - plain_offset if index == first_index else 0
        local_end = end - plain_offset if index == last_index else stream.size - 1
        segments.append(segment(stream.part_number, stream.size, local_start, local_end))
    first = segments[0]
    first_stored = offsets[first_index][1]
    header_at = None
    stored_start = first_stored
    if chunk_offset(first.first) - HEADER > SKIP_LIMIT:
        header_at = first_stored
        stored_start = first_stored + chunk_offset(first.first)
    stored_end = offsets[last_index][1] + segments[-1].end() - 1
    return ReadPlan(stored_start, stored_end, segments, header_at)


class DecryptingBody:
    """The plaintext of ``segments`` read in order from ``inner`` (their stored bytes back
    to back). A chunk that does not authenticate raises :class:`TamperedError` before any
    of its bytes are yielded. Memory: one chunk plus one piece of ``inner``."""

    def __init__(self, inner: ObjectBody, data_key: bytes, segments: Sequence[Segment]) -> None:
        self._inner = inner
        self._data_key = data_key
        self._segments = list(segments)
        self._buffer = bytearray()
        self._pieces = inner.__aiter__()
        self._iterator: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterator is None:
            self._iterator = self._stream()
        return self._iterator

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def _read(self, length: int) -> bytes:
        while len(self._buffer) < length:
            try:
                piece = await self._pieces.__anext__()
            except StopAsyncIteration:
                raise TamperedError("stored stream cut short") from None
            self._buffer += piece
        data = bytes(self._buffer[:length])
        del self._buffer[:length]
        return data

    async def first_chunk(self) -> bytes:
        """Decrypt and hold the first chunk now (so a wrong key or tampering surfaces before
        a reply starts); it is yielded first."""
        try:
            return await self.__aiter__().__anext__()
        except StopAsyncIteration:
            return b""

    async def _stream(self) -> AsyncIterator[bytes]:
        try:
            for seg in self._segments:
                async for plain in self._decrypt(seg):
                    if plain:
                        yield plain
        finally:
            await self._inner.aclose()

    async def _decrypt(self, seg: Segment) -> AsyncIterator[bytes]:
        if seg.header is None:
            header = await self._read(HEADER)
            for index in range(seg.first):
                await self._read(chunk_plain_length(index, seg.size) + TAG)
        else:
            header = seg.header
        if header[: len(MAGIC)] != MAGIC or len(header) != HEADER:
            raise TamperedError("bad stream header")
        aead = AESGCM(_hkdf(self._data_key, b"pagewright-sse-chunks", header[len(MAGIC) :]))
        final_index = chunk_count(seg.size) - 1
        skip, remaining = seg.skip, seg.take
        for index in range(seg.first, seg.last + 1):
            stored = await self._read(chunk_plain_length(index, seg.size) + TAG)
            try:
                plain = aead.decrypt(
                    _nonce(index), stored, _aad(seg.part_number, index, index == final_index)
                )
            except InvalidTag:
                raise TamperedError(f"chunk {index} of part {seg.part_number}") from None
            piece = plain[skip : skip + remaining]
            skip = 0
            remaining -= len(piece)
            yield piece


class HeldFirstBody:
    """A :class:`DecryptingBody` whose first chunk was already decrypted: yields it, then
    the rest."""

    def __init__(self, body: DecryptingBody, first: bytes) -> None:
        self._body = body
        self._first = first

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        async for piece in self._body.__aiter__():
            yield piece

    async def aclose(self) -> None:
        await self._body.aclose()


def mode_of(value: str) -> SseMode:
    """A stored mode name, checked."""
    if value == AES256:
        return AES256
    if value == AWS_KMS:
        return AWS_KMS
    if value == SSE_C:
        return SSE_C
    raise TamperedError("unknown encryption mode")
