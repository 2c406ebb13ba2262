"""The condition keys a policy may name, and the request context they are looked up in.

Key names are case-insensitive (as in AWS): :func:`canonical_key` folds a name to the form
both policies and contexts are indexed by. A tag key (the part after
``s3:ExistingObjectTag/`` or ``s3:RequestObjectTag/``) keeps its case: tags are case-sensitive.
A key not in :data:`KNOWN_KEYS` (nor under a tag prefix) is refused when a policy is parsed,
never silently ignored.

A :data:`Context` maps canonical key names to a tuple of values; one value for most keys,
several for multivalued keys such as ``s3:RequestObjectTagKeys``. The keys that describe the
principal (``aws:username``, ``aws:userid``, ``aws:PrincipalArn``, ``aws:PrincipalType``)
always come from the :class:`~policy.principals.Principal`, never from the caller's context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from policy.principals import ACCOUNT_ID, Principal

#: Canonical (lower-case) key name -> the name as AWS documents it.
KNOWN_KEYS: Final[Mapping[str, str]] = {
    name.lower(): name
    for name in (
        "aws:SourceIp",
        "aws:SecureTransport",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:username",
        "aws:userid",
        "aws:PrincipalArn",
        "aws:PrincipalType",
        "aws:Referer",
        "aws:UserAgent",
        "aws:RequestedRegion",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "s3:x-amz-acl",
        "s3:x-amz-content-sha256",
        "s3:signatureversion",
        "s3:authType",
        "s3:VersionId",
        "s3:RequestObjectTagKeys",
        "s3:x-amz-server-side-encryption",
        "s3:object-lock-mode",
        "s3:object-lock-retain-until-date",
        "s3:object-lock-remaining-retention-days",
        "s3:object-lock-legal-hold",
        "s3:TlsVersion",
        "pagewright:site",
        "pagewright:build-id",
    )
}

#: Key prefixes followed by a (case-sensitive) tag key.
TAG_PREFIXES: Final = ("s3:existingobjecttag/", "s3:requestobjecttag/")

#: Canonical key -> its values in one request.
Context = Mapping[str, tuple[str, ...]]

#: The keys :func:`request_context` fills from the principal.
PRINCIPAL_KEYS: Final = frozenset(
    {"aws:username", "aws:userid", "aws:principalarn", "aws:principaltype"}
)

#: The role every web-identity session assumes (``Principal.arn`` of a session is
#: ``arn:aws:sts::<account>:assumed-role/web-identity/<name>``).
SESSION_ROLE_ARN: Final = f"arn:aws:iam::{ACCOUNT_ID}:role/web-identity"
ROOT_ARN: Final = f"arn:aws:iam::{ACCOUNT_ID}:root"


def canonical_key(name: str) -> str:
    """The form ``name`` is indexed by: lower case, except a tag key after a tag prefix."""
    lowered = name.lower()
    for prefix in TAG_PREFIXES:
        if lowered.startswith(prefix):
            return prefix + name[len(prefix) :]
    return lowered


def is_known_key(name: str) -> bool:
    """Whether a policy may name ``name`` (a tag-prefixed key needs a non-empty tag key)."""
    key = canonical_key(name)
    if key in KNOWN_KEYS:
        return True
    return any(key.startswith(p) and len(key) > len(p) for p in TAG_PREFIXES)


def principal_keys(principal: Principal) -> dict[str, tuple[str, ...]]:
    """The context keys that describe ``principal``, as AWS sets them for each kind.

    ``aws:username`` exists only for users; ``aws:PrincipalArn`` is the role's ARN for a
    session and absent for anonymous requests.
    """
    if principal.kind == "root":
        return {
            "aws:userid": (ACCOUNT_ID,),
            "aws:principalarn": (ROOT_ARN,),
            "aws:principaltype": ("Account",),
        }
    if principal.kind == "user":
        return {
            "aws:username": (principal.name,),
            "aws:userid": (principal.name,),
            "aws:principalarn": (principal.arn,),
            "aws:principaltype": ("User",),
        }
    if principal.kind == "session":
        return {
            "aws:userid": (f"web-identity:{principal.name}",),
            "aws:principalarn": (SESSION_ROLE_ARN,),
            "aws:principaltype": ("AssumedRole",),
        }
    return {"aws:userid": ("anonymous",), "aws:principaltype": ("Anonymous",)}


def request_context(
    principal: Principal, values: Mapping[str, str | Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """The :data:`Context` of one request: ``values`` under canonical names, one string as a
    one-value tuple, and the principal's keys (which replace any the caller passed)."""
    context: dict[str, tuple[str, ...]] = {}
    for name, value in values.items():
        key = canonical_key(name)
        if key in PRINCIPAL_KEYS:
            continue
        context[key] = (value,) if isinstance(value, str) else tuple(value)
    context.update(principal_keys(principal))
    return context
