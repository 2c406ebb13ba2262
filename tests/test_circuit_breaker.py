"""The circuit breaker (policy.circuit_breaker) and the background start (policy.backend_start)
over the real memory translator, behind a small wrapper that injects faults on demand; the
breaker's clock is a number the tests move."""

from __future__ import annotations

import anyio
import pytest

from core.context import RequestContext
from core.errors import S3Error
from policy.backend_start import StartingBackend
from policy.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerBackend,
)
from policy.forwarding import BACKEND_METHODS, ForwardingBackend
from tests.conformance.payload import MemoryPayload
from tests.support.clock import Clock
from translators.base import GetOptions, ObjectInfo, WriteConditions, WriteMetadata
from translators.memory.backend import MemoryBackend

CTX = RequestContext(request_id="breaker-test", principal="tester")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FaultyBackend(ForwardingBackend, passes_through=BACKEND_METHODS - {"head_object", "start"}):
    """The memory translator, whose ``head_object`` and ``start`` raise ``fault`` while set."""

    fault: BaseException | None = None
    calls = 0

    async def start(self) -> None:
        if self.fault is not None:
            raise self.fault
        await self.inner.start()

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        self.calls += 1
        if self.fault is not None:
            raise self.fault
        return await self.inner.head_object(ctx, bucket, key)


async def breaker_over_memory(
    clock: Clock, failures: int = 3
) -> tuple[CircuitBreakerBackend, FaultyBackend]:
    memory = MemoryBackend()
    await memory.start()
    await memory.create_bucket(CTX, "site")
    await memory.put_object(
        CTX, "site", "a", MemoryPayload(b"hello"), WriteMetadata(), WriteConditions()
    )
    faulty = FaultyBackend(memory)
    breaker = CircuitBreaker("memory", failures, reset_seconds=5.0, clock=clock)
    return CircuitBreakerBackend(faulty, breaker), faulty


def state_of(holder: CircuitBreakerBackend | CircuitBreaker) -> str:
    """The breaker's state now (a call, so that each assertion reads it afresh)."""
    return str(holder.state)


async def head(backend: CircuitBreakerBackend, key: str = "a") -> str:
    """The outcome of one head_object: "ok" or the S3 code."""
    try:
        await backend.head_object(CTX, "site", key)
    except S3Error as error:
        return error.code
    return "ok"


@pytest.mark.anyio
async def test_it_opens_after_consecutive_unavailable_failures_and_refuses_at_once() -> None:
    clock = Clock()
    backend, faulty = await breaker_over_memory(clock)
    faulty.fault = S3Error("ServiceUnavailable")
    assert [await head(backend) for _ in range(3)] == ["ServiceUnavailable"] * 3
    assert state_of(backend) == "open"
    assert faulty.calls == 3
    with pytest.raises(S3Error) as refused:
        await backend.head_object(CTX, "site", "a")
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "5"
    assert faulty.calls == 3  # refused without calling the backend
    clock.now += 3.5
    with pytest.raises(S3Error) as later:
        await backend.head_object(CTX, "site", "a")
    assert later.value.headers["Retry-After"] == "2"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [S3Error("InternalError"), S3Error("SlowDown"), ConnectionError("reset"), TimeoutError()],
    ids=["InternalError", "SlowDown", "ConnectionError", "TimeoutError"],
)
async def test_every_kind_of_unavailability_counts(fault: BaseException) -> None:
    backend, faulty = await breaker_over_memory(Clock())
    faulty.fault = fault
    for _ in range(3):
        with pytest.raises(type(fault)):
            await backend.head_object(CTX, "site", "a")
    assert state_of(backend) == "open"


@pytest.mark.anyio
async def test_client_errors_do_not_count_and_an_answer_resets_the_count() -> None:
    backend, faulty = await breaker_over_memory(Clock())
    for _ in range(10):
        assert await head(backend, "missing") == "NoSuchKey"
    assert state_of(backend) == "closed"
    faulty.fault = S3Error("ServiceUnavailable")
    await head(backend)
    await head(backend)
    faulty.fault = None
    assert await head(backend) == "ok"
    faulty.fault = S3Error("ServiceUnavailable")
    await head(backend)
    await head(backend)
    assert state_of(backend) == "closed"  # never three in a row


@pytest.mark.anyio
async def test_half_open_lets_one_probe_through_and_closes_on_its_success() -> None:
    clock = Clock()
    backend, faulty = await breaker_over_memory(clock)
    faulty.fault = S3Error("ServiceUnavailable")
    for _ in range(3):
        await head(backend)
    faulty.fault = None
    clock.now += 5
    assert state_of(backend) == "half_open"
    assert await head(backend) == "ok"
    assert state_of(backend) == "closed"
    assert await head(backend) == "ok"


@pytest.mark.anyio
async def test_a_failed_probe_reopens_for_another_period() -> None:
    clock = Clock()
    backend, faulty = await breaker_over_memory(clock)
    faulty.fault = S3Error("ServiceUnavailable")
    for _ in range(3):
        await head(backend)
    clock.now += 5
    calls = faulty.calls
    assert await head(backend) == "ServiceUnavailable"  # the probe, which failed
    assert faulty.calls == calls + 1
    assert state_of(backend) == "open"
    assert await head(backend) == "ServiceUnavailable"  # refused: no call
    assert faulty.calls == calls + 1
    clock.now += 4.9
    assert state_of(backend) == "open"
    clock.now += 0.1
    assert state_of(backend) == "half_open"


@pytest.mark.anyio
async def test_only_one_probe_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker("memory", 1, 5.0, clock=clock)
    breaker.failed(probe=False)
    clock.now += 5
    assert breaker.admit() is True  # the probe
    with pytest.raises(S3Error) as refused:
        breaker.admit()  # another call while the probe is under way
    assert refused.value.headers["Retry-After"] == "1"
    breaker.abandoned(probe=True)  # the probe was cancelled: the next call probes
    assert breaker.admit() is True
    breaker.succeeded(probe=True)
    assert state_of(breaker) == "closed"


@pytest.mark.anyio
async def test_reads_stream_through_a_closed_breaker() -> None:
    backend, _ = await breaker_over_memory(Clock())
    result = await backend.get_object(CTX, "site", "a", GetOptions())
    assert b"".join([chunk async for chunk in result.body]) == b"hello"


@pytest.mark.anyio
async def test_a_backend_that_cannot_start_refuses_calls_until_it_starts_in_the_background() -> (
    None
):
    memory = MemoryBackend()
    faulty = FaultyBackend(memory)
    faulty.fault = S3Error("ServiceUnavailable", "The backend cannot be reached.")
    starting = StartingBackend(faulty, first_delay_s=0.01, max_delay_s=0.02)
    await starting.start()
    assert starting.state == "starting"
    assert starting.last_error == "The backend cannot be reached."
    with pytest.raises(S3Error) as refused:
        await starting.list_buckets(CTX)
    assert refused.value.code == "ServiceUnavailable"
    with pytest.raises(S3Error):
        await starting.check_ready()
    async with anyio.create_task_group() as group:
        group.start_soon(starting.keep_starting)
        await anyio.sleep(0.05)
        assert not starting.started  # still failing: still retrying
        faulty.fault = None
    assert starting.state == "started"
    await starting.check_ready()
    assert await starting.list_buckets(CTX) == []
