"""Condition operators, one table row per behaviour: matching, missing keys, IfExists, set
qualifiers, policy variables, IPv4/IPv6."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from policy.access.conditions import conditions_hold, parse_conditions
from policy.access.keys import request_context
from policy.principals import Principal

ALICE = Principal("alice", "user")

Values = str | Sequence[str] | None
Row = tuple[str, str, object, Values, bool]


def holds(
    operator: str,
    key: str,
    policy_values: object,
    request: Values,
    principal: Principal = ALICE,
    variables: bool = True,
) -> bool:
    conditions = parse_conditions(
        {operator: {key: policy_values}}, variables=variables, where="test"
    )
    context = request_context(principal, {} if request is None else {key: request})
    return conditions_hold(conditions, context)


STRING: list[Row] = [
    ("StringEquals", "s3:prefix", "home/", "home/", True),
    ("StringEquals", "s3:prefix", "home/", "HOME/", False),
    ("StringEquals", "s3:prefix", ["a", "home/"], "home/", True),
    ("StringEquals", "s3:prefix", "home/*", "home/x", False),
    ("StringEquals", "s3:prefix", "home/", None, False),
    ("StringNotEquals", "s3:prefix", "home/", "home/", False),
    ("StringNotEquals", "s3:prefix", "home/", "other/", True),
    ("StringNotEquals", "s3:prefix", ["a", "b"], "a", False),
    ("StringNotEquals", "s3:prefix", ["a", "b"], "c", True),
    ("StringNotEquals", "s3:prefix", "home/", None, True),
    ("StringEqualsIgnoreCase", "s3:prefix", "Home/", "hOME/", True),
    ("StringEqualsIgnoreCase", "s3:prefix", "Home/", "other", False),
    ("StringEqualsIgnoreCase", "s3:prefix", "Home/", None, False),
    ("StringNotEqualsIgnoreCase", "s3:prefix", "Home/", "hOME/", False),
    ("StringNotEqualsIgnoreCase", "s3:prefix", "Home/", "other", True),
    ("StringNotEqualsIgnoreCase", "s3:prefix", "Home/", None, True),
    ("StringLike", "s3:prefix", "home/*", "home/a/b", True),
    ("StringLike", "s3:prefix", "home/?", "home/a", True),
    ("StringLike", "s3:prefix", "home/?", "home/ab", False),
    ("StringLike", "s3:prefix", "home/*", "Home/a", False),
    ("StringLike", "s3:prefix", "home/*", None, False),
    ("StringNotLike", "s3:prefix", "home/*", "home/a", False),
    ("StringNotLike", "s3:prefix", ["a*", "b*"], "c", True),
    ("StringNotLike", "s3:prefix", "home/*", None, True),
    ("StringEquals", "s3:max-keys", 10, "10", True),
    ("StringEquals", "aws:SecureTransport", True, "true", True),
]

NUMERIC: list[Row] = [
    ("NumericEquals", "s3:max-keys", "10", "10", True),
    ("NumericEquals", "s3:max-keys", 10, "10.0", True),
    ("NumericEquals", "s3:max-keys", "10", "11", False),
    ("NumericEquals", "s3:max-keys", "10", "ten", False),
    ("NumericEquals", "s3:max-keys", "10", None, False),
    ("NumericNotEquals", "s3:max-keys", "10", "10", False),
    ("NumericNotEquals", "s3:max-keys", "10", "11", True),
    ("NumericNotEquals", "s3:max-keys", "10", "ten", True),
    ("NumericNotEquals", "s3:max-keys", "10", None, True),
    ("NumericLessThan", "s3:max-keys", "10", "9", True),
    ("NumericLessThan", "s3:max-keys", "10", "10", False),
    ("NumericLessThan", "s3:max-keys", "10", None, False),
    ("NumericLessThanEquals", "s3:max-keys", "10", "10", True),
    ("NumericLessThanEquals", "s3:max-keys", "10", "10.5", False),
    ("NumericLessThanEquals", "s3:max-keys", "10", None, False),
    ("NumericGreaterThan", "s3:max-keys", "10", "11", True),
    ("NumericGreaterThan", "s3:max-keys", "10", "10", False),
    ("NumericGreaterThan", "s3:max-keys", "10", None, False),
    ("NumericGreaterThanEquals", "s3:max-keys", 1.5, "1.5", True),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", "9", False),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", None, False),
]

NOON = "2026-06-01T12:00:00Z"
NOON_EPOCH = "1780315200"
DATES: list[Row] = [
    ("DateEquals", "aws:CurrentTime", NOON, "2026-06-01T12:00:00+00:00", True),
    ("DateEquals", "aws:CurrentTime", NOON, "2026-06-01T14:00:00+02:00", True),
    ("DateEquals", "aws:CurrentTime", NOON_EPOCH, NOON, True),
    ("DateEquals", "aws:EpochTime", NOON, NOON_EPOCH, True),
    ("DateEquals", "aws:CurrentTime", "2026-06-01", "2026-06-01T00:00:00Z", True),
    ("DateEquals", "aws:CurrentTime", NOON, "not a date", False),
    ("DateEquals", "aws:CurrentTime", NOON, None, False),
    ("DateNotEquals", "aws:CurrentTime", NOON, NOON, False),
    ("DateNotEquals", "aws:CurrentTime", NOON, "2026-06-01T12:00:01Z", True),
    ("DateNotEquals", "aws:CurrentTime", NOON, None, True),
    ("DateLessThan", "aws:CurrentTime", NOON, "2026-06-01T11:59:59Z", True),
    ("DateLessThan", "aws:CurrentTime", NOON, NOON, False),
    ("DateLessThan", "aws:CurrentTime", NOON, None, False),
    ("DateLessThanEquals", "aws:CurrentTime", NOON, NOON, True),
    ("DateLessThanEquals", "aws:CurrentTime", NOON, "2026-06-02T00:00:00Z", False),
    ("DateLessThanEquals", "aws:CurrentTime", NOON, None, False),
    ("DateGreaterThan", "aws:EpochTime", 1780315200, "1780315201", True),
    ("DateGreaterThan", "aws:EpochTime", 1780315200, "1780315200", False),
    ("DateGreaterThan", "aws:EpochTime", 1780315200, None, False),
    ("DateGreaterThanEquals", "aws:CurrentTime", NOON, NOON, True),
    ("DateGreaterThanEquals", "aws:CurrentTime", NOON, "2025-01-01T00:00:00Z", False),
    ("DateGreaterThanEquals", "aws:CurrentTime", NOON, None, False),
]

BOOL_NULL: list[Row] = [
    ("Bool", "aws:SecureTransport", "true", "true", True),
    ("Bool", "aws:SecureTransport", True, "TRUE", True),
    ("Bool", "aws:SecureTransport", "false", "true", False),
    ("Bool", "aws:SecureTransport", "false", "maybe", False),
    ("Bool", "aws:SecureTransport", "false", None, False),
    ("Null", "s3:x-amz-server-side-encryption", "true", None, True),
    ("Null", "s3:x-amz-server-side-encryption", "true", "AES256", False),
    ("Null", "s3:x-amz-server-side-encryption", "false", "AES256", True),
    ("Null", "s3:x-amz-server-side-encryption", False, None, False),
    ("Null", "s3:x-amz-server-side-encryption", "true", [], True),
]

IP: list[Row] = [
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.113.9", True),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.114.9", False),
    ("IpAddress", "aws:SourceIp", "203.0.113.7", "203.0.113.7", True),
    ("IpAddress", "aws:SourceIp", "203.0.113.7/24", "203.0.113.200", True),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", "2001:db8:1::5", True),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", "2001:db9::5", False),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", "203.0.113.9", False),
    ("IpAddress", "aws:SourceIp", ["10.0.0.0/8", "2001:db8::/32"], "2001:db8::1", True),
    ("IpAddress", "aws:SourceIp", "::1", "::1", True),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8", "not-an-ip", False),
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8", None, False),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", "10.1.2.3", False),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", "192.0.2.1", True),
    ("NotIpAddress", "aws:SourceIp", "2001:db8::/32", "2001:db8::1", False),
    ("NotIpAddress", "aws:SourceIp", "2001:db8::/32", "::1", True),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", "not-an-ip", True),
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", None, True),
]

USER_ARN = "arn:aws:iam::000000000000:user/alice"
ARN: list[Row] = [
    ("ArnEquals", "aws:PrincipalArn", USER_ARN, USER_ARN, True),
    ("ArnEquals", "aws:PrincipalArn", "arn:aws:iam::000000000000:user/bob", USER_ARN, False),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:user/*", USER_ARN, True),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::00000000000?:user/a*", USER_ARN, True),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/*", USER_ARN, False),
    ("ArnLike", "aws:PrincipalArn", "*", USER_ARN, True),
    ("ArnNotEquals", "aws:PrincipalArn", USER_ARN, USER_ARN, False),
    ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/*", USER_ARN, True),
]

EVERY_OPERATOR = STRING + NUMERIC + DATES + BOOL_NULL + IP + ARN


def row_id(row: Row) -> str:
    return f"{row[0]}({row[2]!r})[{row[3]!r}]"


@pytest.mark.parametrize(
    ("operator", "key", "policy_values", "request_values", "expected"),
    EVERY_OPERATOR,
    ids=[row_id(r) for r in EVERY_OPERATOR],
)
def test_operator(
    operator: str, key: str, policy_values: object, request_values: Values, expected: bool
) -> None:
    assert holds(operator, key, policy_values, request_values) is expected


def test_arn_operator_on_principal_arn_from_the_principal() -> None:
    # aws:PrincipalArn comes from the principal, so "absent from the request" is not possible.
    assert holds("ArnEquals", "aws:PrincipalArn", USER_ARN, None) is True


NON_NULL_OPERATORS = sorted({row[0] for row in EVERY_OPERATOR} - {"Null"})


@pytest.mark.parametrize("operator", NON_NULL_OPERATORS)
def test_if_exists_holds_when_the_key_is_absent(operator: str) -> None:
    value, key = sample(operator)
    assert holds(operator + "IfExists", key, value, None, principal=ANON) is True


@pytest.mark.parametrize("operator", NON_NULL_OPERATORS)
def test_if_exists_is_the_plain_operator_when_the_key_is_present(operator: str) -> None:
    value, key = sample(operator)
    for request in (value, "other-value"):
        assert holds(operator + "IfExists", key, value, request, principal=ANON) is holds(
            operator, key, value, request, principal=ANON
        )


ANON = Principal("anonymous", "anonymous")


def sample(operator: str) -> tuple[str, str]:
    """A valid policy value for ``operator``, and a key anonymous requests lack."""
    if operator.startswith("Numeric"):
        return "5", "s3:max-keys"
    if operator.startswith("Date"):
        return NOON, "aws:CurrentTime"
    if operator == "Bool":
        return "true", "aws:SecureTransport"
    if "Ip" in operator:
        return "10.0.0.0/8", "aws:SourceIp"
    if operator.startswith("Arn"):
        return "arn:aws:s3:::site-a/*", "s3:prefix"
    return "home/", "s3:prefix"


TAGS = "s3:RequestObjectTagKeys"
SETS: list[tuple[str, object, Values, bool]] = [
    ("ForAllValues:StringEquals", ["env", "team"], ["env"], True),
    ("ForAllValues:StringEquals", ["env", "team"], ["env", "team"], True),
    ("ForAllValues:StringEquals", ["env", "team"], ["env", "cost"], False),
    ("ForAllValues:StringEquals", ["env", "team"], None, True),
    ("ForAllValues:StringEquals", ["env", "team"], [], True),
    ("ForAnyValue:StringEquals", ["env", "team"], ["cost", "env"], True),
    ("ForAnyValue:StringEquals", ["env", "team"], ["cost"], False),
    ("ForAnyValue:StringEquals", ["env", "team"], None, False),
    ("ForAnyValue:StringEquals", ["env", "team"], [], False),
    ("ForAllValues:StringNotEquals", ["secret"], ["env", "team"], True),
    ("ForAllValues:StringNotEquals", ["secret"], ["env", "secret"], False),
    ("ForAnyValue:StringNotEquals", ["secret"], ["env", "secret"], True),
    ("ForAnyValue:StringNotEquals", ["secret"], ["secret"], False),
    ("ForAnyValue:StringNotEquals", ["secret"], None, False),
    ("ForAllValues:StringLike", ["env*"], ["env1", "env2"], True),
    ("ForAnyValue:StringLikeIfExists", ["env*"], None, True),
    ("ForAllValues:StringEqualsIfExists", ["env"], ["cost"], False),
    # Without a qualifier: a positive operator needs one match, a negated one none.
    ("StringEquals", ["env"], ["cost", "env"], True),
    ("StringNotEquals", ["env"], ["cost", "env"], False),
    ("StringNotEquals", ["env"], ["cost"], True),
]


@pytest.mark.parametrize(("operator", "policy_values", "request_values", "expected"), SETS)
def test_set_qualifiers(
    operator: str, policy_values: object, request_values: Values, expected: bool
) -> None:
    assert holds(operator, TAGS, policy_values, request_values) is expected


def test_operator_and_key_names_are_case_insensitive() -> None:
    assert holds("stringequals", "S3:PREFIX", "a", "a") is True
    assert holds("forallvalues:stringequals", TAGS.lower(), "a", ["a"]) is True


def test_tag_keys_keep_their_case() -> None:
    conditions = parse_conditions(
        {"StringEquals": {"s3:ExistingObjectTag/Env": "prod"}}, variables=True, where="t"
    )
    assert conditions_hold(conditions, request_context(ALICE, {"S3:existingobjecttag/Env": "prod"}))
    assert not conditions_hold(
        conditions, request_context(ALICE, {"s3:ExistingObjectTag/env": "prod"})
    )


def test_all_operators_and_all_keys_must_hold() -> None:
    block = {
        "StringLike": {"s3:prefix": "home/*", "s3:delimiter": "/"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    conditions = parse_conditions(block, variables=True, where="t")
    full = {"s3:prefix": "home/a", "s3:delimiter": "/", "aws:SecureTransport": "true"}
    assert conditions_hold(conditions, request_context(ALICE, full))
    for missing in full:
        partial = {k: v for k, v in full.items() if k != missing}
        assert not conditions_hold(conditions, request_context(ALICE, partial))


VARIABLES: list[tuple[str, str, Values, Principal, bool]] = [
    ("StringEquals", "home/${aws:username}/", "home/alice/", ALICE, True),
    ("StringEquals", "home/${aws:username}/", "home/bob/", ALICE, False),
    ("StringLike", "home/${aws:username}/*", "home/alice/x", ALICE, True),
    ("StringLike", "home/${aws:username}/*", "home/bob/x", ALICE, False),
    # No aws:username for anonymous: the value matches nothing (and a default replaces it).
    ("StringLike", "home/${aws:username}/*", "home//x", ANON, False),
    ("StringLike", "home/${aws:username, 'guest'}/*", "home/guest/x", ANON, True),
    ("StringLike", "home/${ aws:username , 'it''s'}/*", "home/it's/x", ANON, True),
    # A substituted value is literal: a user named "a*" does not match "ab".
    ("StringLike", "home/${aws:username}", "home/ab", Principal("a*", "user"), False),
    ("StringLike", "home/${aws:username}", "home/a*", Principal("a*", "user"), True),
    ("StringLike", "literal-${*}", "literal-*", ALICE, True),
    ("StringLike", "literal-${*}", "literal-x", ALICE, False),
    ("StringLike", "one-${?}", "one-?", ALICE, True),
    ("StringLike", "one-${?}", "one-x", ALICE, False),
    ("StringEquals", "cost-${$}5", "cost-$5", ALICE, True),
    ("StringNotEquals", "home/${aws:username}/", "home/alice/", ALICE, False),
    ("StringNotEquals", "home/${aws:username}/", "home/bob/", ALICE, True),
    ("StringEqualsIgnoreCase", "HOME/${aws:username}", "home/ALICE", ALICE, True),
    (
        "ArnLike",
        "arn:aws:s3:::site-a/${aws:username}/*",
        "arn:aws:s3:::site-a/alice/x",
        ALICE,
        True,
    ),
]


@pytest.mark.parametrize(("operator", "value", "request_value", "principal", "expected"), VARIABLES)
def test_policy_variables(
    operator: str, value: str, request_value: Values, principal: Principal, expected: bool
) -> None:
    assert holds(operator, "s3:prefix", value, request_value, principal=principal) is expected


def test_variables_are_text_in_2008_policies() -> None:
    assert (
        holds("StringEquals", "s3:prefix", "${aws:username}", "${aws:username}", variables=False)
        is True
    )
    assert holds("StringEquals", "s3:prefix", "${aws:username}", "alice", variables=False) is False


def test_multivalued_variable_matches_nothing() -> None:
    conditions = parse_conditions(
        {"StringEquals": {"s3:prefix": "${s3:RequestObjectTagKeys}"}}, variables=True, where="t"
    )
    one = request_context(ALICE, {"s3:prefix": "a", TAGS: ["a"]})
    two = request_context(ALICE, {"s3:prefix": "a", TAGS: ["a", "b"]})
    assert conditions_hold(conditions, one)
    assert not conditions_hold(conditions, two)


def test_principal_keys_cannot_be_forged_through_the_context() -> None:
    context = request_context(ALICE, {"aws:UserName": "root", "AWS:PrincipalType": "Account"})
    assert context["aws:username"] == ("alice",)
    assert context["aws:principaltype"] == ("User",)


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (ALICE, {"aws:username": ("alice",), "aws:principaltype": ("User",)}),
        (Principal("root", "root"), {"aws:principaltype": ("Account",)}),
        (
            Principal("s1", "session"),
            {"aws:principaltype": ("AssumedRole",), "aws:userid": ("web-identity:s1",)},
        ),
        (ANON, {"aws:principaltype": ("Anonymous",), "aws:userid": ("anonymous",)}),
    ],
)
def test_principal_keys(principal: Principal, expected: dict[str, tuple[str, ...]]) -> None:
    context = request_context(principal, {})
    assert {k: context[k] for k in expected} == expected
    if principal.kind != "user":
        assert "aws:username" not in context
