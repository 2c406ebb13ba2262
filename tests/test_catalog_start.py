"""policy.catalog_start: a PostgreSQL catalog unreachable at start is started in the background
while the gateway serves, not ready; an unusable one still stops the start; SQLite is as before.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from sqlalchemy.exc import OperationalError

from core.context import RequestContext
from core.errors import S3Error
from gateway import readiness
from policy.catalog_start import CatalogStart
from policy.model import SitePolicy
from policy.stack import StartupError, build_stack
from tests.conformance.payload import MemoryPayload
from tests.support.servers import free_port
from translators.base import WriteConditions, WriteMetadata
from translators.memory.backend import MemoryBackend

CTX = RequestContext("test", "root")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FlakyCatalog:
    """A catalog whose database refuses connections while ``down`` is set."""

    def __init__(self) -> None:
        self.down = True
        self.attempts = 0
        self.failure: Exception | None = None

    async def start(self) -> None:
        self.attempts += 1
        if self.failure is not None:
            raise self.failure
        if self.down:
            raise OperationalError("connect", {}, ConnectionRefusedError("refused"))


@pytest.mark.anyio
async def test_an_unreachable_catalog_is_kept_and_retried_until_it_starts() -> None:
    catalog = FlakyCatalog()
    start = CatalogStart(catalog, first_delay_s=0.01, max_delay_s=0.02)
    await start.start()
    await start.start()  # tried once: later calls leave the retries to keep_starting
    assert (start.state, catalog.attempts) == ("starting", 1)
    assert "refused" in start.last_error
    started: list[bool] = []

    async def then() -> None:
        started.append(True)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(start.keep_starting, then)
        await anyio.sleep(0.1)
        assert catalog.attempts > 2
        assert not started
        catalog.failure = ValueError("a half-started database")  # retried all the same
        await anyio.sleep(0.05)
        catalog.failure = None
        catalog.down = False
    assert (start.state, start.last_error, started) == ("started", "", [True])


@pytest.mark.anyio
async def test_a_catalog_that_is_not_down_but_unusable_stops_the_start() -> None:
    catalog = FlakyCatalog()
    catalog.failure = ValueError("unsupported catalog database 'mysql'")
    with pytest.raises(ValueError, match="unsupported"):
        await CatalogStart(catalog).start()


def _unreachable_postgresql() -> str:
    return f"postgresql://nobody@127.0.0.1:{free_port()}/catalog"


@pytest.mark.anyio
async def test_a_stack_over_an_unreachable_postgresql_catalog_serves_not_ready() -> None:
    stack = build_stack(MemoryBackend(), _unreachable_postgresql(), SitePolicy(), 1024)
    async with anyio.create_task_group() as background:
        await stack.run(background)  # does not raise: the catalog is started in the background
        ready, document = await readiness.report(stack)
        assert not ready
        assert document["failed"] == ["catalog"]
        assert document["checks"]["catalog"] == {
            "ok": False,
            "state": "starting",
            "error": "The catalog database has not started yet.",
        }
        assert document["checks"]["backend"]["state"] == "ok"
        await stack.backend.create_bucket(CTX, "site")  # needs no catalog
        with pytest.raises(S3Error) as refused:
            await stack.backend.put_object(
                CTX, "site", "k", MemoryPayload(b"x"), WriteMetadata(), WriteConditions()
            )
        assert (refused.value.status, refused.value.code) == (503, "ServiceUnavailable")
        assert refused.value.headers == {"Retry-After": "1"}
        with pytest.raises(S3Error) as unread:  # the site's policy lives in the catalog
            await stack.policies.for_site("site")
        assert unread.value.status == 503
        assert stack.jobs is not None
        with pytest.raises(S3Error):  # what the jobs would do is 503 too, never a crash
            await stack.jobs.statuses()
        background.cancel_scope.cancel()
    await stack.close()


@pytest.mark.anyio
async def test_a_sqlite_catalog_that_cannot_open_still_stops_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    stack = build_stack(
        MemoryBackend(), f"sqlite:///{blocker / 'catalog.sqlite3'}", SitePolicy(), 1024
    )
    assert stack.catalog_start is None
    async with anyio.create_task_group() as background:
        with pytest.raises(StartupError, match="the catalog could not start"):
            await stack.run(background)
    await stack.close()


def test_a_postgresql_host_that_never_answers_fails_the_connection_instead_of_hanging() -> None:
    """A listener that accepts and then says nothing (a host dropping packets behind a
    load balancer, say): libpq gives up after the catalog's default connect timeout, where
    it would otherwise wait for the kernel's TCP timeout (minutes to hours)."""
    import socket
    import threading
    import time

    from policy.catalog_database import CONNECT_TIMEOUT_S, CatalogDatabase

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    database = CatalogDatabase(f"postgresql://pw@127.0.0.1:{port}/test")
    failures: list[BaseException] = []

    def start() -> None:
        try:
            anyio.run(database.start)
        except BaseException as error:
            failures.append(error)

    started = time.monotonic()
    attempt = threading.Thread(target=start, daemon=True)
    attempt.start()
    attempt.join(CONNECT_TIMEOUT_S * 6)  # bounded, unlike a connection without the timeout
    gave_up_after = time.monotonic() - started
    silent.close()
    assert not attempt.is_alive(), "the connection attempt is still waiting"
    print(f"\nthe connection gave up after {gave_up_after:.1f} s")
    assert len(failures) == 1
    assert isinstance(failures[0], OperationalError)
    assert "timeout" in str(failures[0])
