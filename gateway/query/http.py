"""The query protocol's door in the S3 endpoint: a ``POST /`` form to the service.

:func:`is_query_request` tells such a request from S3 ones (S3 has no ``POST`` on the
service, and its browser form uploads go to a bucket, as ``multipart/form-data``);
:func:`answer_query` reads the form and answers it. Only ``AssumeRoleWithWebIdentity`` is
served here, before and without S3 authentication (STS takes it unsigned); any other action
is ``InvalidAction``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from gateway.audit import audit_authentication_failure
from gateway.query.sts import (
    ACTION,
    AUTHENTICATION_FAILURES,
    StsError,
    StsService,
    assume_role_with_web_identity,
)
from gateway.query.sts import error_document as sts_error_document
from gateway.rate_limiting import raise_if_refused
from gateway.request import BodySource
from gateway.responses import Reply
from policy.rate_limits import RateLimiter

FORM: Final = "application/x-www-form-urlencoded"
MAX_FORM_BYTES: Final = 64 * 1024  # a WebIdentityToken is at most 20,000 characters


def is_query_request(method: str, target: str, headers: Mapping[str, str]) -> bool:
    """A query-protocol request: a form ``POST`` to the service (``/``)."""
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    return method == "POST" and target == "service" and content_type == FORM


async def answer_query(
    body: BodySource,
    query_string: str,
    request_id: str,
    sts: StsService | None,
    source: str = "-",
    limiter: RateLimiter | None = None,
) -> tuple[str, Reply]:
    """(the action, for the access log; the reply) of one query-protocol request.

    Parameters come from the form ``body`` and the query string (the body wins); ``source``
    is the client's address, for the audit line and ``limiter``'s per-source throttle: a
    throttled source is refused (``SlowDown``, raised), and a refused token counts as a
    failed authentication."""
    if limiter is not None:
        raise_if_refused(await limiter.check_source(source))

    async def refused(code: str) -> None:
        if limiter is not None and code in AUTHENTICATION_FAILURES:
            await limiter.auth_failed(source)

    action = "-"
    try:
        params = await _read_form(body, query_string)
        requested = params.get("Action", "")
        if requested != ACTION:  # logged as "-": the access log names only known actions
            raise StsError("InvalidAction", f"Could not find operation {requested[:64]!r}.")
        action = ACTION
        if sts is None:
            raise StsError("AccessDenied", "No OIDC issuer is configured on this gateway.")
    except StsError as error:
        audit_authentication_failure(request_id, source, None, action, error)
        document = sts_error_document(error.code, error.message, request_id)
        return action, _xml(error.status, document)
    status, document = await assume_role_with_web_identity(
        params, request_id, sts, source=source, on_refused=refused
    )
    return action, _xml(status, document)


async def _read_form(body_source: BodySource, query_string: str) -> dict[str, str]:
    body = bytearray()
    async for chunk in body_source:
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise StsError("ValidationError", "The request body is too large.")
    params = dict(parse_qsl(query_string, keep_blank_values=True))
    try:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise StsError("ValidationError", "The request body is not UTF-8 form data.") from None
    return params


def _xml(status: int, body: bytes) -> Reply:
    return Reply(status, [("Content-Type", "text/xml")], body)
