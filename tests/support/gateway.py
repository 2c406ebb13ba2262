"""The real gateway served in-process, for tests that only talk HTTP to it.

:func:`in_process_gateway` builds the app exactly as ``pagewright-gateway serve`` does
(``commands.serve.build_app``: the policy stack over the ``memory://`` translator, a SQLite
catalog in the data directory) and serves it with uvicorn in a thread on a free port, so
boto3, httpx and hand-made sockets reach it as they would a real server, without a process
to start. Tests of the process itself (signals, kill -9, startup, TLS, the filesystem store)
use :mod:`tests.support.servers` and are marked ``server``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import uvicorn

from commands.serve import build_app
from gateway.app import Gateway
from gateway.http_protocol import bounded_protocol
from gateway.settings import Settings
from tests.support.servers import ACCESS_KEY, REGION, SECRET_KEY, free_port


class GatewayEndpoint(Protocol):
    """What a client of a gateway under test needs, in-process or subprocess alike."""

    endpoint: str
    port: int
    data_dir: Path
    cafile: Path | None
    access_key: str
    secret_key: str
    region: str
    env: dict[str, str]


@dataclass
class InProcessGateway:
    """A gateway served in this process: its endpoint, credentials, data dir and app."""

    endpoint: str
    port: int
    data_dir: Path
    app: Gateway
    cafile: Path | None = None
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    env: dict[str, str] = field(default_factory=dict)


@contextmanager
def in_process_gateway(
    data_dir: Path, settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> Iterator[InProcessGateway]:
    """Serve a gateway over a fresh memory store until the context exits.

    ``settings`` (default: the defaults) are completed with ``data_dir``, a free port on
    127.0.0.1, the ``memory://`` backend and the test credentials. ``env`` is what a command
    run against the same data dir (``api-key create``) needs. ``environ`` (default: this
    process's) is the environment ``build_app`` is given (SDK and ``OTEL_*`` variables).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    configured = replace(
        settings or Settings(log_level="warning"),
        data_dir=data_dir,
        backend="memory://",
        host="127.0.0.1",
        port=port,
        root_access_key=ACCESS_KEY,
        root_secret_key=SECRET_KEY,
    )
    env = {
        **(os.environ if environ is None else environ),
        "PWG_ROOT_ACCESS_KEY": ACCESS_KEY,
        "PWG_ROOT_SECRET_KEY": SECRET_KEY,
    }
    app = build_app(configured, env)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            http=bounded_protocol(configured.max_header_bytes, configured.header_timeout_seconds),
            loop="asyncio",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=server.run, name=f"gateway-{port}", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the in-process gateway did not start (see the log)")
            time.sleep(0.01)
        yield InProcessGateway(f"http://127.0.0.1:{port}", port, data_dir, app, env=env)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
