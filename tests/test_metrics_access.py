"""Who may scrape the metrics: loopback peers, else a Bearer token; the rule reads the TCP
peer, never X-Forwarded-For. And the metrics settings."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from gateway.metrics_endpoint import MetricsApp, is_loopback, scrape_refusal
from gateway.settings import Settings, SettingsError, load_settings
from policy.metrics import Metrics
from tests.support.gateway import in_process_gateway
from tests.support.metrics import METRICS, parse

TOKEN = "s3cr3t-metrics-token"


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("203.0.113.9", False),
        ("::ffff:10.0.0.5", False),
        ("", False),
        ("not-an-address", False),
    ],
)
def test_loopback_peers(peer: str, loopback: bool) -> None:
    assert is_loopback(peer) is loopback


def test_loopback_is_open_without_a_token() -> None:
    assert scrape_refusal("127.0.0.1", {}, None) is None
    assert scrape_refusal("::1", {}, TOKEN) is None


def test_a_remote_peer_without_a_configured_token_is_refused_403() -> None:
    refusal = scrape_refusal("10.0.0.5", {"authorization": f"Bearer {TOKEN}"}, None)
    assert refusal is not None
    assert refusal.status == 403


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"]
)
def test_a_remote_peer_needs_the_token(authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    refusal = scrape_refusal("10.0.0.5", headers, TOKEN)
    assert refusal is not None
    assert refusal.status == 401
    assert ("WWW-Authenticate", 'Bearer realm="pagewright-metrics"') in refusal.headers


def test_a_remote_peer_with_the_token_is_served() -> None:
    assert scrape_refusal("10.0.0.5", {"authorization": f"Bearer {TOKEN}"}, TOKEN) is None
    assert scrape_refusal("10.0.0.5", {"authorization": f"bearer {TOKEN}"}, TOKEN) is None


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded"])
def test_a_loopback_proxy_forwarding_for_someone_else_needs_the_token(header: str) -> None:
    refusal = scrape_refusal("127.0.0.1", {header: "203.0.113.9"}, None)
    assert refusal is not None
    assert refusal.status == 403
    assert (
        scrape_refusal("127.0.0.1", {header: "x", "authorization": f"Bearer {TOKEN}"}, TOKEN)
        is None
    )


async def call(app: MetricsApp, path: str, peer: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request to the metrics listener's app, as if from ``peer``."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 40000),
    }
    replies: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        replies.append(message)

    await app(scope, receive, send)
    return int(replies[0]["status"]), bytes(replies[1]["body"])


def test_the_metrics_listener_app_applies_the_rule_to_its_peer() -> None:
    metrics = Metrics()
    app = MetricsApp(metrics, TOKEN)

    async def run() -> None:
        status, body = await call(app, "/metrics", "10.0.0.5", {})
        assert status == 401
        status, body = await call(app, "/metrics", "10.0.0.5", {"authorization": f"Bearer {TOKEN}"})
        assert status == 200
        assert "pagewright_build_info" in parse(body.decode())
        status, _ = await call(app, METRICS, "127.0.0.1", {})
        assert status == 200
        status, _ = await call(app, "/other", "127.0.0.1", {})
        assert status == 404

    anyio.run(run)


def test_the_main_listener_ignores_x_forwarded_for_from_trusted_proxies(tmp_path: Path) -> None:
    """Even with loopback a trusted proxy (so aws:SourceIp is the forwarded address), the
    rule reads the peer: a forwarded scrape needs the token."""
    settings = Settings(log_level="warning", trusted_proxies=("127.0.0.1",), metrics_token=TOKEN)
    with in_process_gateway(tmp_path / "data", settings) as server:
        url = server.endpoint + METRICS
        forwarded = {"X-Forwarded-For": "127.0.0.1"}
        assert httpx.get(url).status_code == 200
        assert httpx.get(url, headers=forwarded).status_code == 401
        authorized = {**forwarded, "Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url, headers=authorized).status_code == 200


def test_metrics_settings_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "PWG_METRICS_ADDRESS": "127.0.0.1:9100",
            "PWG_METRICS_TOKEN": TOKEN,
            "PWG_METRICS_MAX_SITES": "7",
        }
    )
    assert settings.metrics_listener == ("127.0.0.1", 9100)
    assert settings.metrics_token == TOKEN
    assert settings.metrics_max_sites == 7
    assert TOKEN not in repr(settings)
    assert Settings().metrics_listener is None
    assert Settings().metrics_max_sites == 100


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PWG_METRICS_ADDRESS": "nonsense"}, "metrics_address"),
        ({"PWG_METRICS_ADDRESS": "127.0.0.1:9000"}, "must differ"),
        ({"PWG_METRICS_MAX_SITES": "-1"}, "metrics_max_sites"),
    ],
)
def test_bad_metrics_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)
