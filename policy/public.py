"""Whether a bucket policy is public: what GetBucketPolicyStatus reports and what the public
access block's BlockPublicPolicy refuses.

As S3 judges it: a policy is public when a statement allows someone it does not name, that
is an Allow with Principal ``*`` (or ``{"AWS": "*"}``), or with NotPrincipal, unless a
condition ties it to fixed values of a key only known callers have: a source address
(``aws:SourceIp`` with IpAddress), or the caller's identity (``aws:PrincipalArn``,
``aws:PrincipalAccount``, ``aws:username``, ``aws:userid``). S3 also treats a condition
whose values are wildcards (``0.0.0.0/0``) as public; this check does not look at the values.
"""

from __future__ import annotations

from typing import Final

from policy.access import PolicyDocument, Statement

_NARROWING_KEYS: Final = frozenset(
    {"aws:sourceip", "aws:principalarn", "aws:principalaccount", "aws:username", "aws:userid"}
)


def _open_to_anyone(statement: Statement) -> bool:
    if statement.not_principals is not None:
        return True
    principals = statement.principals
    return principals is not None and (principals.wildcard or "*" in principals.arns)


def _narrowed(statement: Statement) -> bool:
    return any(
        not condition.negated and condition.key.lower() in _NARROWING_KEYS
        for condition in statement.conditions
    )


def is_public_policy(document: PolicyDocument) -> bool:
    """True when ``document`` grants access to principals it does not name."""
    return any(
        statement.effect == "Allow" and _open_to_anyone(statement) and not _narrowed(statement)
        for statement in document.statements
    )
