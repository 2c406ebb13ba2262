"""Each translator's retries are short and counted (``core.retries``).

Every translator is pointed at a port nobody listens on: each attempt is refused at once by
the kernel, so what the call takes is its retry waits. Asserted: the call fails with a
clean 503 ``ServiceUnavailable`` (never another error), its retries are reported to
:func:`core.retries.retried` (so they reach ``pagewright_backend_retries_total``), and the
waits are those of a gateway that hands the retrying back to its client (tens of
milliseconds), not an SDK's defaults (seconds to minutes).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from core.context import RequestContext
from core.errors import S3Error
from core.retries import counting, retried
from policy.metrics import Metrics
from tests.support.emulators import AZURITE_ACCOUNT, AZURITE_KEY
from tests.support.servers import free_port
from translators.azure.retries import BASE_DELAY_S, MAX_DELAY_S, ShortRetry
from translators.base import Backend
from translators.config import parse_backend_url

CTX = RequestContext(request_id="retries", principal="test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _closed_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _s3(endpoint: str) -> Backend:
    from translators.s3.backend import S3Backend

    environ = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_REGION": "us-east-1",
    }
    return S3Backend.from_spec(parse_backend_url("s3://container/gw"), environ)


def _azure(endpoint: str) -> Backend:
    from translators.azure.backend import AzureBackend

    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )
    environ = {"AZURE_STORAGE_CONNECTION_STRING": connection}
    return AzureBackend.from_spec(parse_backend_url("azure://container/gw"), environ)


def _gcs(endpoint: str) -> Backend:
    from translators.gcs.backend import GCSBackend

    environ = {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": "test"}
    return GCSBackend.from_spec(parse_backend_url("gcs://container/gw"), environ)


FACTORIES: dict[str, Callable[[str], Backend]] = {"s3": _s3, "azure": _azure, "gcs": _gcs}


async def _failing_call(backend: Backend) -> Callable[[], Awaitable[object]]:
    """A read the translator retries: HeadBucket (S3, GCS) or its readiness check (Azure)."""
    if backend.name == "azure":
        return backend.check_ready
    return lambda: backend.head_bucket(CTX, "site")


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["s3", "azure", "gcs"])
async def test_a_refused_backend_is_retried_briefly_and_counted(name: str) -> None:
    backend = FACTORIES[name](_closed_endpoint())
    if name == "gcs":
        await backend.store.open()  # type: ignore[attr-defined]
    try:
        call = await _failing_call(backend)
        started = time.perf_counter()
        with counting() as retries, pytest.raises(S3Error) as failed:
            await call()
        elapsed = time.perf_counter() - started
    finally:
        await backend.close()
    print(f"\n[{name}] {retries.value} retries, failed after {elapsed:.3f} s")
    assert failed.value.code == "ServiceUnavailable"
    assert failed.value.status == 503
    assert retries.value >= 2
    assert elapsed < 2.0


def test_short_retry_waits_full_jitter_within_its_bounds() -> None:
    policy = ShortRetry()
    for retry in (1, 2, 3, 10):
        cap = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (retry - 1))
        waits = [policy.get_backoff_time({"count": retry}) for _ in range(200)]
        assert all(0 <= wait <= cap for wait in waits)
        assert max(waits) > cap / 2  # jittered over the whole range, not a constant
    assert policy.total_retries == 3


def test_retries_reported_within_a_call_reach_the_metric() -> None:
    metrics = Metrics(process=False)
    registry = metrics.registry
    with metrics.timed("s3", "head_object"):
        retried()
        retried()
    with metrics.timed("s3", "head_object"):
        pass
    retried()  # outside any call: not counted
    value = registry.get_sample_value(
        "pagewright_backend_retries_total", {"backend": "s3", "call": "head_object"}
    )
    assert value == 2.0
    calls = registry.get_sample_value(
        "pagewright_backend_calls_total",
        {"backend": "s3", "call": "head_object", "outcome": "ok"},
    )
    assert calls == 2.0
