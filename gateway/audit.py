"""The audit log: one line for every mutating request and every denial.

Lines go to their own logger, ``pagewright.audit``, so they can be shipped and kept apart from
the access log (``pagewright.access``). Unlike access lines they name the object key, since
who changed or was refused what is their point; they never carry headers, query strings,
signatures or secrets.

Fields: ``request_id``, ``principal`` (name), ``principal_arn``, ``source`` (the client
address policies saw), ``site``, ``key``, ``operation`` (the route's Operation, or the API
route's name), ``action`` (the IAM action decided), ``decision`` (``allow`` or ``deny``),
``policy`` and ``statement`` (which policy and statement decided: ``role:site/writer`` and
``RoleWriter``, ``bucket-policy:site`` and its Sid, ``acl:...``; none for an implicit deny),
and ``status`` (the reply's HTTP status, when the request was carried out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

audit_log = logging.getLogger("pagewright.audit")

#: Error codes of a request whose signature or credentials were refused.
AUTHENTICATION_FAILURES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "RequestTimeTooSkewed",
        "AuthorizationHeaderMalformed",
        "AuthorizationQueryParametersError",
    }
)

#: Methods that change nothing; their requests are audited only when denied.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AuditEntry:
    """The decision of one request (and of each extra check it needed, such as a copy's
    source), kept until the reply's status is known."""

    principal: str
    principal_arn: str
    source: str
    site: str | None
    key: str | None
    operation: str | None
    action: str
    allowed: bool
    policy: str | None
    statement: str | None


def audit(request_id: str, entry: AuditEntry, status: int | None) -> None:
    """Write the audit line of ``entry`` (``status``: the reply's, None when not sent)."""
    audit_log.log(
        logging.INFO if entry.allowed else logging.WARNING,
        "access",
        extra={
            "request_id": request_id,
            "principal": entry.principal,
            "principal_arn": entry.principal_arn,
            "source": entry.source,
            "site": entry.site,
            "key": entry.key,
            "operation": entry.operation,
            "action": entry.action,
            "decision": "allow" if entry.allowed else "deny",
            "policy": entry.policy,
            "statement": entry.statement,
            "status": status,
        },
    )


def audit_authentication_failure(
    request_id: str, source: str, site: str | None, operation: str | None, error: Exception
) -> None:
    """The audit line of a request refused before it had a principal (bad signature or
    key): ``decision`` deny, ``statement`` the error code."""
    audit_log.warning(
        "access",
        extra={
            "request_id": request_id,
            "principal": "-",
            "principal_arn": None,
            "source": source,
            "site": site,
            "key": None,
            "operation": operation,
            "action": None,
            "decision": "deny",
            "policy": "authentication",
            "statement": getattr(error, "code", type(error).__name__),
            "status": getattr(error, "status", None),
        },
    )
