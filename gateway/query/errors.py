"""Errors of query-protocol actions: one table of codes, their HTTP status and fault type.

An action raises :class:`QueryError`; an identity store refusal
(:class:`policy.identity_rules.IdentityError`) and an authentication failure
(:class:`core.errors.S3Error`) become one through :func:`query_error`.
"""

from __future__ import annotations

from typing import Final, Literal

from core.errors import S3Error
from policy.identity_rules import IdentityError

FaultType = Literal["Sender", "Receiver"]

#: Code -> (HTTP status, fault type), as IAM and STS answer them.
ERRORS: Final[dict[str, tuple[int, FaultType]]] = {
    "AccessDenied": (403, "Sender"),
    "DeleteConflict": (409, "Sender"),
    "EntityAlreadyExists": (409, "Sender"),
    "IncompleteSignature": (400, "Sender"),
    "InternalFailure": (500, "Receiver"),
    "InvalidAction": (400, "Sender"),
    "InvalidClientTokenId": (403, "Sender"),
    "InvalidParameterValue": (400, "Sender"),
    "LimitExceeded": (409, "Sender"),
    "MalformedPolicyDocument": (400, "Sender"),
    "MissingAction": (400, "Sender"),
    "NoSuchEntity": (404, "Sender"),
    "RequestEntityTooLarge": (413, "Sender"),
    "ServiceUnavailable": (503, "Receiver"),
    "Throttling": (503, "Receiver"),  # the gateway's rate limits: 503, as S3's SlowDown
    "ValidationError": (400, "Sender"),
}

#: S3 authentication codes that the query protocol names otherwise.
_FROM_S3: Final = {
    "InvalidAccessKeyId": "InvalidClientTokenId",
    "AuthorizationHeaderMalformed": "IncompleteSignature",
    "AuthorizationQueryParametersError": "IncompleteSignature",
    "InternalError": "InternalFailure",
    "SlowDown": "Throttling",
}


class QueryError(Exception):
    """A refused action: its code (a key of :data:`ERRORS`, or any code with ``status``),
    message, HTTP status and extra reply headers (``Retry-After``)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        known = ERRORS.get(code)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.status = status if status is not None else (known[0] if known else 400)
        self.fault: FaultType = (
            known[1] if known else ("Receiver" if self.status >= 500 else "Sender")
        )


def query_error(error: QueryError | IdentityError | S3Error) -> QueryError:
    """``error`` as a :class:`QueryError`."""
    if isinstance(error, QueryError):
        return error
    if isinstance(error, IdentityError):
        return QueryError(error.code, error.message)
    code = _FROM_S3.get(error.code, error.code)
    if code == "InvalidClientTokenId":
        return QueryError(code, "The security token included in the request is invalid.")
    status = ERRORS[code][0] if code in ERRORS else error.status
    return QueryError(code, error.message, status, dict(error.headers))


def missing(name: str) -> QueryError:
    """The error for a required parameter that is absent."""
    field = name[0].lower() + name[1:]
    return QueryError(
        "ValidationError",
        f"1 validation error detected: Value null at '{field}' failed to satisfy constraint: "
        "Member must not be null",
    )
