"""Two real gateway processes sharing their rate limits through the Redis server on this
machine (``PWG_TEST_REDIS_URL``), and a Redis outage in the middle of a test (a TCP proxy
between the gateways and Redis is cut, then restored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from policy.principals import ROOT
from tests.support.faults import TcpProxy
from tests.support.raw_s3 import RawReply, send
from tests.support.redis import keys_under, redis_prefix, server_url
from tests.support.servers import GatewayServer, running_gateway

#: Needs real gateway processes (see tests/conftest.py).
pytestmark = pytest.mark.server

#: Each principal: 4 requests, then one per 1,000 s (nothing refills during a test).
LIMITS = {"PWG_PRINCIPAL_REQUESTS_PER_SECOND": "0.001", "PWG_PRINCIPAL_REQUEST_BURST": "4"}


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as value:
        yield value


def two_gateways(
    stack: ExitStack, directory: Path, redis_url: str, prefix: str
) -> tuple[GatewayServer, GatewayServer]:
    env = {**LIMITS, "PWG_REDIS_URL": redis_url, "PWG_REDIS_KEY_PREFIX": prefix}
    for name in ("a", "b"):
        (directory / name).mkdir()
    first = stack.enter_context(running_gateway(directory / "a" / "data", env=env))
    second = stack.enter_context(running_gateway(directory / "b" / "data", env=env))
    return first, second


def status(server: GatewayServer) -> int:
    reply: RawReply = send(server, "GET", "/")
    if reply.status == 503:
        assert reply.error_code() == "SlowDown"
        assert int(reply.headers["retry-after"]) >= 1
    return reply.status


def test_two_gateways_share_a_principal_limit_through_redis(tmp_path: Path, prefix: str) -> None:
    with ExitStack() as stack:
        first, second = two_gateways(stack, tmp_path, server_url(), prefix)
        assert [status(first), status(second), status(first), status(second)] == [200] * 4
        # The principal's 4 tokens are spent, whichever process is asked.
        assert status(first) == 503
        assert status(second) == 503
        assert set(keys_under(prefix)) == {f"p:{ROOT.arn}:requests"}


def test_a_redis_outage_falls_back_to_per_process_limits_and_recovers(
    tmp_path: Path, prefix: str
) -> None:
    redis_address = urlsplit(server_url())
    target = (redis_address.hostname or "127.0.0.1", redis_address.port or 6379)
    with TcpProxy(target) as proxy, ExitStack() as stack:
        url = redis_address._replace(netloc=proxy.address).geturl()
        first, second = two_gateways(stack, tmp_path, url, prefix)
        assert [status(first), status(second)] == [200, 200]  # 2 of the shared 4 left

        proxy.cut()
        # Requests are still served, each process with a bucket of its own (4 each).
        assert [status(first) for _ in range(5)] == [200] * 4 + [503]
        assert status(second) == 200
        for server in (first, second):
            log = server.log_path.read_text()
            assert log.count("rate limits: Redis is unavailable") == 1, log

        proxy.restore()
        time.sleep(1.5)  # the processes try Redis again a second after their last failure
        # Shared again: first (whose own bucket is empty) spends Redis's last 2 tokens, and
        # second (whose own bucket still holds 3) is refused.
        assert [status(first), status(first)] == [200, 200]
        assert status(second) == 503
        for server in (first, second):
            assert "rate limits: Redis answers again" in server.log_path.read_text()
