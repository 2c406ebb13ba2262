"""Rotating the master key (policy.secret_box, policy.sse_crypto): with the new key
configured and the old one retired, what the old key sealed or encrypted still opens, and
everything new is sealed and encrypted under the new key only."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from core.context import RequestContext
from core.errors import S3Error
from core.sse import EncryptionRequest
from gateway.settings import SettingsError, load_settings
from policy.encryption import EncryptingBackend
from policy.secret_box import SealedValueError, SecretBox
from policy.sse_crypto import Keyring
from tests.conformance.helpers import put, read
from translators.base import WriteMetadata
from translators.memory.backend import MemoryBackend

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
CTX = RequestContext(request_id="test-rotation", principal="root")


def test_seals_of_a_retired_key_still_open() -> None:
    old = SecretBox.from_key(OLD)
    sealed = old.seal(b"secret")
    rotated = SecretBox.from_key(NEW, [OLD])
    assert rotated.open(sealed) == b"secret"
    with pytest.raises(SealedValueError):
        SecretBox.from_key(NEW).open(sealed)
    fresh = rotated.seal(b"fresh")
    assert SecretBox.from_key(NEW).open(fresh) == b"fresh"
    with pytest.raises(SealedValueError):
        old.open(fresh)
    assert rotated.subkeys("sse") == [
        SecretBox.from_key(NEW).subkey("sse"),
        old.subkey("sse"),
    ]


@pytest.mark.anyio
async def test_objects_encrypted_under_a_retired_key_still_read() -> None:
    storage = MemoryBackend()
    await storage.start()
    await storage.create_bucket(CTX, "b")
    before = EncryptingBackend(storage, Keyring(SecretBox.from_key(OLD).subkeys("sse")))
    sealed = WriteMetadata(encryption=EncryptionRequest("AES256"))
    await put(before, "b", "old", b"old bytes", metadata=sealed)
    rotated = EncryptingBackend(storage, Keyring(SecretBox.from_key(NEW, [OLD]).subkeys("sse")))
    assert await read(rotated, "b", "old") == b"old bytes"
    await put(rotated, "b", "new", b"new bytes", metadata=sealed)
    only_new = EncryptingBackend(storage, Keyring(SecretBox.from_key(NEW).subkeys("sse")))
    assert await read(only_new, "b", "new") == b"new bytes"
    with pytest.raises(S3Error) as caught:
        await read(only_new, "b", "old")
    assert "key ring does not hold" in caught.value.message


def test_retired_keys_are_settings_kept_out_of_reprs() -> None:
    settings = load_settings(environ={"PWG_RETIRED_MASTER_KEYS": f"{OLD}, {NEW}"})
    assert settings.retired_master_keys == (OLD, NEW)
    assert OLD not in repr(settings)
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"PWG_RETIRED_MASTER_KEYS": "not-a-key"})
    assert "retired_master_keys" in str(caught.value)
    assert "not-a-key" not in str(caught.value)
