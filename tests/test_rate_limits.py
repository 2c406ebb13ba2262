"""The rate-limit maths and decisions, in this process, on an injected clock (no sleeps)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from core.errors import S3Error
from policy.model import SitePolicy
from policy.rate_buckets import Admission, Charge, MemoryBuckets, Rate, decide, refilled
from policy.rate_failover import FailoverBuckets
from policy.rate_limits import RateLimitConfig, RateLimiter
from tests.support.clock import Clock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def charge(cost: float = 1, per_second: float = 2, burst: float = 4, key: str = "k") -> Charge:
    return Charge(key, f"limit {key}", Rate(per_second, burst), cost)


def test_a_configured_rate_defaults_its_burst_to_one_second() -> None:
    assert Rate.of(0, 10) is None
    assert Rate.of(None, None) is None
    assert Rate.of(5, 0) == Rate(5.0, 5.0)
    assert Rate.of(0.5, None) == Rate(0.5, 1.0)
    assert Rate.of(5, 20) == Rate(5.0, 20.0)


def test_refill_is_linear_and_capped_at_the_burst() -> None:
    rate = Rate(2, 4)
    assert refilled(0, 10.0, 11.0, rate) == 2
    assert refilled(-3, 10.0, 11.0, rate) == -1
    assert refilled(3, 10.0, 20.0, rate) == 4
    assert refilled(1, 10.0, 9.0, rate) == 1  # a clock going back refills nothing


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert decide([0.9], [charge()]) == Admission(False, 1, "limit k")
    assert decide([-5], [charge()]) == Admission(False, 3, "limit k")
    assert Admission.refused(0.0001, "x").retry_after_seconds == 1
    assert decide([1], [charge()]).allowed


@pytest.mark.anyio
async def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock)
    answers = [await buckets.take([charge()]) for _ in range(5)]
    assert [a.allowed for a in answers] == [True, True, True, True, False]
    assert answers[-1] == Admission(False, 1, "limit k")
    clock.now += 0.5  # one token back at 2/s
    assert (await buckets.take([charge()])).allowed
    assert not (await buckets.take([charge()])).allowed
    clock.now += 100  # never more than the burst
    assert [(await buckets.take([charge()])).allowed for _ in range(5)] == [True] * 4 + [False]


@pytest.mark.anyio
async def test_a_decision_charges_every_bucket_or_none() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock)
    small = charge(key="small", burst=1)
    large = charge(key="large", burst=10)
    assert (await buckets.take([small, large])).allowed
    refused = await buckets.take([small, large])
    assert refused == Admission(False, 1, "limit small")
    # The refusal took nothing from "large": it still holds 9 tokens.
    assert [(await buckets.take([large])).allowed for _ in range(10)] == [True] * 9 + [False]


@pytest.mark.anyio
async def test_the_longest_wait_names_the_limit() -> None:
    buckets = MemoryBuckets(Clock())
    slow = charge(key="slow", per_second=0.1, burst=1)
    fast = charge(key="fast", per_second=10, burst=1)
    assert (await buckets.take([slow, fast])).allowed
    assert await buckets.take([fast, slow]) == Admission(False, 10, "limit slow")


@pytest.mark.anyio
async def test_a_charge_above_the_burst_needs_a_full_bucket_and_leaves_a_debt() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock)
    upload = charge(cost=10, per_second=1, burst=4)
    assert (await buckets.take([upload])).allowed  # full: admitted, level 4 - 10 = -6
    assert await buckets.take([charge(cost=1, per_second=1, burst=4)]) == Admission(
        False, 7, "limit k"
    )
    clock.now += 9  # level 3: not full yet
    assert await buckets.take([upload]) == Admission(False, 1, "limit k")
    clock.now += 1
    assert (await buckets.take([upload])).allowed


@pytest.mark.anyio
async def test_failure_windows_count_then_end() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock)
    assert await buckets.failures("a") == (0, 0.0)
    await buckets.add_failure("a", 60)
    clock.now += 20
    await buckets.add_failure("a", 60)  # falls into the open window
    assert await buckets.failures("a") == (2, 40.0)
    assert await buckets.failures("b") == (0, 0.0)
    clock.now += 40
    assert await buckets.failures("a") == (0, 0.0)
    await buckets.add_failure("a", 60)
    assert await buckets.failures("a") == (1, 60.0)


@pytest.mark.anyio
async def test_full_buckets_and_ended_windows_are_forgotten() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock)
    for batch in range(3):
        await buckets.add_failure(f"window{batch}", 1)
        for i in range(10_000):
            await buckets.take([charge(key=f"{batch}-{i}")])
        clock.now += 10  # every bucket full again, every window ended
    # Without forgetting, 30,003 entries; the last prune kept only the batch then active.
    assert len(buckets._buckets) + len(buckets._windows) <= 10_001
    assert all(key.startswith("2-") for key in buckets._buckets)


def limiter(
    clock: Clock, config: RateLimitConfig, sites: dict[str, SitePolicy] | None = None
) -> RateLimiter:
    async def site_policy(site: str) -> SitePolicy:
        return (sites or {}).get(site, SitePolicy())

    return RateLimiter(config, MemoryBuckets(clock), site_policy)


@pytest.mark.anyio
async def test_no_configured_limit_touches_no_bucket() -> None:
    limits = limiter(Clock(), RateLimitConfig())
    for _ in range(100):
        assert (await limits.admit("root", "site", 10**12)).allowed
    assert await limits.check_source("127.0.0.1") == Admission(True)
    await limits.auth_failed("127.0.0.1")
    assert isinstance(limits.store, MemoryBuckets)
    assert limits.store._buckets == {}
    assert limits.store._windows == {}


@pytest.mark.anyio
async def test_principals_have_buckets_of_their_own() -> None:
    limits = limiter(Clock(), RateLimitConfig(principal_requests_per_second=1))
    assert (await limits.admit("alice", "site-a")).allowed
    assert await limits.admit("alice", "site-b") == Admission(False, 1, "principal requests")
    assert (await limits.admit("bob", "site-a")).allowed


@pytest.mark.anyio
async def test_a_site_limit_is_shared_by_every_principal_and_set_per_site() -> None:
    sites = {
        "busy": SitePolicy(site_requests_per_second=0.5, site_request_burst=2),
        "open": SitePolicy(site_requests_per_second=0),
    }
    limits = limiter(Clock(), RateLimitConfig(), sites)
    assert (await limits.admit("alice", "busy")).allowed
    assert (await limits.admit("bob", "busy")).allowed
    assert await limits.admit("carol", "busy") == Admission(False, 2, "site requests")
    assert all([(await limits.admit("alice", "open")).allowed for _ in range(50)])
    assert (await limits.admit("alice", None)).allowed  # ListBuckets: no site


@pytest.mark.anyio
async def test_upload_bytes_are_charged_to_principal_and_site() -> None:
    clock = Clock()
    sites = {"site": SitePolicy(site_bytes_per_second=1000, site_byte_burst=1000)}
    config = RateLimitConfig(principal_bytes_per_second=100_000)
    limits = limiter(clock, config, sites)
    assert (await limits.admit("alice", "site", 600)).allowed
    assert await limits.admit("bob", "site", 600) == Admission(False, 1, "site bytes")
    assert (await limits.admit("bob", "site", 0)).allowed  # a download costs no bytes
    assert (await limits.admit("bob", "other", 100_000)).allowed
    assert await limits.admit("bob", "other", 1) == Admission(False, 1, "principal bytes")


@pytest.mark.anyio
async def test_authentication_failures_throttle_their_source_address_only() -> None:
    clock = Clock()
    config = RateLimitConfig(auth_failure_limit=3, auth_failure_window_seconds=60)
    limits = limiter(clock, config)
    for _ in range(2):
        await limits.auth_failed("10.0.0.1")
        assert (await limits.check_source("10.0.0.1")).allowed
    await limits.auth_failed("10.0.0.1")
    assert await limits.check_source("10.0.0.1") == Admission(False, 60, "authentication failures")
    assert (await limits.check_source("10.0.0.2")).allowed
    assert (await limits.admit("root", "site")).allowed  # a success resets nothing
    clock.now += 59.5
    assert await limits.check_source("10.0.0.1") == Admission(False, 1, "authentication failures")
    clock.now += 0.5
    assert (await limits.check_source("10.0.0.1")).allowed


class BrokenStore(MemoryBuckets):
    """A store that raises like an unreachable Redis while ``broken``."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.broken = False
        self.calls = 0

    async def take(self, charges: Sequence[Charge]) -> Admission:
        self.calls += 1
        if self.broken:
            raise ConnectionRefusedError("connection refused")
        return await super().take(charges)


@pytest.mark.anyio
async def test_failover_warns_once_per_outage_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "pagewright.rate_limits")
    clock = Clock()
    primary = BrokenStore(clock)
    store = FailoverBuckets(primary, MemoryBuckets(clock), retry_seconds=1.0, clock=clock)
    one = [charge(per_second=0.001, burst=2)]
    assert (await store.take(one)).allowed
    primary.broken = True
    # Served from the process's own bucket (full), which then limits on its own.
    assert [(await store.take(one)).allowed for _ in range(3)] == [True, True, False]
    assert store.degraded
    assert primary.calls == 2  # tried once, then left alone until the retry time
    clock.now += 1
    assert (await store.take(one)).allowed is False
    assert primary.calls == 3
    outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outages) == 1
    assert "ConnectionRefusedError" in outages[0].getMessage()
    primary.broken = False
    clock.now += 1
    # Redis's bucket holds one token again; the process's own is empty.
    assert (await store.take(one)).allowed
    assert not store.degraded
    assert any("answers again" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_site_limits_are_skipped_while_the_catalog_is_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "pagewright.rate_limits")
    down = True

    async def site_policy(site: str) -> SitePolicy:
        if down:
            raise S3Error("ServiceUnavailable", "The catalog database is unavailable.")
        return SitePolicy(site_requests_per_second=0.001, site_request_burst=1)

    limits = RateLimiter(
        RateLimitConfig(principal_requests_per_second=0.001, principal_request_burst=10),
        MemoryBuckets(Clock()),
        site_policy,
    )
    assert (await limits.admit("root", "site")).allowed
    assert (await limits.admit("root", "site")).allowed
    assert len([r for r in caplog.records if "site policies" in r.getMessage()]) == 1
    down = False
    assert (await limits.admit("root", "site")).allowed  # the site's first token
    assert await limits.admit("root", "site") == Admission(False, 1000, "site requests")


@pytest.mark.anyio
async def test_a_site_policy_lookup_refused_for_the_request_is_raised() -> None:
    async def site_policy(site: str) -> SitePolicy:
        raise S3Error("InvalidBucketName")

    limits = RateLimiter(RateLimitConfig(), MemoryBuckets(Clock()), site_policy)
    with pytest.raises(S3Error, match="InvalidBucketName"):
        await limits.admit("root", "Bad_Name")
