"""Rate-limit buckets in the real Redis server (``PWG_TEST_REDIS_URL``): the Lua script's
maths, keys that expire, buckets shared by clients, and an outage through a TCP proxy that
falls back to per-process limits and recovers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
import redis

from policy.model import SitePolicy
from policy.rate_buckets import Charge, Rate
from policy.rate_failover import FailoverBuckets
from policy.rate_limits import RateLimitConfig
from policy.rate_redis import OUTAGE, RedisBuckets, connect
from policy.stack import build_stack
from tests.support.faults import TcpProxy
from tests.support.redis import keys_under, redis_prefix, server_url
from translators.memory.backend import MemoryBackend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as value:
        yield value


#: Connect and read timeouts of the clients these tests talk to the real server through: the
#: production 0.25 s (policy.rate_redis) is a fallback threshold, not what these decisions
#: test, and a loaded CI machine took longer than that to connect once.
PATIENT_S = 10.0


def charge(key: str, per_second: float, burst: float, cost: float = 1) -> Charge:
    return Charge(key, f"limit {key}", Rate(per_second, burst), cost)


@pytest.mark.anyio
async def test_a_bucket_in_redis_allows_its_burst_then_refuses(prefix: str) -> None:
    store = RedisBuckets(connect(server_url(), PATIENT_S), prefix)
    try:
        slow = [charge("k", per_second=0.01, burst=3)]
        answers = [await store.take(slow) for _ in range(4)]
        assert [a.allowed for a in answers] == [True, True, True, False]
        assert answers[-1].limit_name == "limit k"
        assert 95 <= answers[-1].retry_after_seconds <= 100  # 1 token at 0.01/s
        # The script was loaded once and is run by its SHA from then on.
        with redis.Redis.from_url(server_url()) as client:
            assert client.script_exists(store._take.sha) == [True]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_decision_in_redis_charges_every_bucket_or_none(prefix: str) -> None:
    store = RedisBuckets(connect(server_url(), PATIENT_S), prefix)
    try:
        small = charge("small", per_second=0.01, burst=1)
        large = charge("large", per_second=0.01, burst=5)
        assert (await store.take([small, large])).allowed
        refused = await store.take([large, small])
        assert not refused.allowed
        assert refused.limit_name == "limit small"
        assert [(await store.take([large])).allowed for _ in range(5)] == [True] * 4 + [False]
        upload = charge("bytes", per_second=1000, burst=1000, cost=5000)
        assert (await store.take([upload])).allowed  # full bucket: admitted into debt
        late = await store.take([charge("bytes", per_second=1000, burst=1000)])
        assert not late.allowed
        assert late.limit_name == "limit bytes"
        assert 4 <= late.retry_after_seconds <= 5  # a debt of 4,000 bytes at 1,000/s
    finally:
        await store.close()


@pytest.mark.anyio
async def test_idle_keys_expire_when_their_bucket_or_window_would_be_full(prefix: str) -> None:
    store = RedisBuckets(connect(server_url(), PATIENT_S), prefix)
    try:
        await store.take([charge("fast", per_second=100, burst=100, cost=50)])
        await store.take([charge("slow", per_second=0.01, burst=1)])
        await store.add_failure("window", 30)
        ttls = keys_under(prefix)
        assert set(ttls) == {"fast", "slow", "window"}
        assert 0 < ttls["fast"] <= 1500  # 0.5 s to refill, plus a second's margin
        assert 100_000 <= ttls["slow"] <= 101_000
        assert 29_000 <= ttls["window"] <= 30_000
        await store.add_failure("window", 30)  # a later failure keeps the window's end
        count, left = await store.failures("window")
        assert count == 2
        assert 29 <= left <= 30
        assert await store.failures("none") == (0, 0.0)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_two_clients_share_one_bucket(prefix: str) -> None:
    first = RedisBuckets(connect(server_url(), PATIENT_S), prefix)
    second = RedisBuckets(connect(server_url(), PATIENT_S), prefix)
    try:
        bucket = [charge("shared", per_second=0.01, burst=10)]
        async with anyio.create_task_group() as group:
            answers: list[bool] = []

            async def spend(store: RedisBuckets) -> None:
                for _ in range(10):
                    answers.append((await store.take(bucket)).allowed)

            group.start_soon(spend, first)
            group.start_soon(spend, second)
        assert sorted(answers) == [False] * 10 + [True] * 10
    finally:
        await first.close()
        await second.close()


def proxied_url(proxy: TcpProxy) -> str:
    parts = urlsplit(server_url())
    return parts._replace(netloc=proxy.address).geturl()


def redis_target() -> tuple[str, int]:
    parts = urlsplit(server_url())
    return parts.hostname or "127.0.0.1", parts.port or 6379


@pytest.mark.anyio
async def test_an_outage_falls_back_to_the_process_and_recovers(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pagewright.rate_limits")
    with TcpProxy(redis_target()) as proxy:
        shared = RedisBuckets(connect(proxied_url(proxy)), prefix)
        store = FailoverBuckets(shared, retry_seconds=0.0, outages=OUTAGE)
        # another replica, not cut off
        other = RedisBuckets(connect(server_url(), PATIENT_S), prefix)
        try:
            bucket = [charge("b", per_second=0.001, burst=3)]
            assert (await store.take(bucket)).allowed
            assert (await other.take(bucket)).allowed
            proxy.cut()
            # Served from this process's bucket (full): 3 more, then its own limit.
            answers = [(await store.take(bucket)).allowed for _ in range(4)]
            assert answers == [True, True, True, False]
            assert store.degraded
            warnings = [r for r in caplog.records if "Redis is unavailable" in r.getMessage()]
            assert len(warnings) == 1
            proxy.restore()
            # Redis again: its bucket has one token left, spent here, refused at the other.
            assert (await store.take(bucket)).allowed
            assert not store.degraded
            assert not (await other.take(bucket)).allowed
            assert any("answers again" in r.getMessage() for r in caplog.records)
        finally:
            await store.close()
            await other.close()


@pytest.mark.anyio
async def test_a_redis_that_hangs_times_out_into_the_fallback(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pagewright.rate_limits")
    with TcpProxy(redis_target()) as proxy:
        store = FailoverBuckets(RedisBuckets(connect(proxied_url(proxy)), prefix), outages=OUTAGE)
        try:
            bucket = [charge("h", per_second=0.001, burst=1)]
            assert (await store.take(bucket)).allowed
            proxy.stall()
            # Redis never answers: the socket timeout ends the wait, the process's own
            # bucket (full) answers, and the next decisions skip Redis until the retry time.
            assert (await store.take(bucket)).allowed
            assert store.degraded
            assert not (await store.take(bucket)).allowed
            warnings = [r.getMessage() for r in caplog.records]
            assert len(warnings) == 1
            assert "Timeout" in warnings[0]
        finally:
            proxy.restore()
            await store.close()


@pytest.mark.anyio
async def test_the_stack_builds_a_shared_limiter_and_closes_its_connections(
    prefix: str, tmp_path: Path
) -> None:
    config = RateLimitConfig(
        principal_requests_per_second=0.001,
        principal_request_burst=1,
        redis_url=server_url(),
        redis_key_prefix=prefix,
    )
    catalog = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(MemoryBackend(), catalog, SitePolicy(), 1024, rate_limits=config)
    limiter = stack.limiter
    assert limiter is not None
    assert isinstance(limiter.store, FailoverBuckets)
    assert (await limiter.admit("someone", None)).allowed
    assert not (await limiter.admit("someone", None)).allowed
    assert set(keys_under(prefix)) == {"p:someone:requests"}
    primary = limiter.store.primary
    assert isinstance(primary, RedisBuckets)
    pool = primary._client.connection_pool
    assert any(c.is_connected for c in pool._available_connections)
    await stack.close()
    assert not any(c.is_connected for c in pool._available_connections)
    assert not pool._in_use_connections
