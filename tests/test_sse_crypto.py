"""The encrypted format (policy.sse_crypto): sizes, read plans, key ring rotation, and that
reordered, truncated, moved or re-keyed chunks never decrypt."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator

import anyio
import pytest

from core.digest import Digester
from core.errors import S3Error
from core.streams import PayloadDigest
from policy.sse_crypto import (
    CHUNK,
    HEADER,
    TAG,
    DecryptingBody,
    EncryptingPayload,
    Keyring,
    Segment,
    Stream,
    TamperedError,
    chunk_offset,
    cipher_size,
    plain_size,
    plan_read,
    unwrap_key,
    wrap_key,
)


class Payload:
    def __init__(self, data: bytes, piece: int = 10_000) -> None:
        self.data = data
        self.piece = piece
        self._digest: PayloadDigest | None = None

    @property
    def declared_size(self) -> int | None:
        return len(self.data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        digester = Digester(["CRC32"])
        for at in range(0, len(self.data), self.piece):
            piece = self.data[at : at + self.piece]
            digester.update(piece)
            yield piece
        self._digest = digester.result()

    def digest(self) -> PayloadDigest:
        assert self._digest is not None
        return self._digest


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for at in range(0, len(self.data), 7777):
            yield self.data[at : at + 7777]

    async def aclose(self) -> None:
        return None


def encrypt(data: bytes, key: bytes, part: int = 0) -> bytes:
    async def run() -> bytes:
        payload = EncryptingPayload(Payload(data), key, part, hide_md5=False)
        out = b"".join([piece async for piece in payload])
        assert len(out) == cipher_size(len(data)) == payload.digest().size
        return out

    return anyio.run(run)


def decrypt(stored: bytes, key: bytes, segments: list[Segment]) -> bytes:
    async def run() -> bytes:
        body = DecryptingBody(Body(stored), key, segments)
        return b"".join([piece async for piece in body])

    return anyio.run(run)


def whole(size: int, part: int = 0) -> list[Segment]:
    last = max(0, size - 1) // CHUNK
    return [Segment(part, size, 0, last, 0, size)]


@pytest.mark.parametrize(
    "size", [0, 1, 15, 16, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 9]
)
def test_sizes_round_trip(size: int) -> None:
    assert plain_size(cipher_size(size)) == size


@pytest.mark.parametrize("stored", [0, HEADER, HEADER + TAG - 1, HEADER + CHUNK + TAG + 5])
def test_impossible_sizes(stored: int) -> None:
    with pytest.raises(TamperedError):
        plain_size(stored)


def test_read_plans_match_brute_force() -> None:
    rng = random.Random(7)
    for _ in range(300):
        sizes = [
            rng.choice([0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 5, 20 * CHUNK + 3]) for _ in range(3)
        ]
        sizes[0] = max(sizes[0], 1)
        streams = []
        offset = 0
        layout = []
        for number, size in enumerate(sizes, 1):
            streams.append(Stream(number, size, cipher_size(size)))
            layout.append((offset, size))
            offset += size
        total = offset
        start = rng.randrange(total)
        end = rng.randrange(start, total)
        plan = plan_read(streams, start, end)
        assert sum(s.take for s in plan.segments) == end - start + 1
        assert plan.stored_end < sum(s.stored for s in streams)
        if plan.header_at is not None:
            assert plan.stored_start - plan.header_at == chunk_offset(plan.segments[0].first)


def test_encrypt_decrypt_and_ranges() -> None:
    key = os.urandom(32)
    data = os.urandom(3 * CHUNK + 11)
    stored = encrypt(data, key)
    assert decrypt(stored, key, whole(len(data))) == data
    plan = plan_read([Stream(0, len(data), len(stored))], CHUNK - 2, 2 * CHUNK + 2)
    piece = stored[plan.stored_start : plan.stored_end + 1]
    assert decrypt(piece, key, plan.segments) == data[CHUNK - 2 : 2 * CHUNK + 3]


def test_reordered_chunks_fail() -> None:
    key = os.urandom(32)
    data = os.urandom(3 * CHUNK)
    stored = encrypt(data, key)
    one = slice(chunk_offset(0), chunk_offset(1))
    two = slice(chunk_offset(1), chunk_offset(2))
    swapped = stored[:HEADER] + stored[two] + stored[one] + stored[chunk_offset(2) :]
    with pytest.raises(TamperedError):
        decrypt(swapped, key, whole(len(data)))


def test_truncation_to_a_chunk_boundary_fails() -> None:
    key = os.urandom(32)
    data = os.urandom(3 * CHUNK)
    stored = encrypt(data, key)[: chunk_offset(2)]
    # Read as a two-chunk stream: its last chunk was not written as the final one.
    with pytest.raises(TamperedError):
        decrypt(stored, key, whole(2 * CHUNK))


def test_a_part_moved_to_another_number_fails() -> None:
    key = os.urandom(32)
    data = os.urandom(100)
    stored = encrypt(data, key, part=2)
    assert decrypt(stored, key, whole(100, part=2)) == data
    with pytest.raises(TamperedError):
        decrypt(stored, key, whole(100, part=3))


def test_another_data_key_fails() -> None:
    stored = encrypt(b"x" * 100, os.urandom(32))
    with pytest.raises(S3Error):
        decrypt(stored, os.urandom(32), whole(100))


def test_keyring_rotation() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = Keyring([old], ("k1",))
    kek, _ = before.current("AES256")
    data_key = os.urandom(32)
    wrapped = wrap_key(kek.key, kek.id, data_key)
    rotated = Keyring([new, old], ("k1",))
    assert rotated.current("AES256")[0].id != kek.id
    found = rotated.find(kek.id)
    assert found is not None
    assert unwrap_key(found.key, found.id, wrapped) == data_key
    assert Keyring([new], ("k1",)).find(kek.id) is None
    kms, key_id = rotated.current("aws:kms")
    assert key_id == "k1"
    assert Keyring([new]).find(kms.id) is None  # the id is no longer in the ring
    assert unwrap_key(os.urandom(32), kek.id, wrapped) is None
    with pytest.raises(S3Error) as unknown:
        rotated.current("aws:kms", "k2")
    assert unknown.value.code == "KMS.NotFoundException"
    assert "hidden" in repr(rotated)
