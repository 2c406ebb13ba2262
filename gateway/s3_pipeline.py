"""The steps of one S3 request, between the app's door (gateway.app) and the written reply.

:meth:`S3Pipeline.handle`: address -> route (one table) -> the source's throttle ->
authenticate (SigV4, SigV2, or anonymous) -> authorize -> admit (rate limits) -> handler.
:meth:`S3Pipeline.preflight` answers a browser's CORS preflight (never authenticated).
:meth:`S3Pipeline.failed` turns an ``S3Error`` into its reply, auditing a failed
authentication; :meth:`S3Pipeline.finish` settles an unread body, adds the CORS headers and
writes the audit lines before the reply is sent.

Each step records what it learnt in the request's :class:`Exchange` (the resource, bucket,
operation, principal, access check), so the steps after a failure, the access log and the
metrics see how far the request got.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.context import RequestContext
from core.errors import S3Error, not_implemented
from core.tracing import span
from gateway import sse_headers
from gateway.access import AccessCheck, condition_context
from gateway.audit import AUTHENTICATION_FAILURES, READ_METHODS, audit, audit_authentication_failure
from gateway.auth import anonymous_auth, authenticate_request, is_anonymous, signature_kind
from gateway.cors import Cors
from gateway.credentials import CredentialResolver
from gateway.handlers import HANDLERS
from gateway.rate_limiting import declared_bytes, limited_principal, raise_if_refused
from gateway.reply_writer import error_reply, settle_unread_body
from gateway.request import BodySource, S3Request, parse_address, parse_query
from gateway.responses import Reply
from gateway.routing import Operation, resolve
from gateway.services import Services
from gateway.session_auth import security_token, session_lookup
from gateway.settings import Settings
from gateway.sigv4 import AuthResult, HttpRequestView
from policy.access_control import AccessControl
from policy.metrics import Metrics
from policy.rate_limits import RateLimiter
from policy.secret_box import SecretBox
from translators.base import Backend


@dataclass
class Exchange:
    """One request as far as the gateway has got with it: what it sent, then what each step
    learnt (``resource``, ``bucket``, ``operation``, ``principal``, ``check``) and how it
    ended (``error_code``)."""

    request_id: str
    method: str
    raw_path: str
    query_string: str
    headers: dict[str, str]
    source: BodySource
    source_ip: str
    secure: bool
    resource: str = "/"
    bucket: str | None = None
    operation: Operation | None = None
    query_action: str | None = None  # a query-protocol request's (known) Action
    principal: str = "-"
    check: AccessCheck | None = None
    error_code: str | None = None

    @property
    def action(self) -> str | None:
        """The operation's name for the access log and the span (None: none was resolved)."""
        return self.query_action or (str(self.operation) if self.operation else None)

    def view(self) -> HttpRequestView:
        """The request as the signature checks read it."""
        return HttpRequestView(self.method, self.raw_path, self.query_string, self.headers)


class S3Pipeline:
    """The S3 request's steps over the gateway's wired parts (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        services: Services,
        access: AccessControl,
        credentials: CredentialResolver,
        box: SecretBox | None,
        limiter: RateLimiter,
        metrics: Metrics,
        cors: Cors,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.services = services
        self.access = access
        self.credentials = credentials
        self.box = box
        self.limiter = limiter
        self.metrics = metrics
        self.cors = cors
        self.max_skew = timedelta(seconds=settings.max_clock_skew_seconds)

    async def admit_source(self, source_ip: str) -> None:
        """``SlowDown`` while ``source_ip`` is throttled for failed authentications."""
        raise_if_refused(await self.limiter.check_source(source_ip), self.metrics)

    async def preflight(self, exchange: Exchange) -> Reply:
        """A browser's CORS preflight (``OPTIONS``), answered from the site's CORS rules."""
        headers = exchange.headers
        address = parse_address(exchange.raw_path, headers.get("host", ""), self.settings.domains)
        exchange.resource, exchange.bucket = address.resource, address.bucket
        return await self.cors.preflight(address.bucket, address.target.upper(), headers)

    async def handle(self, exchange: Exchange) -> Reply:
        """Route, authenticate, authorize and admit the request, then run its handler."""
        method, headers = exchange.method, exchange.headers
        address = parse_address(exchange.raw_path, headers.get("host", ""), self.settings.domains)
        exchange.resource, exchange.bucket = address.resource, address.bucket
        view = exchange.view()  # authentication's view of the request; its query parsed once
        query = parse_query(exchange.query_string, view.query_pairs)
        operation = resolve(method, address.target, query, headers)
        exchange.operation = operation
        if operation is None:
            raise S3Error("MethodNotAllowed", Method=method, ResourceType=address.target.upper())
        now = datetime.now(UTC)
        await self.admit_source(exchange.source_ip)
        with span("authenticate"):
            signature = None if is_anonymous(view) else signature_kind(view)
            auth = (
                anonymous_auth(view)
                if signature is None
                else await self._signed(
                    exchange, view, query, now, address.bucket if address.virtual_host else None
                )
            )
        exchange.principal = auth.credential.principal
        identity = auth.credential.identity
        check = AccessCheck(
            self.access,
            identity,
            condition_context(
                identity,
                source=exchange.source_ip,
                secure=exchange.secure,
                now=now,
                headers=headers,
                query=query,
                region=self.settings.region,
                signature=signature,
                site=address.bucket,
            ),
            str(operation),
        )
        exchange.check = check
        await _authorize(check, operation, address.bucket, address.key)
        raise_if_refused(
            await self.limiter.admit(
                limited_principal(identity, exchange.source_ip),
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
            ctx=RequestContext(exchange.request_id, exchange.principal),
            auth=auth,
            source=exchange.source,
            backend=self.backend,
            settings=self.settings,
            services=self.services,
            access=check,
            secure=exchange.secure,
        )
        return await handler(request)

    async def _signed(
        self,
        exchange: Exchange,
        view: HttpRequestView,
        query: dict[str, str],
        now: datetime,
        virtual_bucket: str | None,
    ) -> AuthResult:
        """The credential of a signed request, once its signature is verified. A failed
        authentication counts against the source's throttle."""
        try:
            lookup = session_lookup(
                await self.credentials.lookup_for(view, now),
                self.box,
                security_token(exchange.headers, query),
                now,
            )
            return authenticate_request(
                view, lookup, self.settings.region, now, self.max_skew, virtual_bucket
            )
        except S3Error as error:
            if error.code in AUTHENTICATION_FAILURES:
                await self.limiter.auth_failed(exchange.source_ip)
            raise

    def failed(self, exchange: Exchange, error: S3Error) -> Reply:
        """The reply to a request refused with ``error``; a failed authentication (no access
        check made yet) is audited."""
        exchange.error_code = error.code
        if exchange.check is None and error.code in AUTHENTICATION_FAILURES:
            audit_authentication_failure(
                exchange.request_id,
                exchange.source_ip,
                exchange.bucket,
                str(exchange.operation) if exchange.operation else None,
                error,
            )
        return error_reply(error, exchange.request_id, exchange.resource)

    async def finish(self, exchange: Exchange, reply: Reply) -> None:
        """Before ``reply`` is sent: settle an unread body, add the site's CORS headers, and
        write the audit lines (before the reply: whoever sees it can find its line)."""
        method, headers, check = exchange.method, exchange.headers, exchange.check
        await settle_unread_body(reply, headers, exchange.source)
        if exchange.bucket is not None and method != "OPTIONS" and "origin" in headers:
            reply.headers.extend(await self.cors.reply_headers(exchange.bucket, method, headers))
        if check is None:
            return
        if exchange.operation in _SIGNED_IN_BODY:
            exchange.principal = check.principal.name  # the form's signer, once the handler knew it
        _audit(exchange.request_id, check, method, reply.status)
        if check.denied or exchange.error_code == "AccessDenied":
            self.metrics.access_denied.labels("s3", str(exchange.operation)).inc()


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
