"""The S3 and GCS translators trust a gateway bucket they found for a moment
(:mod:`translators.seen`): writes and listings cost one backend request, not two; a
translator's own deletion of the bucket is seen at once, another process's once the moment
has passed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.context import RequestContext
from core.errors import S3Error
from tests.conformance.helpers import put
from tests.support.clock import Clock
from translators.base import Backend, ListQuery
from translators.config import BackendSpec
from translators.gcs.backend import GCSBackend
from translators.s3.backend import S3Backend
from translators.seen import SEEN_TTL

#: Needs real servers (see tests/conftest.py).
pytestmark = [pytest.mark.server, pytest.mark.anyio]
CTX = RequestContext(request_id="bucket-seen", principal="tester")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


#: (first translator, second translator, the first's clock, the requests the first sent)
Replicas = tuple[Backend, Backend, Clock, list[str]]


@pytest.fixture(params=["s3", "gcs"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    """Two translators over one backend bucket (two gateway processes); the first on a
    clock of the test's, its backend requests recorded."""
    container = f"pw-seen-{uuid.uuid4().hex[:8]}"
    spec = BackendSpec(request.param, container, prefix="root", options={"create": "true"})
    clock = Clock()
    calls: list[str] = []
    first: Any
    second: Backend
    if request.param == "s3":
        env = request.getfixturevalue("moto").env
        first, second = S3Backend.from_spec(spec, env), S3Backend.from_spec(spec, env)
        for client in (first.store.client, first.store.stream_client):
            client.meta.events.register(
                "before-call.s3", lambda model, **_: calls.append(model.name)
            )
    else:
        env = request.getfixturevalue("fake_gcs").env
        first, second = GCSBackend.from_spec(spec, env), GCSBackend.from_spec(spec, env)
    first.store.seen.clock = clock
    for backend in (first, second):
        await backend.start()
    if isinstance(first, GCSBackend):
        first.store.session.hooks["response"].append(
            lambda response, **_: calls.append(f"{response.request.method} {response.url}")
        )
    yield first, second, clock, calls
    for backend in (first, second):
        await backend.close()


async def test_writes_and_listings_cost_one_request_once_the_bucket_was_seen(
    replicas: Replicas,
) -> None:
    first, _, _, calls = replicas
    await first.create_bucket(CTX, "site")
    await put(first, "site", "a", b"one")
    calls.clear()
    await put(first, "site", "b", b"two")
    page = await first.list_objects(CTX, "site", ListQuery(max_keys=10))
    assert [o.key for o in page.objects] == ["a", "b"]
    assert len(calls) == 2, calls  # the write and the listing: no read of the marker
    assert not any("pagewright" in call for call in calls), calls


async def test_its_own_deletion_is_seen_at_once(replicas: Replicas) -> None:
    first, _, _, _ = replicas
    await first.create_bucket(CTX, "site")
    await put(first, "site", "a", b"one")
    await first.delete_object(CTX, "site", "a")
    await first.delete_bucket(CTX, "site")
    with pytest.raises(S3Error) as refused:
        await put(first, "site", "a", b"again")
    assert refused.value.code == "NoSuchBucket"
    with pytest.raises(S3Error) as refused:
        await first.list_objects(CTX, "site", ListQuery())
    assert refused.value.code == "NoSuchBucket"


async def test_another_process_deletion_is_seen_once_the_moment_has_passed(
    replicas: Replicas,
) -> None:
    first, second, clock, _ = replicas
    await first.create_bucket(CTX, "site")
    await put(first, "site", "a", b"one")
    await second.delete_object(CTX, "site", "a")
    await second.delete_bucket(CTX, "site")
    clock.now += SEEN_TTL + 0.1
    with pytest.raises(S3Error) as refused:
        await put(first, "site", "b", b"late")
    assert refused.value.code == "NoSuchBucket"
    # Nothing was written: the bucket made again is empty.
    await second.create_bucket(CTX, "site")
    assert (await second.list_objects(CTX, "site", ListQuery())).objects == []
