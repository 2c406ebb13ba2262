"""gateway.app's lifespan: the stack starts with the server and is closed with it (the lease
dropped, the catalog's connections released), driven as an ASGI server drives it."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio

from commands.serve import build_app
from gateway.settings import Settings
from policy.catalog import SqlCatalog


def test_shutdown_drops_the_lease_and_closes_the_stack(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, backend="memory://", root_access_key="AK", root_secret_key="SK"
    )
    app = build_app(settings, {})
    observer = SqlCatalog(settings.catalog)
    sent: list[MutableMapping[str, Any]] = []
    leases_while_serving: list[int] = []

    async def receive() -> MutableMapping[str, Any]:
        if not sent:
            return {"type": "lifespan.startup"}
        leases_while_serving.append(len(await observer.leases()))
        return {"type": "lifespan.shutdown"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def lifespan() -> int:
        await observer.start()
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
            return len(await observer.leases())
        finally:
            await observer.close()

    leases_after = anyio.run(lifespan)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert leases_while_serving == [1]
    assert leases_after == 0
