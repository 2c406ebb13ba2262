"""The ASGI application: one straight line from the socket to a handler and back.

parse address and query -> route (one table) -> authenticate (SigV4, SigV2) -> handler -> Reply,
written here and nowhere else. Every failure becomes S3's XML error with the request id;
an unexpected exception is logged with its cause and answered ``InternalError``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from core.context import RequestContext
from core.errors import S3Error, not_implemented
from core.numbers import is_decimal, saturating_decimal
from core.tracing import span
from gateway import readiness, s3xml, sse_headers
from gateway.access import AccessCheck, condition_context
from gateway.access_log import log_request, new_request_id
from gateway.api import API_PREFIX, ApiServices, create_api_app
from gateway.audit import (
    AUTHENTICATION_FAILURES,
    READ_METHODS,
    audit,
    audit_authentication_failure,
)
from gateway.auth import anonymous_auth, authenticate_request, is_anonymous, signature_kind
from gateway.client_address import source_address
from gateway.cors import Cors
from gateway.credentials import CredentialResolver
from gateway.handlers import HANDLERS
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
from gateway.rate_limiting import declared_bytes, limited_principal, raise_if_refused
from gateway.request import (
    BodySource,
    IdleLimitedReceive,
    S3Request,
    header_map,
    parse_address,
    parse_query,
)
from gateway.responses import Reply
from gateway.routing import Operation, resolve
from gateway.services import Services
from gateway.session_auth import security_token, session_lookup
from gateway.settings import Settings
from gateway.sigv4 import HttpRequestView
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
        )
        self.identities = identities
        self.box = box
        self._max_skew = timedelta(seconds=settings.max_clock_skew_seconds)
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
            self.query_actions, self.credentials, settings.region, self._max_skew
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
        request_id = new_request_id()
        method: str = scope["method"]
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query_string = scope["query_string"].decode("latin-1")
        headers = header_map(scope["headers"])
        source = BodySource(receive)
        operation: Operation | None = None
        query_action: str | None = None  # a query-protocol request's (known) Action
        principal = "-"
        check: AccessCheck | None = None
        source_ip = source_address(
            (scope.get("client") or ("", 0))[0],
            headers.get("x-forwarded-for"),
            self.settings.trusted_proxies,
        )
        resource = "/"
        bucket: str | None = None
        error_code: str | None = None
        internal = False  # a probe or a scrape: not counted in the request metrics
        try:
            if _is_probe(method, raw_path, headers, query_string):
                internal = True
                reply = await self._probe(raw_path)
            elif raw_path == METRICS_PATH:
                internal = True
                peer = (scope.get("client") or ("", 0))[0]
                reply = (
                    await metrics_reply(
                        self.metrics, method, peer, headers, self.settings.metrics_token
                    )
                    if self.settings.metrics_listener is None
                    else served_elsewhere()
                )
            elif is_query_request(method, raw_path, headers):
                outcome = await self.query.handle(
                    HttpRequestView(method, raw_path, query_string, headers),
                    source,
                    request_id,
                    datetime.now(UTC),
                    source_ip=source_ip,
                    admit=lambda: self._admit_source(source_ip),
                    authentication_failed=lambda: self.limiter.auth_failed(source_ip),
                )
                reply, principal, query_action = outcome.reply, outcome.principal, outcome.action
            elif method == "OPTIONS":  # a browser's CORS preflight: never authenticated
                address = parse_address(raw_path, headers.get("host", ""), self.settings.domains)
                resource, bucket = address.resource, address.bucket
                reply = await self.cors.preflight(bucket, address.target.upper(), headers)
            else:
                address = parse_address(raw_path, headers.get("host", ""), self.settings.domains)
                resource = address.resource
                bucket = address.bucket
                query = parse_query(query_string)
                operation = resolve(method, address.target, query, headers)
                if operation is None:
                    raise S3Error(
                        "MethodNotAllowed", Method=method, ResourceType=address.target.upper()
                    )
                view = HttpRequestView(method, raw_path, query_string, headers)
                now = datetime.now(UTC)
                signature: str | None = None
                raise_if_refused(await self.limiter.check_source(source_ip), self.metrics)
                with span("authenticate"):
                    if is_anonymous(view):
                        auth = anonymous_auth(view)
                    else:
                        signature = signature_kind(view)
                        try:
                            lookup = session_lookup(
                                await self.credentials.lookup_for(view, now),
                                self.box,
                                security_token(headers, query),
                                now,
                            )
                            auth = authenticate_request(
                                view,
                                lookup,
                                self.settings.region,
                                now,
                                self._max_skew,
                                address.bucket if address.virtual_host else None,
                            )
                        except S3Error as error:
                            if error.code in AUTHENTICATION_FAILURES:
                                await self.limiter.auth_failed(source_ip)
                            raise
                principal = auth.credential.principal
                identity = auth.credential.identity
                check = AccessCheck(
                    self.access,
                    identity,
                    condition_context(
                        identity,
                        source=source_ip,
                        secure=scope.get("scheme") == "https",
                        now=now,
                        headers=headers,
                        query=query,
                        region=self.settings.region,
                        signature=signature,
                        site=address.bucket,
                    ),
                    str(operation),
                )
                await _authorize(check, operation, address.bucket, address.key)
                raise_if_refused(
                    await self.limiter.admit(
                        limited_principal(identity, source_ip),
                        address.bucket,
                        declared_bytes(headers),
                    ),
                    self.metrics,
                )
                handler = HANDLERS.get(operation)
                if handler is None:
                    raise not_implemented(operation)
                sse_headers.check_allowed(operation, headers)
                request = S3Request(
                    operation=operation,
                    method=method,
                    address=address,
                    query=query,
                    headers=headers,
                    ctx=RequestContext(request_id, principal),
                    auth=auth,
                    source=source,
                    backend=self.backend,
                    settings=self.settings,
                    services=self.services,
                    access=check,
                    secure=scope.get("scheme") == "https",
                )
                reply = await handler(request)
        except S3Error as error:
            reply = _error_reply(error, request_id, resource)
            error_code = error.code
            if check is None and error.code in AUTHENTICATION_FAILURES:
                audit_authentication_failure(
                    request_id, source_ip, bucket, str(operation) if operation else None, error
                )
        except Exception:
            log.exception(
                "unhandled error", extra={"request_id": request_id, "operation": operation}
            )
            reply = _error_reply(S3Error("InternalError"), request_id, resource)
            error_code = "InternalError"
        if not source.finished and _has_body(headers) and _awaits_continue(headers, source):
            # The client sends the body only once asked (100 Continue): it was rejected
            # before that, so never ask; close, as the client may send it anyway.
            reply.headers.append(("Connection", "close"))
        elif not source.finished and _has_body(headers) and not await source.drain(_DRAIN_LIMIT):
            # A rejected body left unread would be parsed as the next request: close instead.
            reply.headers.append(("Connection", "close"))
        if bucket is not None and method != "OPTIONS" and "origin" in headers:
            reply.headers.extend(await self.cors.reply_headers(bucket, method, headers))
        if check is not None and operation in _SIGNED_IN_BODY:
            principal = check.principal.name  # the form's signer, once the handler knew it
        if check is not None:  # before the reply: whoever sees the reply can find its line
            _audit(request_id, check, method, reply.status)
            if check.denied or error_code == "AccessDenied":
                self.metrics.access_denied.labels("s3", str(operation)).inc()
        sent = _Sent()
        failure: BaseException | None = None
        try:
            await _send(send, reply, request_id, sent, head=method == "HEAD")
        except BaseException as error:  # a streamed body failed midway: the connection aborts
            failure = error
            raise
        finally:
            describe_request(
                query_action or (str(operation) if operation else None), bucket, request_id
            )
            log_request(
                request_id=request_id,
                principal=principal,
                operation=query_action or (str(operation) if operation else None),
                bucket=bucket,
                method=method,
                status=reply.status,
                bytes_received=source.received,
                bytes_sent=sent.bytes,
                started=started,
                error=failure,
                metrics=None if internal else self.metrics,
                surface="s3",
                error_code=error_code,
            )

    async def _admit_source(self, source_ip: str) -> None:
        """``SlowDown`` while ``source_ip`` is throttled for failed authentications."""
        raise_if_refused(await self.limiter.check_source(source_ip), self.metrics)

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


#: Operations whose decision a handler makes: per key (DeleteObjects), or by filtering what
#: it returns (ListBuckets, which needs only an authenticated principal), or once the form
#: names the key and its signer (PostObject, unsigned at the door: see _SIGNED_IN_BODY).
_DECIDED_BY_HANDLER = frozenset(
    {Operation.DeleteObjects, Operation.ListBuckets, Operation.PostObject}
)
#: Operations whose signature is in the body (a POST form), so anonymous at the door.
_SIGNED_IN_BODY = frozenset({Operation.PostObject})


async def _authorize(
    check: AccessCheck, operation: Operation, bucket: str | None, key: str | None
) -> None:
    """``AccessDenied`` unless the request's principal may do ``operation`` there."""
    if operation not in _DECIDED_BY_HANDLER:
        await check.require(operation.action, bucket, key)
    elif check.principal.kind == "anonymous" and operation not in _SIGNED_IN_BODY:
        raise S3Error("AccessDenied")


def _audit(request_id: str, check: AccessCheck, method: str, status: int) -> None:
    """The audit lines of a request: every denial, and every decision of a mutating one."""
    mutating = method not in READ_METHODS
    for entry in check.entries:
        if mutating or not entry.allowed:
            audit(request_id, entry, status)


_DRAIN_LIMIT = 1024 * 1024
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
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    return _is_probe(
        scope["method"],
        raw_path,
        header_map(scope["headers"]),
        scope["query_string"].decode("latin-1"),
    )


def _closing_after_timeout(send: Send, receive: IdleLimitedReceive) -> Send:
    """``send`` that closes the connection after a reply to a body that timed out (the
    rest of that body would otherwise keep the connection busy)."""

    async def closing_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and receive.timed_out:
            message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        await send(message)

    return closing_send


_CLOSE = (b"connection", b"close")


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or (is_decimal(length) and saturating_decimal(length) > 0)


def _awaits_continue(headers: dict[str, str], source: BodySource) -> bool:
    """The client asked for ``Expect: 100-continue`` and the body was never read (the
    server sends 100 Continue on the first read only)."""
    return headers.get("expect", "").lower() == "100-continue" and not source.asked


def _error_reply(error: S3Error, request_id: str, resource: str) -> Reply:
    body = s3xml.error_document(error.code, error.message, request_id, resource, error.fields)
    if error.status == 304:
        return Reply(304, list(error.headers.items()))
    return Reply(error.status, [("Content-Type", "application/xml"), *error.headers.items()], body)


class _Sent:
    """The body bytes of a reply written so far (kept when the stream fails midway)."""

    bytes: int = 0


async def _send(send: Send, reply: Reply, request_id: str, sent: _Sent, *, head: bool) -> None:
    """Write ``reply``, counting its body bytes in ``sent``. A stream failing midway aborts
    the connection (raised to the server) so the client sees a failed download, never a
    short one that looks complete."""
    body = reply.body
    length = reply.content_length
    if length is None:
        length = len(body) if isinstance(body, bytes) else None
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
    headers.append((b"x-amz-request-id", request_id.encode()))
    headers.append((b"x-amz-id-2", request_id.encode()))
    if length is not None and reply.status != 304 and not (reply.status == 204 and length == 0):
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if isinstance(body, bytes):
        await send({"type": "http.response.body", "body": b"" if head else body})
        sent.bytes = 0 if head else len(body)
        return
    try:
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent.bytes += len(chunk)
    finally:
        await body.aclose()
    await send({"type": "http.response.body", "body": b""})
