"""Redis for tests: the server at ``PWG_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).

Each test takes a key prefix of its own (parallel-safe under xdist) and deletes its keys
afterwards. A server that cannot be reached skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def server_url() -> str:
    return os.environ.get("PWG_TEST_REDIS_URL", DEFAULT_URL)


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test server, whose keys are deleted when the test ends."""
    client = redis.Redis.from_url(server_url(), socket_timeout=5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        client.close()
        message = f"Redis at {server_url()} is not reachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"pwg-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def keys_under(prefix: str) -> dict[str, int]:
    """Each key under ``prefix`` (without it) and its time to live in milliseconds."""
    client = redis.Redis.from_url(server_url(), socket_timeout=5)
    try:
        return {
            key.decode().removeprefix(prefix): int(client.pttl(key))
            for key in client.scan_iter(match=prefix + "*")
        }
    finally:
        client.close()
