"""``serve --metrics-address``: a second listener in the gateway's process serves only the
metrics, and the process still stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.clients import make_s3_client
from tests.support.metrics import METRICS, scrape, value
from tests.support.servers import free_port, running_gateway, start_gateway

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server


def test_a_separate_listener_serves_only_the_metrics(tmp_path: Path) -> None:
    port = free_port()
    listener = f"http://127.0.0.1:{port}"
    with running_gateway(tmp_path / "data", "--metrics-address", f"127.0.0.1:{port}") as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket="listened-site")
        scrape(server, f"{listener}{METRICS}")  # the main listener's path is served too
        families = scrape(server, f"{listener}/metrics")
        assert (
            value(
                families,
                "pagewright_requests_total",
                surface="s3",
                operation="CreateBucket",
                status_class="2xx",
            )
            == 1
        )
        assert httpx.get(f"{listener}/anything-else").status_code == 404
        # the main listener no longer serves them
        assert httpx.get(server.endpoint + METRICS).status_code == 404
        server.stop(signal.SIGTERM)
        # uvicorn re-raises the signal it handled once it has shut down gracefully
        assert server.process.returncode in (0, -signal.SIGTERM)
    # the listener is closed with the process
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass


def test_a_metrics_address_in_use_stops_the_start(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="metrics_address"):
            start_gateway(tmp_path / "data", "--metrics-address", f"127.0.0.1:{port}")
