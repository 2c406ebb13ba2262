"""A query-protocol request from the socket to its reply: recognise, read, authenticate,
dispatch, render.

Recognised by :func:`is_query_request`: ``POST /`` with a form body, which no S3
operation is. The body is read whole, at most :data:`MAX_BODY` bytes, and bound to the
signature by its SHA256 (query-protocol SDKs do not send ``x-amz-content-sha256``). Signed
actions accept SigV4 scoped to their own service (``iam``, ``sts``), in the gateway's region
or in ``us-east-1``, where SDKs sign the global IAM and STS endpoints.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl

from core.errors import S3Error
from gateway.audit import AUTHENTICATION_FAILURES
from gateway.credentials import CredentialResolver, requested_scope
from gateway.query.dispatch import QueryCall, QueryDispatcher, QueryReply
from gateway.query.errors import QueryError, query_error
from gateway.query.xml import CONTENT_TYPE, error_document, response_document
from gateway.request import BodySource
from gateway.responses import Reply
from gateway.sigv4 import HttpRequestView
from policy.identity_rules import IdentityError
from policy.principals import ANONYMOUS

log = logging.getLogger("pagewright.gateway")

MAX_BODY: Final = 64 * 1024
FORM: Final = "application/x-www-form-urlencoded"
IAM_NAMESPACE: Final = "https://iam.amazonaws.com/doc/2010-05-08/"
GLOBAL_REGION: Final = "us-east-1"


def is_query_request(method: str, raw_path: str, headers: Mapping[str, str]) -> bool:
    """A query-protocol call: a form ``POST`` to ``/`` (no S3 operation is: S3's POSTs
    name a bucket or key, and a browser upload's form is ``multipart/form-data``)."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    return method == "POST" and raw_path == "/" and media_type == FORM


@dataclass(frozen=True)
class QueryOutcome:
    """The reply, and for the access log the caller's name and the action (when known)."""

    reply: Reply
    principal: str
    action: str | None


class QueryEndpoint:
    """Serves query-protocol requests with ``dispatcher``'s actions."""

    def __init__(
        self,
        dispatcher: QueryDispatcher,
        credentials: CredentialResolver,
        region: str,
        max_skew: timedelta,
    ) -> None:
        self.dispatcher = dispatcher
        self._credentials = credentials
        self._region = region
        self._max_skew = max_skew

    async def handle(
        self,
        req: HttpRequestView,
        source: BodySource,
        request_id: str,
        now: datetime,
        *,
        source_ip: str = "-",
        admit: Callable[[], Awaitable[None]] | None = None,
        authentication_failed: Callable[[], Awaitable[None]] | None = None,
    ) -> QueryOutcome:
        """The reply to ``req``; never raises for a client's mistake or a handler's failure
        (an unexpected exception is logged and answered ``InternalFailure``).

        ``source_ip`` is the client's address (for handlers' audit lines). ``admit`` runs
        first and may refuse the request with an :class:`S3Error` (the source's rate limit:
        answered ``Throttling``, 503); ``authentication_failed`` is awaited after a failed
        signature (one of ``gateway.audit.AUTHENTICATION_FAILURES``). Parameters come from
        the form body and the query string (the body wins).
        """
        namespace = IAM_NAMESPACE
        principal = "-"
        action_name: str | None = None
        try:
            if admit is not None:
                await admit()
            body = await _read(source)
            params = {**dict(parse_qsl(req.query_string, keep_blank_values=True)), **_form(body)}
            namespace = self.dispatcher.namespace_for(params.get("Version"), namespace)
            action = self.dispatcher.action(params.get("Action"), params.get("Version"))
            action_name, namespace = action.name, action.namespace
            caller, credential = ANONYMOUS, None
            if action.signed:
                auth = await self._credentials.authenticate_v4(
                    req,
                    self._signing_region(req),
                    now,
                    self._max_skew,
                    services=frozenset({action.service}),
                    body_sha256=hashlib.sha256(body).hexdigest(),
                )
                credential = auth.credential
                caller, principal = credential.identity, credential.principal
            call = QueryCall(action.name, params, caller, credential, request_id, source_ip)
            answer = await action.handler(call)
            if isinstance(answer, QueryReply):
                reply = Reply(answer.status, [("Content-Type", CONTENT_TYPE)], answer.document)
            else:
                document = response_document(action.name, action.namespace, answer, request_id)
                reply = Reply(200, [("Content-Type", CONTENT_TYPE)], document)
        except (QueryError, IdentityError, S3Error) as error:
            reply = _error_reply(query_error(error), namespace, request_id)
            failed = isinstance(error, S3Error) and error.code in AUTHENTICATION_FAILURES
            if failed and authentication_failed is not None:
                await authentication_failed()
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            failure = QueryError("InternalFailure", "The request processing has failed.")
            reply = _error_reply(failure, namespace, request_id)
        return QueryOutcome(reply, principal, action_name)

    def _signing_region(self, req: HttpRequestView) -> str:
        """The gateway's region, or the global endpoints' when the request is scoped to it."""
        scope = requested_scope(req)  # (key, date, region, service, terminator)
        if scope is not None and len(scope) == 5 and scope[2] == GLOBAL_REGION:
            return GLOBAL_REGION
        return self._region


async def _read(source: BodySource) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in source:
        size += len(chunk)
        if size > MAX_BODY:
            raise QueryError(
                "RequestEntityTooLarge", f"The request body is larger than {MAX_BODY} bytes."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _form(body: bytes) -> dict[str, str]:
    """The form parameters of ``body``; a parameter given twice is refused."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise QueryError("ValidationError", "The request body is not UTF-8.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise QueryError("ValidationError", f"The parameter {name} is given twice.")
        params[name] = value
    return params


def _error_reply(error: QueryError, namespace: str, request_id: str) -> Reply:
    body = error_document(error, namespace, request_id)
    return Reply(error.status, [("Content-Type", CONTENT_TYPE), *error.headers.items()], body)
