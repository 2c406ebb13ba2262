"""IAM's rules for identities: name grammars, limits, and fresh ids and secrets.

Everything here is pure (no I/O): :mod:`policy.identities` checks its input with these
functions before it touches the catalog. A rule that is broken raises
:class:`IdentityError` with the IAM error code a client of the IAM API receives.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterable
from typing import Final, Literal

IdentityErrorCode = Literal[
    "NoSuchEntity",
    "EntityAlreadyExists",
    "DeleteConflict",
    "LimitExceeded",
    "MalformedPolicyDocument",
    "ValidationError",
]

#: IAM's limits, as AWS documents them ("IAM and AWS STS quotas").
MAX_ACCESS_KEYS_PER_USER: Final = 2
MAX_INLINE_POLICY_CHARS: Final = 2048  # aggregate of one user's inline policies
MAX_ITEMS: Final = 1000

_USER_NAME: Final = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_NAME: Final = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_PATH: Final = re.compile(r"/([\x21-\x7e]{0,510}/)?")
_ACCESS_KEY_ID: Final = re.compile(r"(AKIA|PW)[A-Z0-9]{16,20}")
_UPPER_ALNUM: Final = string.ascii_uppercase + string.digits
_SECRET_ALPHABET: Final = string.ascii_letters + string.digits + "+/"

#: Names of the gateway's own principals (policy.principals.ROOT, ANONYMOUS).
RESERVED_USER_NAMES: Final = frozenset({"root", "anonymous"})

AccessKeyStatus = Literal["Active", "Inactive"]
STATUSES: Final[tuple[AccessKeyStatus, ...]] = ("Active", "Inactive")


class IdentityError(Exception):
    """An identity operation refused, with the IAM error ``code`` that says why."""

    def __init__(self, code: IdentityErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: IdentityErrorCode = code
        self.message = message


def check_user_name(name: str, field: str = "userName") -> str:
    """``name`` if it is an IAM user name (1-64 of ``[A-Za-z0-9_+=,.@-]``)."""
    if not _USER_NAME.fullmatch(name):
        raise IdentityError(
            "ValidationError",
            f"1 validation error detected: Value '{name}' at '{field}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ "
            "and have length between 1 and 64",
        )
    return name


def check_new_user_name(name: str) -> str:
    """``name`` if a new user may be given it: an IAM user name that is not one of the
    gateway's own principals (``root``, ``anonymous``, in any letter case), which a user
    named so would be taken for wherever identities are compared by name."""
    check_user_name(name)
    if name.lower() in RESERVED_USER_NAMES:
        raise IdentityError(
            "ValidationError", f"The user name {name} is reserved for the gateway's own use."
        )
    return name


def check_policy_name(name: str) -> str:
    """``name`` if it is an IAM policy name (1-128 of ``[A-Za-z0-9_+=,.@-]``)."""
    if not _POLICY_NAME.fullmatch(name):
        raise IdentityError(
            "ValidationError",
            f"1 validation error detected: Value '{name}' at 'policyName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ "
            "and have length between 1 and 128",
        )
    return name


def check_path(path: str) -> str:
    """``path`` if it is an IAM path: ``/`` or ``/a/b/`` (printable ASCII, at most 512)."""
    if not _PATH.fullmatch(path):
        raise IdentityError(
            "ValidationError",
            f"The specified value for path '{path}' is invalid. It must begin and end with / "
            "and contain only alphanumeric characters and/or / characters.",
        )
    return path


def check_access_key_id(key_id: str) -> str:
    """``key_id`` if it has the shape of an access key id this gateway issues."""
    if not _ACCESS_KEY_ID.fullmatch(key_id):
        raise IdentityError(
            "ValidationError",
            f"The specified value for accessKeyId '{key_id}' is invalid. It must be "
            "AKIA or PW followed by 16 to 20 upper-case letters or digits.",
        )
    return key_id


def is_access_key_id(key_id: str) -> bool:
    """Whether ``key_id`` could be a key this gateway issued (no lookup needed otherwise)."""
    return _ACCESS_KEY_ID.fullmatch(key_id) is not None


def check_status(status: str) -> AccessKeyStatus:
    """``status`` as an access key status (``Active`` or ``Inactive``)."""
    for known in STATUSES:
        if status == known:
            return known
    raise IdentityError(
        "ValidationError",
        f"1 validation error detected: Value '{status}' at 'status' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Active, Inactive]",
    )


def check_max_items(max_items: int) -> int:
    """``max_items`` if it is 1..1000, IAM's page sizes."""
    if not 1 <= max_items <= MAX_ITEMS:
        raise IdentityError(
            "ValidationError",
            f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to "
            f"satisfy constraint: Member must have value between 1 and {MAX_ITEMS}",
        )
    return max_items


def check_policy_document(document: str) -> str:
    """``document`` if it is a JSON object. Its grammar (Version, Statement, ...) is the
    policy engine's to judge (``policy.access``), not this store's."""
    try:
        parsed = json.loads(document)
    except ValueError:
        raise IdentityError("MalformedPolicyDocument", "Syntax errors in policy.") from None
    if not isinstance(parsed, dict):
        raise IdentityError("MalformedPolicyDocument", "The policy is not a JSON object.")
    return document


def check_inline_policy_size(documents: Iterable[str]) -> None:
    """``LimitExceeded`` when a user's inline policies together pass IAM's limit."""
    total = sum(len("".join(document.split())) for document in documents)
    if total > MAX_INLINE_POLICY_CHARS:
        raise IdentityError(
            "LimitExceeded",
            f"Maximum policy size of {MAX_INLINE_POLICY_CHARS} bytes exceeded for user",
        )


def new_user_id() -> str:
    """A user's unique id, shaped like IAM's (``AIDA`` + 17 upper-case letters or digits)."""
    return "AIDA" + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(17))


def new_access_key_id() -> str:
    """A fresh access key id (``AKIA`` + 16 upper-case letters or digits, as AWS's)."""
    return "AKIA" + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(16))


def new_secret_access_key() -> str:
    """A fresh secret access key: 40 characters of ``[A-Za-z0-9+/]``, as AWS's."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
