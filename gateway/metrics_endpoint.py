"""``GET /_pagewright/metrics``: the gateway's Prometheus metrics, and who may scrape them.

The reply is Prometheus' text exposition format of the gateway's own registry
(:class:`policy.metrics.Metrics`), values read at scrape time refreshed first (the per-site
gauges, ``pagewright_ready``). It is served by the main listener, or, with
``metrics_address`` set, only by a listener of its own (:class:`MetricsApp`, which answers
``/metrics`` and ``/_pagewright/metrics``).

Who may scrape (:func:`scrape_refusal`) is decided on the TCP peer itself, never on
``X-Forwarded-For`` (which a client writes): a loopback peer is let in, unless it forwards
for someone else (an ``X-Forwarded-For`` or ``Forwarded`` header: a reverse proxy on the
same host passing a remote client's request); anyone else needs
``Authorization: Bearer <metrics_token>``, and without a token configured is refused 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

from gateway import readiness
from gateway.responses import Reply
from policy.circuit_breaker import BreakerState
from policy.metrics import Metrics
from policy.stack import Stack

log = logging.getLogger("pagewright.metrics")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

METRICS_PATH: Final = "/_pagewright/metrics"
#: The paths the separate metrics listener answers.
LISTENER_PATHS: Final = frozenset({"/metrics", METRICS_PATH})
#: The text exposition format. Every name is a classic one (no UTF-8 quoting needed), so
#: the 0.0.4 format that every Prometheus version reads is exactly what is written.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: How long a readiness result read at scrape time is reused.
READY_TTL_S: Final = 15.0


def is_loopback(peer: str) -> bool:
    """Whether ``peer`` (the TCP peer's address) is a loopback address (IPv4-mapped too)."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def scrape_refusal(peer: str, headers: Mapping[str, str], token: str | None) -> Reply | None:
    """None if the scrape from ``peer`` with ``headers`` (lower-case names) is allowed, else
    the refusal: 401 for a missing or wrong token, 403 when no token is configured."""
    forwarded = "x-forwarded-for" in headers or "forwarded" in headers
    if is_loopback(peer) and not forwarded:
        return None
    if token is None:
        return _text(403, "Metrics are served to loopback only: no metrics_token is set.\n")
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    reply = _text(401, "A valid Authorization: Bearer <metrics_token> header is required.\n")
    reply.headers.append(("WWW-Authenticate", 'Bearer realm="pagewright-metrics"'))
    return reply


async def metrics_reply(
    metrics: Metrics, method: str, peer: str, headers: Mapping[str, str], token: str | None
) -> Reply:
    """The reply to a request for the metrics path."""
    if method not in ("GET", "HEAD"):
        reply = _text(405, "Only GET is allowed here.\n")
        reply.headers.append(("Allow", "GET, HEAD"))
        return reply
    refusal = scrape_refusal(peer, headers, token)
    if refusal is not None:
        return refusal
    body = await metrics.scrape()
    return Reply(200, [("Content-Type", CONTENT_TYPE)], body)


def served_elsewhere() -> Reply:
    """The main listener's reply to the metrics path when a metrics listener serves it."""
    return _text(404, "Not found: the metrics are served on the metrics address.\n")


#: ``pagewright_circuit_breaker_state``'s value of each breaker state.
_BREAKER_VALUES: Final = {
    BreakerState.CLOSED: 0,
    BreakerState.HALF_OPEN: 1,
    BreakerState.OPEN: 2,
}


class ReadinessGauge:
    """Keeps ``pagewright_ready`` current: set by every readiness probe (:meth:`set`) and,
    at scrape time, from a check at most :data:`READY_TTL_S` old (:meth:`refresh`); and
    ``pagewright_circuit_breaker_state`` of a remote backend, at every scrape."""

    def __init__(self, metrics: Metrics, stack: Stack) -> None:
        self._metrics = metrics
        self._stack = stack
        self._checked_at: float | None = None

    def set(self, ready: bool) -> None:
        self._metrics.ready.set(1 if ready else 0)
        self._checked_at = time.monotonic()

    async def refresh(self) -> None:
        breaker = self._stack.breaker
        if breaker is not None:
            value = _BREAKER_VALUES[breaker.state]
            self._metrics.circuit_breaker_state.labels(backend=breaker.name).set(value)
        if self._checked_at is not None and time.monotonic() - self._checked_at < READY_TTL_S:
            return
        try:
            ready, _ = await readiness.report(self._stack)
        except Exception:  # e.g. scraped on the metrics listener before the stack started
            log.debug("metrics: the readiness check failed", exc_info=True)
            ready = False
        self.set(ready)


class MetricsApp:
    """The separate metrics listener's ASGI app: the metrics paths, and 404 for the rest."""

    def __init__(self, metrics: Metrics, token: str | None) -> None:
        self._metrics = metrics
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan of its own: the gateway's starts the stack
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        if scope["path"] in LISTENER_PATHS:
            peer = (scope.get("client") or ("", 0))[0]
            reply = await metrics_reply(self._metrics, scope["method"], peer, headers, self._token)
        else:
            reply = _text(404, "Not found: metrics are at /metrics.\n")
        assert isinstance(reply.body, bytes)
        body = b"" if scope["method"] == "HEAD" else reply.body
        raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
        raw.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def _text(status: int, message: str) -> Reply:
    return Reply(status, [("Content-Type", "text/plain; charset=utf-8")], message.encode())
