"""Listing through the encryption wrapper: a bucket that never held an encrypted object
costs no storage call beyond the listing itself (its unmarked state is remembered for
``UNMARKED_RECHECK_S``), and one that does reports plaintext sizes."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from core.context import RequestContext
from core.sse import EncryptionRequest
from policy import encryption_listing
from policy.around import AroundBackend
from policy.encryption import EncryptingBackend
from policy.sse_crypto import Keyring
from tests.conformance.payload import MemoryPayload
from translators.base import ListQuery, WriteConditions, WriteMetadata
from translators.memory.backend import MemoryBackend

T = TypeVar("T")
CTX = RequestContext(request_id="sse-listing", principal="test")


class Counting(AroundBackend, passes_through={"start", "close"}):
    """Counts the translator's calls by name."""

    calls: dict[str, int]

    async def around(self, call: str, bucket: str | None, invoke: Callable[[], Awaitable[T]]) -> T:
        self.calls[call] = self.calls.get(call, 0) + 1
        return await invoke()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_unencrypted_bucket_is_listed_without_extra_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = Counting(MemoryBackend())
    counting.calls = {}
    backend = EncryptingBackend(counting, Keyring([os.urandom(32)]))
    await backend.start()
    await backend.create_bucket(CTX, "plain")
    await backend.put_object(
        CTX, "plain", "a.html", MemoryPayload(b"hello"), WriteMetadata(), WriteConditions()
    )
    counting.calls.clear()
    for _ in range(5):
        page = await backend.list_objects(CTX, "plain", ListQuery())
        assert [(o.key, o.size) for o in page.objects] == [("a.html", 5)]
    # one HEAD of the marker, then the remembered answer
    assert counting.calls == {"list_objects": 5, "head_object": 1}

    monkeypatch.setattr(encryption_listing, "UNMARKED_RECHECK_S", 0.0)
    await backend.list_objects(CTX, "plain", ListQuery())
    assert counting.calls["head_object"] == 2  # rechecked once the time is up

    secret = WriteMetadata(encryption=EncryptionRequest("AES256"))
    await backend.put_object(
        CTX, "plain", "b.html", MemoryPayload(b"secret"), secret, WriteConditions()
    )
    monkeypatch.setattr(encryption_listing, "UNMARKED_RECHECK_S", 3600.0)
    page = await backend.list_objects(CTX, "plain", ListQuery())
    # (the marker, a reserved key, is hidden from clients by the layers above)
    sizes = {o.key: o.size for o in page.objects if not o.key.startswith(".pagewright")}
    assert sizes == {"a.html": 5, "b.html": 6}  # the encrypted object's plaintext size
