"""gateway.credentials: the access key a request names, and the cached lookup of its
credential (root first, then the identity store; a short TTL; expiry on every use)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.credentials import CredentialResolver, requested_access_key
from gateway.sigv4 import HttpRequestView
from policy.credentials import Credential, CredentialStore
from policy.principals import ROOT, Principal
from tests.support.clock import Clock

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROOT_CREDENTIAL = Credential("PWROOTKEY000000000000", "root-secret", "root")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def view(headers: dict[str, str] | None = None, query: str = "") -> HttpRequestView:
    return HttpRequestView("GET", "/b/k", query, headers or {})


def test_the_access_key_a_request_names() -> None:
    v4 = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261201/us-east-1/s3/aws4_request, "
    assert requested_access_key(view({"authorization": v4 + "SignedHeaders=host, Signature=x"}))
    assert requested_access_key(view({"authorization": v4})) == "AKIAEXAMPLE"
    assert requested_access_key(view({"authorization": "AWS AKIAV2:c2ln"})) == "AKIAV2"
    presigned = "X-Amz-Credential=AKIAQ%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
    assert requested_access_key(view(query=presigned)) == "AKIAQ"
    assert requested_access_key(view(query="AWSAccessKeyId=AKIAV2Q&Signature=x")) == "AKIAV2Q"
    assert requested_access_key(view()) is None
    assert requested_access_key(view({"authorization": "Bearer token"})) is None


class FakeStore:
    """What the resolver needs of an IdentityStore, counting its reads."""

    def __init__(self) -> None:
        self.credentials: dict[str, Credential] = {}
        self.reads = 0

    async def credential(self, key_id: str) -> Credential | None:
        self.reads += 1
        return self.credentials.get(key_id)


def resolver(store: FakeStore, clock: Clock) -> CredentialResolver:
    fake: Any = store
    return CredentialResolver(CredentialStore([ROOT_CREDENTIAL]), fake, ttl_s=5.0, clock=clock)


async def test_root_needs_no_store_read() -> None:
    store, clock = FakeStore(), Clock(0.0)
    found = await resolver(store, clock).find(ROOT_CREDENTIAL.access_key, NOW)
    assert found is not None
    assert found.identity == ROOT
    assert store.reads == 0


async def test_users_keys_are_cached_for_the_ttl_then_read_again() -> None:
    store, clock = FakeStore(), Clock(0.0)
    alice = Credential("AKIAALICE00000000000", "s", "alice")
    store.credentials[alice.access_key] = alice
    credentials = resolver(store, clock)
    found = await credentials.find(alice.access_key, NOW)
    assert found == alice
    assert found is not None
    assert found.identity == Principal("alice", "user")
    del store.credentials[alice.access_key]  # deactivated elsewhere
    clock.now = 4.9
    assert await credentials.find(alice.access_key, NOW) == alice
    assert store.reads == 1
    clock.now = 5.0
    assert await credentials.find(alice.access_key, NOW) is None
    assert store.reads == 2
    # An unknown key is cached too (no read per request of a key storm).
    assert await credentials.find(alice.access_key, NOW) is None
    assert store.reads == 2


async def test_forget_drops_a_cached_key_at_once() -> None:
    store, clock = FakeStore(), Clock(0.0)
    alice = Credential("AKIAALICE00000000000", "s", "alice")
    store.credentials[alice.access_key] = alice
    credentials = resolver(store, clock)
    assert await credentials.find(alice.access_key, NOW) == alice
    del store.credentials[alice.access_key]
    credentials.forget(alice.access_key)
    assert await credentials.find(alice.access_key, NOW) is None


async def test_an_expired_credential_is_refused_even_from_the_cache() -> None:
    store, clock = FakeStore(), Clock(0.0)
    expiring = Credential("AKIAEXP0000000000000", "s", "bob", expires_at=NOW + timedelta(1))
    store.credentials[expiring.access_key] = expiring
    credentials = resolver(store, clock)
    assert await credentials.find(expiring.access_key, NOW) == expiring
    assert await credentials.find(expiring.access_key, NOW + timedelta(days=1)) is None


def test_a_credential_names_its_identity() -> None:
    assert Credential("k", "s", "root").identity == ROOT
    session = Principal("build-42", "session")
    assert Credential("k", "s", "build-42", session).identity is session
    assert "very-secret" not in repr(Credential("k", "very-secret", "root"))
    with pytest.raises(ValueError, match="identity's name"):
        Credential("k", "s", "alice", Principal("bob", "user"))
