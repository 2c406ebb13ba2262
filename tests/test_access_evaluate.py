"""evaluate(): AWS's same-account decision, the policy and statement that decided it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from policy.access import (
    SESSION_POLICY,
    AccessRequest,
    Decision,
    NamedPolicy,
    PolicyDocument,
    evaluate,
    parse_policy,
)
from policy.principals import ANONYMOUS, ROOT, Principal

ALICE = Principal("alice", "user")
BOB = Principal("bob", "user")
SESSION = Principal("s1", "session")
ALICE_ARN = "arn:aws:iam::000000000000:user/alice"
SESSION_ARN = "arn:aws:sts::000000000000:assumed-role/web-identity/s1"
ROLE_ARN = "arn:aws:iam::000000000000:role/web-identity"
OBJECT = "arn:aws:s3:::site-a/index.html"
BUCKET = "arn:aws:s3:::site-a"


def statement(
    effect: str = "Allow",
    action: object = "s3:GetObject",
    resource: object = "arn:aws:s3:::site-a/*",
    **extra: Any,
) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


def identity(name: str, *statements: dict[str, Any]) -> NamedPolicy:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return NamedPolicy(name, parse_policy(text, kind="identity"))


def bucket(*statements: dict[str, Any]) -> NamedPolicy:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return NamedPolicy("bucket-policy:site-a", parse_policy(text, kind="resource", bucket="site-a"))


def cap(*statements: dict[str, Any]) -> PolicyDocument:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, kind="identity")


def decide(
    principal: Principal,
    identity_policies: Sequence[NamedPolicy] = (),
    resource_policies: Sequence[NamedPolicy] = (),
    *,
    action: str = "s3:GetObject",
    resource: str = OBJECT,
    context: dict[str, str | list[str]] | None = None,
    acl_allows: bool = False,
    session_cap: PolicyDocument | None = None,
) -> Decision:
    request = AccessRequest(principal, action, resource, context or {})
    return evaluate(request, identity_policies, resource_policies, acl_allows, session_cap)


ALLOW = Decision(True, "Allow", "user:alice/inline:read", "#0")
IMPLICIT = Decision(False, "ImplicitDeny", None, None)
READ = identity("user:alice/inline:read", statement())


def test_identity_allow_names_policy_and_statement() -> None:
    assert decide(ALICE, [READ]) == ALLOW


def test_nothing_allows_is_an_implicit_deny() -> None:
    assert decide(ALICE) == IMPLICIT
    assert decide(ALICE, [READ], action="s3:PutObject") == IMPLICIT


def test_statement_label_is_sid_or_index() -> None:
    policy = identity(
        "p",
        statement(action="s3:PutObject"),
        statement(),
        statement(Sid="Named", action="s3:ListBucket", resource=BUCKET),
    )
    assert decide(ALICE, [policy]).statement == "#1"
    assert decide(ALICE, [policy], action="s3:ListBucket", resource=BUCKET).statement == "Named"


def test_explicit_deny_in_identity_beats_resource_allow() -> None:
    deny = identity("user:alice/inline:no", statement("Deny", Sid="NoRead"))
    allow = bucket(statement(Principal={"AWS": ALICE_ARN}))
    assert decide(ALICE, [deny], [allow]) == Decision(
        False, "Deny", "user:alice/inline:no", "NoRead"
    )


def test_explicit_deny_in_resource_policy_beats_identity_allow() -> None:
    deny = bucket(statement("Deny", Principal="*"))
    assert decide(ALICE, [READ], [deny]) == Decision(False, "Deny", "bucket-policy:site-a", "#0")


def test_deny_wins_regardless_of_order_within_a_policy() -> None:
    policy = identity("p", statement(), statement("Deny", Sid="Late"))
    assert decide(ALICE, [policy]) == Decision(False, "Deny", "p", "Late")


def test_first_allowing_policy_is_named() -> None:
    other = identity("role:site-a/writer", statement(action="s3:PutObject"))
    reader = identity("role:site-a/reader", statement(action="s3:Get*"))
    assert decide(ALICE, [other, reader]).policy == "role:site-a/reader"


def test_resource_policy_allows_a_named_user() -> None:
    allow = bucket(statement(Principal={"AWS": [ALICE_ARN]}))
    assert decide(ALICE, [], [allow]) == Decision(True, "Allow", "bucket-policy:site-a", "#0")
    assert decide(BOB, [], [allow]) == IMPLICIT


def test_account_principal_allow_delegates_to_root_only() -> None:
    for account in ("000000000000", "arn:aws:iam::000000000000:root"):
        allow = bucket(statement(Principal={"AWS": account}))
        assert decide(ALICE, [], [allow]) == IMPLICIT
        assert decide(ROOT, [], [allow]).allowed


def test_account_principal_deny_covers_every_principal_of_the_account() -> None:
    deny = bucket(statement("Deny", Principal={"AWS": "000000000000"}))
    for principal in (ALICE, SESSION, ROOT):
        assert decide(principal, [READ], [deny]).effect == "Deny"


def test_other_accounts_never_match() -> None:
    allow = bucket(statement(Principal={"AWS": "111122223333"}))
    deny = bucket(statement("Deny", Principal={"AWS": "arn:aws:iam::111122223333:root"}))
    assert decide(ALICE, [READ], [allow, deny]) == ALLOW


# Root


def test_root_is_allowed_without_any_policy() -> None:
    assert decide(ROOT) == Decision(True, "Allow", None, None)


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": "000000000000"}])
def test_root_is_stopped_by_a_bucket_policy_deny(principal: object) -> None:
    deny = bucket(statement("Deny", Principal=principal, Sid="Lock"))
    assert decide(ROOT, [], [deny]) == Decision(False, "Deny", "bucket-policy:site-a", "Lock")


def test_root_not_stopped_by_a_deny_naming_someone_else() -> None:
    deny = bucket(statement("Deny", Principal={"AWS": ALICE_ARN}))
    assert decide(ROOT, [], [deny]).allowed


# Anonymous


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*", ALICE_ARN]}])
def test_anonymous_allowed_by_a_public_statement(principal: object) -> None:
    allow = bucket(statement(Principal=principal))
    assert decide(ANONYMOUS, [], [allow]) == Decision(True, "Allow", "bucket-policy:site-a", "#0")


def test_anonymous_ignores_identity_allows() -> None:
    assert decide(ANONYMOUS, [READ]) == IMPLICIT


def test_anonymous_not_allowed_by_named_principals_or_not_principal() -> None:
    named = bucket(statement(Principal={"AWS": ["000000000000", ALICE_ARN]}))
    not_principal = bucket(statement(NotPrincipal={"AWS": ALICE_ARN}))
    assert decide(ANONYMOUS, [], [named]) == IMPLICIT
    assert decide(ANONYMOUS, [], [not_principal]) == IMPLICIT


def test_anonymous_denied_by_not_principal_deny() -> None:
    allow = bucket(statement(Principal="*"))
    deny = bucket(statement("Deny", NotPrincipal={"AWS": ALICE_ARN}))
    assert decide(ANONYMOUS, [], [allow, deny]).effect == "Deny"


def test_acl_allow() -> None:
    assert decide(ANONYMOUS, acl_allows=True) == Decision(True, "Allow", "acl", None)
    assert decide(ALICE, acl_allows=True).allowed
    deny = bucket(statement("Deny", Principal="*"))
    assert decide(ANONYMOUS, [], [deny], acl_allows=True).effect == "Deny"


def test_acl_name_is_reported() -> None:
    request = AccessRequest(ANONYMOUS, "s3:GetObject", OBJECT)
    assert evaluate(request, [], [], True, acl_name="acl:site-a").policy == "acl:site-a"


# NotPrincipal


def test_not_principal_deny_needs_the_account_listed_too() -> None:
    only_user = bucket(statement("Deny", NotPrincipal={"AWS": ALICE_ARN}))
    with_account = bucket(statement("Deny", NotPrincipal={"AWS": [ALICE_ARN, "000000000000"]}))
    assert decide(ALICE, [READ], [only_user]).effect == "Deny"
    assert decide(ALICE, [READ], [with_account]) == ALLOW
    assert decide(BOB, [identity("b", statement())], [with_account]).effect == "Deny"


def test_not_principal_allow_grants_everyone_else_in_the_account() -> None:
    allow = bucket(statement(NotPrincipal={"AWS": ALICE_ARN}))
    assert decide(BOB, [], [allow]).allowed
    assert decide(ALICE, [], [allow]) == IMPLICIT


# Session principals and their cap


SESSION_READ = identity("session:s1/role:site-a/reader", statement(action="s3:*"))


def test_session_capped_by_its_session_policy() -> None:
    get_only = cap(statement())
    assert decide(SESSION, [SESSION_READ], session_cap=get_only).allowed
    assert decide(SESSION, [SESSION_READ], action="s3:PutObject", session_cap=get_only) == (
        Decision(False, "ImplicitDeny", SESSION_POLICY, None)
    )


def test_session_cap_alone_grants_nothing() -> None:
    assert decide(SESSION, [], session_cap=cap(statement(action="s3:*"))) == IMPLICIT


def test_session_cap_deny_is_an_explicit_deny() -> None:
    deny = cap(statement(action="s3:*"), statement("Deny", Sid="NoGet"))
    assert decide(SESSION, [SESSION_READ], session_cap=deny) == Decision(
        False, "Deny", SESSION_POLICY, "NoGet"
    )


def test_session_without_cap_has_its_policies() -> None:
    assert decide(SESSION, [SESSION_READ]).allowed


def test_resource_policy_naming_the_session_is_not_capped() -> None:
    direct = bucket(statement(action="s3:PutObject", Principal={"AWS": SESSION_ARN}))
    get_only = cap(statement())
    assert decide(SESSION, [], [direct], action="s3:PutObject", session_cap=get_only) == (
        Decision(True, "Allow", "bucket-policy:site-a", "#0")
    )


def test_resource_policy_naming_the_role_or_everyone_is_capped() -> None:
    get_only = cap(statement())
    for principal in ({"AWS": ROLE_ARN}, "*"):
        allow = bucket(statement(action="s3:PutObject", Principal=principal))
        assert decide(SESSION, [], [allow], action="s3:PutObject").allowed
        assert not decide(SESSION, [], [allow], action="s3:PutObject", session_cap=get_only).allowed


def test_direct_session_grant_found_after_a_capped_one() -> None:
    policy = bucket(
        statement(action="s3:PutObject", Principal="*"),
        statement(action="s3:PutObject", Principal={"AWS": SESSION_ARN}, Sid="Direct"),
    )
    assert (
        decide(SESSION, [], [policy], action="s3:PutObject", session_cap=cap(statement())).statement
        == "Direct"
    )


def test_acl_allow_is_capped_for_sessions() -> None:
    list_only = cap(statement("Allow", "s3:List*"))
    assert decide(SESSION, acl_allows=True, session_cap=list_only) == Decision(
        False, "ImplicitDeny", SESSION_POLICY, None
    )


# Matching: wildcards, Not* elements, variables, conditions

MATCHING: list[tuple[str, object, object, str, str, bool]] = [
    (
        "action case-insensitive",
        "s3:getobject",
        "arn:aws:s3:::site-a/*",
        "s3:GetObject",
        OBJECT,
        True,
    ),
    ("service case-insensitive", "S3:GetObject", "*", "s3:GetObject", OBJECT, True),
    ("action star", "s3:Get*", "*", "s3:GetObjectTagging", OBJECT, True),
    ("action star stops at service", "s3:*", "*", "pagewright:PinArtifact", OBJECT, False),
    ("action question", "s3:?etObject", "*", "s3:GetObject", OBJECT, True),
    ("action question is one char", "s3:?etObject", "*", "s3:GGetObject", OBJECT, False),
    ("every action", "*", "*", "pagewright:PinArtifact", OBJECT, True),
    ("pagewright action", "pagewright:Pin*", "*", "pagewright:PinArtifact", OBJECT, True),
    (
        "resource case-sensitive",
        "s3:GetObject",
        "arn:aws:s3:::site-a/Index.html",
        "s3:GetObject",
        OBJECT,
        False,
    ),
    (
        "resource star crosses slashes",
        "s3:GetObject",
        "arn:aws:s3:::site-a/*",
        "s3:GetObject",
        "arn:aws:s3:::site-a/a/b/c",
        True,
    ),
    (
        "bucket object pattern not the bucket",
        "s3:ListBucket",
        "arn:aws:s3:::site-a/*",
        "s3:ListBucket",
        BUCKET,
        False,
    ),
    (
        "resource question",
        "s3:GetObject",
        "arn:aws:s3:::site-?/index.html",
        "s3:GetObject",
        OBJECT,
        True,
    ),
    (
        "star resource for service action",
        "s3:ListAllMyBuckets",
        "*",
        "s3:ListAllMyBuckets",
        "*",
        True,
    ),
    (
        "bucket pattern and star request",
        "s3:ListAllMyBuckets",
        "arn:aws:s3:::*",
        "s3:ListAllMyBuckets",
        "*",
        False,
    ),
    ("list of actions", ["s3:PutObject", "s3:GetObject"], "*", "s3:GetObject", OBJECT, True),
    (
        "list of resources",
        "s3:GetObject",
        ["arn:aws:s3:::other/*", "arn:aws:s3:::site-a/*"],
        "s3:GetObject",
        OBJECT,
        True,
    ),
    (
        "variable resource",
        "s3:GetObject",
        "arn:aws:s3:::site-a/home/${aws:username}/*",
        "s3:GetObject",
        "arn:aws:s3:::site-a/home/alice/x",
        True,
    ),
    (
        "variable resource other user",
        "s3:GetObject",
        "arn:aws:s3:::site-a/home/${aws:username}/*",
        "s3:GetObject",
        "arn:aws:s3:::site-a/home/bob/x",
        False,
    ),
]


@pytest.mark.parametrize(
    ("action", "resource", "request_action", "request_resource", "allowed"),
    [r[1:] for r in MATCHING],
    ids=[r[0] for r in MATCHING],
)
def test_matching(
    action: object, resource: object, request_action: str, request_resource: str, allowed: bool
) -> None:
    policy = identity("p", statement(action=action, resource=resource))
    assert (
        decide(ALICE, [policy], action=request_action, resource=request_resource).allowed is allowed
    )


def test_not_action() -> None:
    policy = identity("p", {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"})
    assert decide(ALICE, [policy], action="s3:PutObject").allowed
    assert not decide(ALICE, [policy], action="s3:DeleteObject").allowed


def test_not_resource() -> None:
    policy = identity(
        "p",
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::site-a/public/*"},
        statement(action="s3:*", resource="*"),
    )
    assert decide(ALICE, [policy], resource="arn:aws:s3:::site-a/public/x").allowed
    assert decide(ALICE, [policy]).effect == "Deny"


def test_deny_unless_secure_transport() -> None:
    deny = bucket(
        statement(
            "Deny",
            action="s3:*",
            Principal="*",
            Condition={"Bool": {"aws:SecureTransport": "false"}},
        )
    )
    assert decide(ALICE, [READ], [deny], context={"aws:SecureTransport": "true"}) == ALLOW
    assert decide(ALICE, [READ], [deny], context={"aws:SecureTransport": "false"}).effect == "Deny"


def test_allow_from_an_ipv6_range_only() -> None:
    allow = bucket(
        statement(Principal="*", Condition={"IpAddress": {"aws:SourceIp": "2001:db8::/48"}})
    )
    assert decide(ANONYMOUS, [], [allow], context={"aws:SourceIp": "2001:db8:0:1::9"}).allowed
    assert not decide(ANONYMOUS, [], [allow], context={"aws:SourceIp": "2001:db8:1::9"}).allowed
    assert not decide(ANONYMOUS, [], [allow]).allowed


def test_deny_outside_a_network_includes_requests_without_an_address() -> None:
    deny = bucket(
        statement("Deny", Principal="*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    )
    assert decide(ALICE, [READ], [deny], context={"aws:SourceIp": "10.2.3.4"}) == ALLOW
    assert decide(ALICE, [READ], [deny], context={"aws:SourceIp": "192.0.2.1"}).effect == "Deny"
    assert decide(ALICE, [READ], [deny]).effect == "Deny"


def test_condition_on_principal_type() -> None:
    deny = bucket(
        statement(
            "Deny", Principal="*", Condition={"StringEquals": {"aws:PrincipalType": "Anonymous"}}
        )
    )
    public = bucket(statement(Principal="*"))
    assert decide(ANONYMOUS, [], [public, deny]).effect == "Deny"
    assert decide(ALICE, [], [public, deny]).allowed


def test_list_prefix_condition_with_username() -> None:
    policy = identity(
        "p",
        statement(
            action="s3:ListBucket",
            resource=BUCKET,
            Condition={"StringLike": {"s3:prefix": ["home/${aws:username}/*", ""]}},
        ),
    )
    for prefix, allowed in (("home/alice/", True), ("", True), ("home/bob/", False)):
        assert (
            decide(
                ALICE,
                [policy],
                action="s3:ListBucket",
                resource=BUCKET,
                context={"s3:prefix": prefix},
            ).allowed
            is allowed
        )
