"""The S3 translator trusts a gateway bucket it found for a moment (``BUCKET_SEEN_TTL``):
writes and listings cost one backend request, not two; its own deletion of the bucket is
seen at once, another process's once the moment has passed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from core.context import RequestContext
from core.errors import S3Error
from tests.conformance.helpers import put
from translators.base import ListQuery
from translators.config import BackendSpec
from translators.s3.backend import S3Backend
from translators.s3.client import BUCKET_SEEN_TTL

#: Needs a real server (see tests/conftest.py).
pytestmark = [pytest.mark.server, pytest.mark.anyio]
CTX = RequestContext(request_id="bucket-seen", principal="tester")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.emulators import running, start_moto

    with running(start_moto, tmp_path_factory.mktemp("moto")) as emulator:
        yield emulator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def replicas(moto: Any) -> AsyncIterator[tuple[S3Backend, S3Backend, Clock]]:
    """Two translators over one backend bucket (two gateway processes); the first on a
    clock of the test's."""
    spec = BackendSpec(
        "s3", f"pw-seen-{uuid.uuid4().hex[:8]}", prefix="root", options={"create": "true"}
    )
    first, second = S3Backend.from_spec(spec, moto.env), S3Backend.from_spec(spec, moto.env)
    clock = Clock()
    first.store._clock = clock
    for backend in (first, second):
        await backend.start()
    yield first, second, clock
    for backend in (first, second):
        await backend.close()


def count_calls(backend: S3Backend) -> list[str]:
    """The backend operations ``backend`` sends from now on, in order."""
    calls: list[str] = []
    for client in {id(c): c for c in (backend.store.client, backend.store.stream_client)}.values():
        client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return calls


async def test_writes_and_listings_cost_one_request_once_the_bucket_was_seen(
    replicas: tuple[S3Backend, S3Backend, Clock],
) -> None:
    first, _, _ = replicas
    await first.create_bucket(CTX, "site")
    await put(first, "site", "a", b"one")
    calls = count_calls(first)
    await put(first, "site", "b", b"two")
    page = await first.list_objects(CTX, "site", ListQuery(max_keys=10))
    assert [o.key for o in page.objects] == ["a", "b"]
    assert calls == ["PutObject", "ListObjectsV2"]


async def test_its_own_deletion_is_seen_at_once(
    replicas: tuple[S3Backend, S3Backend, Clock],
) -> None:
    first, _, _ = replicas
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
    replicas: tuple[S3Backend, S3Backend, Clock],
) -> None:
    first, second, clock = replicas
    await first.create_bucket(CTX, "site")
    await put(first, "site", "a", b"one")
    await second.delete_object(CTX, "site", "a")
    await second.delete_bucket(CTX, "site")
    clock.now += BUCKET_SEEN_TTL + 0.1
    with pytest.raises(S3Error) as refused:
        await put(first, "site", "b", b"late")
    assert refused.value.code == "NoSuchBucket"
    # Nothing was written: the bucket made again is empty.
    await second.create_bucket(CTX, "site")
    assert (await second.list_objects(CTX, "site", ListQuery())).objects == []
