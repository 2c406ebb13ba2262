"""The access decision: may this principal do this action on this resource?

:func:`evaluate` follows AWS's logic for requests within one account, in this order:

1. An explicit Deny in any policy that applies (identity policies, then resource policies,
   then the session cap) decides: denied, naming that policy and statement.
2. Root is allowed (only an explicit Deny, in practice a bucket policy's, stops it).
3. Otherwise the request is allowed when an identity statement, a resource-policy statement
   whose principal matches, or the ACL (``acl_allows``) allows it. Anonymous principals
   have no identity policies and are allowed only by a resource-policy statement with
   ``Principal: "*"`` (or ``{"AWS": "*"}``) or by the ACL.
4. A ``session_cap`` (a session's policy) must also allow whatever 3 allowed: the result is
   the intersection. As in AWS, a resource-policy statement that names the session's own ARN
   (``arn:aws:sts::<account>:assumed-role/web-identity/<name>``) is not capped.
5. Nothing allowed it: an implicit deny.

Principal matching. A user is named by its ARN, a session by its session ARN or its role's
ARN (``arn:aws:iam::<account>:role/web-identity``), root by the account (id or root ARN),
anyone by ``*``. Naming the account in an Allow delegates to the account's own policies, so
it grants root and nobody else (users need an identity policy, as in AWS); in a Deny it
names every principal of the account. NotPrincipal applies to a principal unless every name
the principal goes by is listed (AWS's advice to list the account too follows from this);
an Allow with NotPrincipal never grants anonymous access (a deliberate narrowing).

This module does no I/O; the caller parses policies once (``parse_policy``) and caches them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from policy.access.conditions import conditions_hold
from policy.access.document import PolicyDocument, PrincipalSet, Statement
from policy.access.keys import ROOT_ARN, SESSION_ROLE_ARN, Context, request_context
from policy.principals import Principal

#: The name a Decision gives the session cap (``session_cap`` has no name of its own).
SESSION_POLICY: Final = "session-policy"


def _empty_context() -> Mapping[str, str | Sequence[str]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """A parsed policy with the name a Decision reports it by (``user:alice/inline:deploy``,
    ``bucket-policy:site-a``, ``role:site-a/writer``)."""

    name: str
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One request to decide. ``resource`` is ``arn:aws:s3:::<bucket>``,
    ``arn:aws:s3:::<bucket>/<key>`` or ``*``; ``action`` an IAM action (``s3:GetObject``,
    ``pagewright:PinArtifact``); ``context`` the request's condition keys (any case; one
    string or several). The principal's own keys (``aws:username`` ...) are filled in from
    ``principal`` and cannot be set through ``context``."""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=_empty_context)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer. ``policy`` names the policy that decided and ``statement`` its Sid (or
    ``#<index>``); both are None for root's allow and for a plain implicit deny. An implicit
    deny because the session cap did not allow what another policy did names
    :data:`SESSION_POLICY` with no statement."""

    allowed: bool
    effect: Literal["Allow", "Deny", "ImplicitDeny"]
    policy: str | None
    statement: str | None


_Match = Literal["no", "yes", "direct"]


def _names(principal: Principal, *, for_deny: bool) -> frozenset[str]:
    """The ARNs a principal goes by in Principal/NotPrincipal (see the module docstring)."""
    if principal.kind == "root":
        return frozenset({ROOT_ARN})
    if principal.kind == "anonymous":
        return frozenset()
    names = {principal.arn}
    if principal.kind == "session":
        names.add(SESSION_ROLE_ARN)
    if for_deny:
        names.add(ROOT_ARN)
    return frozenset(names)


def _principal_match(statement: Statement, principal: Principal) -> _Match:
    """Whether a resource-policy statement's principal element covers ``principal``;
    ``direct`` when it names a session by its own session ARN."""
    deny = statement.effect == "Deny"
    anonymous = principal.kind == "anonymous"
    listed: PrincipalSet | None = statement.principals
    if listed is not None:
        if listed.wildcard:
            return "yes"
        if principal.kind == "session" and principal.arn in listed.arns:
            return "direct"
        return "yes" if _names(principal, for_deny=deny) & listed.arns else "no"
    excluded = statement.not_principals
    if excluded is None or excluded.wildcard:
        return "no"
    if anonymous:
        return "yes" if deny else "no"
    names = _names(principal, for_deny=deny)
    return "yes" if any(name not in excluded.arns for name in names) else "no"


def _targets(statement: Statement, action: str, resource: str, context: Context) -> bool:
    """Whether ``statement`` covers this action and resource and its conditions hold."""
    if statement.actions is not None:
        if not any(p.matches(action, context) for p in statement.actions):
            return False
    elif statement.not_actions is not None and any(
        p.matches(action, context) for p in statement.not_actions
    ):
        return False
    if statement.resources is not None:
        if not any(p.matches(resource, context) for p in statement.resources):
            return False
    elif statement.not_resources is not None and any(
        p.matches(resource, context) for p in statement.not_resources
    ):
        return False
    return conditions_hold(statement.conditions, context)


class _Evaluation:
    """One request's evaluation: the request's context, built once when a statement first
    needs it (a request no statement applies to, root's without policies, builds none),
    and the matchers."""

    def __init__(self, request: AccessRequest) -> None:
        self.principal = request.principal
        self.action = request.action.casefold()  # action patterns are stored case-folded
        self.resource = request.resource
        self._request = request

    @functools.cached_property
    def context(self) -> Context:
        return request_context(self.principal, self._request.context)

    def first(
        self,
        policies: Sequence[NamedPolicy],
        effect: str,
        *,
        resource_policies: bool,
        direct_only: bool = False,
    ) -> tuple[str, Statement, _Match] | None:
        """The first statement with ``effect`` that applies to this request, if any
        (``direct_only``: the first that names the session by its own ARN)."""
        for policy in policies:
            for statement in policy.document.statements:
                if statement.effect != effect:
                    continue
                match: _Match = "yes"
                if resource_policies:
                    match = _principal_match(statement, self.principal)
                    if match == "no" or (direct_only and match != "direct"):
                        continue
                    if (
                        effect == "Allow"
                        and self.principal.kind == "anonymous"
                        and not (statement.principals and statement.principals.wildcard)
                    ):
                        continue
                if _targets(statement, self.action, self.resource, self.context):
                    return policy.name, statement, match
        return None


def _deny(name: str, statement: Statement) -> Decision:
    return Decision(False, "Deny", name, statement.label)


def evaluate(
    request: AccessRequest,
    identity: Sequence[NamedPolicy],
    resource: Sequence[NamedPolicy],
    acl_allows: bool = False,
    session_cap: PolicyDocument | None = None,
    *,
    acl_name: str = "acl",
) -> Decision:
    """Decide ``request`` (see the module docstring for the order).

    ``identity``: the principal's policies (its own, its groups', its site roles'), ignored
    for anonymous principals except for their Deny statements. ``resource``: the bucket's
    policy. ``acl_allows``: whether the bucket or object ACL grants the action; an ACL
    allow is reported as ``acl_name``. ``session_cap``: the parsed session policy of a
    session principal, applied whenever given.
    """
    run = _Evaluation(request)
    cap = () if session_cap is None else (NamedPolicy(SESSION_POLICY, session_cap),)
    for policies, is_resource in ((identity, False), (resource, True), (cap, False)):
        denied = run.first(policies, "Deny", resource_policies=is_resource)
        if denied is not None:
            return _deny(denied[0], denied[1])

    capped: Decision | None = None
    if request.principal.is_root:
        capped = Decision(True, "Allow", None, None)
    if capped is None and request.principal.kind != "anonymous":
        found = run.first(identity, "Allow", resource_policies=False)
        if found is not None:
            capped = Decision(True, "Allow", found[0], found[1].label)
    # Only a session's uncapped (direct) grant could change an allow already found.
    capped_session = request.principal.kind == "session" and session_cap is not None
    granted = (
        run.first(resource, "Allow", resource_policies=True)
        if capped is None or capped_session
        else None
    )
    if granted is not None:
        decision = Decision(True, "Allow", granted[0], granted[1].label)
        if granted[2] == "direct":
            return decision
        if capped_session:
            direct = run.first(resource, "Allow", resource_policies=True, direct_only=True)
            if direct is not None:
                return Decision(True, "Allow", direct[0], direct[1].label)
        capped = capped or decision
    if capped is None and acl_allows:
        capped = Decision(True, "Allow", acl_name, None)
    if capped is None:
        return Decision(False, "ImplicitDeny", None, None)
    if session_cap is not None and run.first(cap, "Allow", resource_policies=False) is None:
        return Decision(False, "ImplicitDeny", SESSION_POLICY, None)
    return capped
