"""STS ``AssumeRoleWithWebIdentity``: an OIDC token in, temporary S3 credentials out.

A CI job holding a token from a configured issuer (:mod:`policy.oidc`) exchanges it, unsigned
as in AWS, for an ``ASIA`` key pair and a session token (:mod:`policy.sessions`) that act
for the token's sites with the token's roles, capped by the configured role policy
(``sts_role_policy``), for ``DurationSeconds`` (900 up to ``sts_max_session_seconds``;
default 3600 or that maximum if lower).

:func:`assume_role_with_web_identity` takes the form parameters and returns the HTTP status
and STS's XML: the ``AssumeRoleWithWebIdentityResponse`` or an ``ErrorResponse``
(:data:`STS_ERRORS`). ``RoleArn`` must be a syntactically valid role ARN; no role is looked
up (the gateway has one web-identity role: the token's sites, capped by the role policy).
The session's ARN (``AssumedRoleUser/Arn``) is the one the access decision and the audit log
know it by, ``arn:aws:sts::000000000000:assumed-role/web-identity/<principal>``, named after
the token's principal rather than the caller-chosen ``RoleSessionName`` (which goes into
``AssumedRoleId`` only), so that a bucket policy written from it matches the session.
Inline session policies (``Policy``, ``PolicyArns``) are refused: they are not supported.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from lxml import etree

from core.numbers import NumberError, decimal
from gateway.audit import AuditEntry, audit, audit_authentication_failure
from gateway.query.dispatch import QueryAction, QueryCall, QueryDispatcher, QueryReply
from policy.oidc import (
    IssuerUnavailable,
    TokenError,
    TokenExpired,
    TokenVerifier,
    VerifiedToken,
)
from policy.principals import Principal
from policy.rate_limits import RateLimiter
from policy.secret_box import SecretBox
from policy.sessions import Session, mint_session

NS: Final = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION: Final = "2011-06-15"
ACTION: Final = "AssumeRoleWithWebIdentity"
MIN_SESSION_SECONDS: Final = 900
DEFAULT_SESSION_SECONDS: Final = 3600

#: STS error code -> HTTP status (the codes AssumeRoleWithWebIdentity documents).
STS_ERRORS: Final[dict[str, int]] = {
    "InvalidIdentityToken": 400,
    "ExpiredTokenException": 400,
    "IDPCommunicationError": 400,
    "ValidationError": 400,
    "InvalidAction": 400,
    "AccessDenied": 403,
}

#: The refusals that count as failed authentications (the rate limits' per-source throttle).
AUTHENTICATION_FAILURES: Final = frozenset({"InvalidIdentityToken", "ExpiredTokenException"})

_ROLE_ARN: Final = re.compile(r"arn:[\w-]+:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}")
_SESSION_NAME: Final = re.compile(r"[\w+=,.@-]{2,64}")


class StsError(Exception):
    """An STS error response; ``code`` is a key of :data:`STS_ERRORS`."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.status = STS_ERRORS[code]
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class StsService:
    """What STS needs: the token verifier, the box sealing session tokens, the role policy
    capping every session (JSON; None: none) and the longest session it grants."""

    verifier: TokenVerifier
    box: SecretBox
    role_policy: str | None = None
    max_session_seconds: int = DEFAULT_SESSION_SECONDS


async def assume_role_with_web_identity(
    params: Mapping[str, str],
    request_id: str,
    sts: StsService,
    now: datetime | None = None,
    *,
    source: str = "-",
    on_refused: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[int, bytes]:
    """Answer one ``AssumeRoleWithWebIdentity`` request: (HTTP status, STS XML body).

    ``params`` are the decoded form (or query) parameters; ``now`` (aware) the server time;
    ``source`` the client's address, for the audit line every request gets (the session's
    principal and issuer when granted, the error code when refused); ``on_refused`` is
    awaited with the error code of a refusal. Never raises for a client's fault: every
    refusal is an ``ErrorResponse``."""
    moment = now or datetime.now(UTC)
    try:
        role_arn, session_name, token, duration = _parse(params, sts)
        verified = await _verify(sts.verifier, token)
        if not verified.principal.site_roles:
            raise StsError("AccessDenied", "The web identity token grants access to no site.")
        principal = Principal(
            verified.principal.name,
            "session",
            verified.principal.site_roles,
            sts.role_policy,
        )
        session = mint_session(sts.box, principal, moment + timedelta(seconds=duration))
    except StsError as error:
        audit_authentication_failure(request_id, source, None, ACTION, error)
        if on_refused is not None:
            await on_refused(error.code)
        return error.status, error_document(error.code, error.message, request_id)
    body = _response(session, verified, role_arn, session_name, request_id)
    granted = AuditEntry(
        principal=principal.name,
        principal_arn=principal.arn,
        source=source,
        site=None,
        key=None,
        operation=ACTION,
        action=f"sts:{ACTION}",
        allowed=True,
        policy=f"web-identity:{verified.issuer}",
        statement=None,
    )
    audit(request_id, granted, 200)
    return 200, body


def _parse(params: Mapping[str, str], sts: StsService) -> tuple[str, str, str, int]:
    """(role ARN, session name, token, duration) or ``ValidationError``."""
    version = params.get("Version", VERSION)
    if version != VERSION:
        raise StsError("ValidationError", f"Version {version!r} is not {VERSION}.")
    if "Policy" in params or any(name.startswith("PolicyArns.") for name in params):
        raise StsError(
            "ValidationError",
            "Session policies (Policy, PolicyArns) are not supported by this gateway; the "
            "configured role policy applies.",
        )
    missing = [
        name for name in ("RoleArn", "RoleSessionName", "WebIdentityToken") if not params.get(name)
    ]
    if missing:
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value null at '{missing[0]}' failed to satisfy "
            "constraint: Member must not be null",
        )
    role_arn = params["RoleArn"]
    match = _ROLE_ARN.fullmatch(role_arn) if 20 <= len(role_arn) <= 2048 else None
    if match is None:
        raise StsError("ValidationError", f"{role_arn!r} is not a valid role ARN.")
    session_name = params["RoleSessionName"]
    if _SESSION_NAME.fullmatch(session_name) is None:
        raise StsError(
            "ValidationError",
            "RoleSessionName must be 2 to 64 characters of letters, digits and +=,.@_-",
        )
    token = params["WebIdentityToken"]
    if not 4 <= len(token) <= 20000:
        raise StsError("ValidationError", "WebIdentityToken must be 4 to 20000 characters.")
    return role_arn, session_name, token, _duration(params, sts)


def _duration(params: Mapping[str, str], sts: StsService) -> int:
    text = params.get("DurationSeconds")
    if text is None:
        return min(DEFAULT_SESSION_SECONDS, sts.max_session_seconds)
    try:
        seconds = decimal(text, high=sts.max_session_seconds)
    except NumberError:
        seconds = -1
    if seconds < MIN_SESSION_SECONDS:
        raise StsError(
            "ValidationError",
            f"The requested DurationSeconds {text!r} is not a whole number from "
            f"{MIN_SESSION_SECONDS} to the maximum session duration, "
            f"{sts.max_session_seconds} seconds.",
        )
    return seconds


async def _verify(verifier: TokenVerifier, token: str) -> VerifiedToken:
    try:
        return await verifier.verify_token(token)
    except TokenExpired as error:
        raise StsError("ExpiredTokenException", f"Token expired: {error}") from None
    except IssuerUnavailable as error:
        raise StsError("IDPCommunicationError", str(error)) from None
    except TokenError as error:
        raise StsError("InvalidIdentityToken", str(error)) from None


def _response(
    session: Session,
    verified: VerifiedToken,
    role_arn: str,
    session_name: str,
    request_id: str,
) -> bytes:
    root = etree.Element(f"{{{NS}}}AssumeRoleWithWebIdentityResponse", nsmap={None: NS})  # type: ignore[dict-item]
    result = _child(root, "AssumeRoleWithWebIdentityResult")
    credentials = _child(result, "Credentials")
    _child(credentials, "AccessKeyId", session.credential.access_key)
    _child(credentials, "SecretAccessKey", session.credential.secret_key)
    _child(credentials, "SessionToken", session.session_token)
    _child(credentials, "Expiration", session.expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _child(result, "SubjectFromWebIdentityToken", verified.subject)
    user = _child(result, "AssumedRoleUser")
    _child(user, "Arn", session.principal.arn)  # the ARN policies name the session by
    _child(user, "AssumedRoleId", f"{_role_id(role_arn)}:{session_name}")
    _child(result, "Audience", verified.audience)
    _child(result, "Provider", verified.issuer)
    metadata = _child(root, "ResponseMetadata")
    _child(metadata, "RequestId", request_id)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def error_document(code: str, message: str, request_id: str) -> bytes:
    """STS's ``ErrorResponse`` (``Type`` is ``Sender``: every listed code is the caller's)."""
    root = etree.Element(f"{{{NS}}}ErrorResponse", nsmap={None: NS})  # type: ignore[dict-item]
    error = _child(root, "Error")
    _child(error, "Type", "Sender")
    _child(error, "Code", code)
    _child(error, "Message", message)
    _child(root, "RequestId", request_id)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _child(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        node.text = text
    return node


def _role_id(role_arn: str) -> str:
    """A stable role id for ``role_arn`` (``AROA`` + 17 characters, as AWS shapes them)."""
    digest = base64.b32encode(hashlib.sha256(role_arn.encode()).digest()).decode()
    return "AROA" + digest[:17]


def register_sts(
    dispatcher: QueryDispatcher, sts: StsService | None, limiter: RateLimiter | None = None
) -> None:
    """Register ``AssumeRoleWithWebIdentity`` on ``dispatcher``: unsigned, as in AWS (the
    token is the proof). Without ``sts`` (no issuer configured, or no master key) every call
    is ``AccessDenied``. A refused token counts as a failed authentication of its source
    with ``limiter``'s per-source throttle."""

    async def handler(call: QueryCall) -> QueryReply:
        if sts is None:
            error = StsError("AccessDenied", "No OIDC issuer is configured on this gateway.")
            audit_authentication_failure(call.request_id, call.source, None, ACTION, error)
            document = error_document(error.code, error.message, call.request_id)
            return QueryReply(error.status, document)

        async def refused(code: str) -> None:
            if limiter is not None and code in AUTHENTICATION_FAILURES:
                await limiter.auth_failed(call.source)

        status, body = await assume_role_with_web_identity(
            call.params, call.request_id, sts, source=call.source, on_refused=refused
        )
        return QueryReply(status, body)

    dispatcher.register(QueryAction(ACTION, "sts", VERSION, NS, handler, signed=False))
