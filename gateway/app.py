"""The ASGI application: one straight line from the socket to a handler and back.

lifespan: the stack starts with the server and closes with it. http: the artifact API
(gateway.api), the probes, the metrics scrape, the query protocol (IAM, STS) or an S3
request, whose steps (address, route, authenticate, authorize, admit, handler) are
gateway.s3_pipeline's; the Reply is written here (gateway.reply_writer) and nowhere else,
then logged. Every failure becomes S3's XML error with the request id; an unexpected
exception is logged with its cause and answered ``InternalError``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import anyio

from core.errors import S3Error
from gateway import readiness
from gateway.access_log import log_request, new_request_id
from gateway.api import API_PREFIX, ApiServices, create_api_app
from gateway.client_address import source_address
from gateway.cors import Cors
from gateway.credentials import CredentialResolver
from gateway.metrics_endpoint import (
    METRICS_PATH,
    ReadinessGauge,
    metrics_reply,
    served_elsewhere,
)
from gateway.post_auth import FormAuthenticator
from gateway.query.dispatch import QueryDispatcher
from gateway.query.endpoint import QueryEndpoint, is_query_request
from gateway.query.iam import register_iam
from gateway.query.sts import StsService, register_sts
from gateway.reply_writer import Sent, send_reply
from gateway.request import BodySource, IdleLimitedReceive, header_map
from gateway.responses import Reply
from gateway.s3_pipeline import Exchange, S3Pipeline
from gateway.services import Services
from gateway.settings import Settings
from gateway.tracing import ServerSpans, Tracing, describe_request
from policy.access_control import AccessControl
from policy.access_store import AccessStore
from policy.api_keys import ApiKeyStore
from policy.cors_settings import CorsSettings
from policy.credentials import CredentialStore
from policy.identities import IdentityStore
from policy.metrics_sites import SiteUsageCollector
from policy.oidc import TokenVerifier
from policy.rate_limits import RateLimiter, unlimited
from policy.secret_box import SecretBox
from policy.stack import Stack, StartupError
from policy.tag_presence import TaggedSites
from translators.base import Backend

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger("pagewright.gateway")
INTERNAL_PREFIX = "/_pagewright/"


class Gateway:
    """The S3 endpoint over one Backend (already wrapped in its policies)."""

    def __init__(
        self,
        settings: Settings,
        stack: Stack,
        credentials: CredentialStore,
        identities: IdentityStore | None = None,
        *,
        box: SecretBox | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """``identities``: IAM users and their keys (None: root only, no IAM API); ``box``
        seals STS session tokens (None: temporary credentials are off); ``tracing``: a
        server span per request (gateway.tracing), shut down with the gateway (None: off)."""
        self.settings = settings
        self.tracing = tracing
        self._serve_http: Callable[[Scope, Receive, Send], Awaitable[None]] = (
            self._route_http
            if tracing is None
            else ServerSpans(self._route_http, tracing.tracer, untraced=_is_probe_scope)
        )
        self.stack = stack
        self.backend: Backend = stack.backend
        self.access = AccessControl(AccessStore(stack.catalog), identities)
        self.credentials = CredentialResolver(credentials, identities)
        self.cors = Cors(CorsSettings(stack.catalog))
        tagged = TaggedSites(stack.catalog)
        stack.catalog.add_state_listener(tagged.changed)
        self.services = Services(
            stack.policies,
            self.access,
            identities,
            self.cors.settings,
            FormAuthenticator(self.credentials, box, settings.region),
            stack.catalog,
            tagged,
            stack.locks,
        )
        self.identities = identities
        self.box = box
        self.limiter: RateLimiter = stack.limiter or unlimited(stack.policies.for_site)
        # Prometheus metrics (gateway.metrics_endpoint); read at scrape time: the per-site
        # gauges from the catalog and readiness, each cached.
        self.metrics = stack.metrics
        sites = SiteUsageCollector(
            stack.catalog.usage_by_site, stack.policies.for_site, settings.metrics_max_sites
        )
        self.metrics.registry.register(sites)
        self.metrics.before_scrape(sites.refresh)
        self.ready_gauge = ReadinessGauge(self.metrics, stack)
        self.metrics.before_scrape(self.ready_gauge.refresh)
        self.pipeline = S3Pipeline(
            settings,
            self.backend,
            self.services,
            self.access,
            self.credentials,
            box,
            self.limiter,
            self.metrics,
            self.cors,
        )
        self.token_verifier = TokenVerifier(settings.oidc_issuers)
        self.sts = (
            StsService(
                self.token_verifier,
                box,
                settings.sts_role_policy,
                settings.sts_max_session_seconds,
            )
            if box is not None and self.token_verifier.configured
            else None
        )
        # The query protocol at POST /: IAM's actions and STS's, on one dispatcher.
        self.query_actions = QueryDispatcher()
        if identities is not None:
            register_iam(
                self.query_actions,
                identities,
                self.credentials,
                self.access,
                lambda user: self.access.forget(user=user),
            )
        register_sts(self.query_actions, self.sts, self.limiter)
        self.query = QueryEndpoint(
            self.query_actions, self.credentials, settings.region, self.pipeline.max_skew
        )
        self.api = create_api_app(
            ApiServices(
                stack.catalog,
                stack.backend,
                stack.policies,
                stack.retention,
                settings,
                self.access,
                ApiKeyStore(stack.catalog),
                limiter=self.limiter,
                token_verifier=self.token_verifier,
                metrics=self.metrics,
                jobs=stack.jobs,
                locks=stack.locks,
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._serve_http(scope, receive, send)

    async def _route_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A client too slow with its body is answered RequestTimeout (see BodySource).
        receive = IdleLimitedReceive(receive, self.settings.body_timeout_seconds)
        if _is_api(scope["path"]):
            await self.api(scope, receive, _closing_after_timeout(send, receive))
        else:
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start the stack (backend, catalog, periodic retention) for the server's life, and
        close it (lease dropped, connections released) once the background passes stop."""
        async with anyio.create_task_group() as background:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await self.stack.run(background)
                    except Exception as exc:
                        problem = (
                            str(exc)
                            if isinstance(exc, StartupError)
                            else f"the gateway could not start: {exc}"
                        )
                        log.exception("startup failed", extra={"backend": self.backend.name})
                        print(f"pagewright-gateway: {problem}", file=sys.stderr, flush=True)
                        background.cancel_scope.cancel()
                        await send({"type": "lifespan.startup.failed", "message": problem})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    background.cancel_scope.cancel()
                    break
        # Outside the cancelled task group: closing inside it would be cancelled at its first
        # await, leaving the lease held and the catalog's connections open.
        try:
            await self.stack.close()
        finally:
            if self.tracing is not None:  # the spans still queued are exported now
                await anyio.to_thread.run_sync(self.tracing.shutdown)
            await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = header_map(scope["headers"])
        peer = (scope.get("client") or ("", 0))[0]
        exchange = Exchange(
            request_id=new_request_id(),
            method=scope["method"],
            raw_path=_raw_path(scope),
            query_string=scope["query_string"].decode("latin-1"),
            headers=headers,
            source=BodySource(receive),
            source_ip=source_address(
                peer, headers.get("x-forwarded-for"), self.settings.trusted_proxies
            ),
            secure=scope.get("scheme") == "https",
        )
        method, raw_path, request_id = exchange.method, exchange.raw_path, exchange.request_id
        internal = False  # a probe or a scrape: not counted in the request metrics
        try:
            if _is_probe(method, raw_path, headers, exchange.query_string):
                internal = True
                reply = await self._probe(raw_path)
            elif raw_path == METRICS_PATH:
                internal = True
                reply = (
                    await metrics_reply(
                        self.metrics, method, peer, headers, self.settings.metrics_token
                    )
                    if self.settings.metrics_listener is None
                    else served_elsewhere()
                )
            elif is_query_request(method, raw_path, headers):
                reply = await self._query(exchange)
            elif method == "OPTIONS":  # a browser's CORS preflight: never authenticated
                reply = await self.pipeline.preflight(exchange)
            else:
                reply = await self.pipeline.handle(exchange)
        except S3Error as error:
            reply = self.pipeline.failed(exchange, error)
        except Exception:
            log.exception(
                "unhandled error",
                extra={"request_id": request_id, "operation": exchange.operation},
            )
            reply = self.pipeline.failed(exchange, S3Error("InternalError"))
        await self.pipeline.finish(exchange, reply)
        sent = Sent()
        failure: BaseException | None = None
        try:
            await send_reply(send, reply, request_id, sent, head=method == "HEAD")
        except BaseException as error:  # a streamed body failed midway: the connection aborts
            failure = error
            raise
        finally:
            describe_request(exchange.action, exchange.bucket, request_id)
            log_request(
                request_id=request_id,
                principal=exchange.principal,
                operation=exchange.action,
                bucket=exchange.bucket,
                method=method,
                status=reply.status,
                bytes_received=exchange.source.received,
                bytes_sent=sent.bytes,
                started=started,
                error=failure,
                metrics=None if internal else self.metrics,
                surface="s3",
                error_code=exchange.error_code,
            )

    async def _query(self, exchange: Exchange) -> Reply:
        """The query protocol (IAM, STS) at ``POST /``; its principal and Action are kept in
        ``exchange`` for the access log."""
        source_ip = exchange.source_ip
        outcome = await self.query.handle(
            exchange.view(),
            exchange.source,
            exchange.request_id,
            datetime.now(UTC),
            source_ip=source_ip,
            admit=lambda: self.pipeline.admit_source(source_ip),
            authentication_failed=lambda: self.limiter.auth_failed(source_ip),
        )
        exchange.principal, exchange.query_action = outcome.principal, outcome.action
        return outcome.reply

    async def _probe(self, raw_path: str) -> Reply:
        """Unauthenticated probes. ``/healthz``: the process serves requests (no I/O).
        ``/readyz``: storage, catalog and free space (see gateway.readiness); 503 naming
        the failed checks otherwise."""
        if raw_path.endswith("healthz"):
            return Reply(200, [("Content-Type", "text/plain")], b"ok\n")
        ready, document = await readiness.report(self.stack)
        self.ready_gauge.set(ready)
        body = json.dumps(document).encode()
        return Reply(200 if ready else 503, [("Content-Type", "application/json")], body)


_PROBES = frozenset(
    {"/healthz", "/readyz", INTERNAL_PREFIX + "healthz", INTERNAL_PREFIX + "readyz"}
)


def _is_api(path: str) -> bool:
    """The artifact API (JSON, Bearer keys) rather than S3: ``/_pagewright/v1[/...]``. No
    bucket can shadow it: ``_pagewright`` is not a valid bucket name."""
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _is_probe(method: str, raw_path: str, headers: dict[str, str], query_string: str) -> bool:
    """A liveness/readiness probe: an unsigned GET of a probe path. A signed GET /healthz is
    a ListObjects of a bucket named ``healthz``, as S3 clients mean it."""
    return (
        method == "GET"
        and raw_path in _PROBES
        and "authorization" not in headers
        and "Signature" not in query_string
    )


def _is_probe_scope(scope: Scope) -> bool:
    """:func:`_is_probe` of an ASGI request (probes are not traced)."""
    return _is_probe(
        scope["method"],
        _raw_path(scope),
        header_map(scope["headers"]),
        scope["query_string"].decode("latin-1"),
    )


def _raw_path(scope: Scope) -> str:
    """The request target's path as the client sent it (still percent-encoded)."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw.decode("latin-1")


def _closing_after_timeout(send: Send, receive: IdleLimitedReceive) -> Send:
    """``send`` that closes the connection after a reply to a body that timed out (the
    rest of that body would otherwise keep the connection busy)."""

    async def closing_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and receive.timed_out:
            message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        await send(message)

    return closing_send


_CLOSE = (b"connection", b"close")
