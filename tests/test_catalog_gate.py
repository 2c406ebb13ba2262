"""policy.catalog_gate: writes refused with 503 while the catalog is down, probed at most once
per freshness window, with an injected clock and a probe that fails while told to."""

from __future__ import annotations

import pytest

from core.errors import S3Error
from policy.catalog_gate import CatalogGate


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Catalog:
    def __init__(self) -> None:
        self.down = False
        self.probes = 0

    async def check_ready(self) -> None:
        self.probes += 1
        if self.down:
            raise S3Error("ServiceUnavailable", "The catalog database cannot be used.")


@pytest.mark.anyio
async def test_writes_wait_for_the_catalog() -> None:
    now = [0.0]
    catalog = Catalog()
    gate = CatalogGate(catalog.check_ready, fresh_s=1.0, clock=lambda: now[0])
    await gate.require()
    await gate.require()
    assert catalog.probes == 1  # answered within the last second: not probed again
    gate.answered()  # a record written
    now[0] = 1.5
    catalog.down = True
    with pytest.raises(S3Error) as refused:
        await gate.require()
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    assert gate.down
    catalog.down = False
    await gate.require()  # probed again at once: the catalog is back
    assert not gate.down


@pytest.mark.anyio
async def test_a_failed_record_refuses_the_next_write_until_a_probe_succeeds() -> None:
    catalog = Catalog()
    gate = CatalogGate(catalog.check_ready, clock=lambda: 0.0)
    await gate.require()
    catalog.down = True
    gate.failed(RuntimeError("connection reset"))
    with pytest.raises(S3Error):
        await gate.require()
    catalog.down = False
    await gate.require()
    assert catalog.probes == 3
