"""parse_policy: what it accepts, and the precise MalformedPolicy for each thing it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import S3Error
from policy.access import PolicyKind, parse_policy

ALLOW_GET: dict[str, Any] = {
    "Effect": "Allow",
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::site-a/*",
}


def policy(*statements: dict[str, Any], **top: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements), **top})


def resource_statement(**changes: Any) -> dict[str, Any]:
    return {**ALLOW_GET, "Principal": "*", **changes}


def refused(text: str, kind: PolicyKind = "identity") -> str:
    with pytest.raises(S3Error) as caught:
        parse_policy(text, kind=kind, bucket="site-a")
    assert caught.value.code == "MalformedPolicy"
    assert caught.value.status == 400
    return caught.value.message


MALFORMED: list[tuple[str, str, PolicyKind, str]] = [
    ("bad JSON", "{", "identity", "not valid JSON"),
    ("NaN", '{"Version": NaN}', "identity", "NaN is not a JSON value"),
    ("not an object", "[]", "identity", "must be a JSON object"),
    ("duplicate key", '{"Statement": [], "Statement": []}', "identity", "'Statement' twice"),
    ("unknown top key", policy(ALLOW_GET, Extra=1), "identity", "unknown top-level element"),
    ("bad version", policy(ALLOW_GET, Version="2020-01-01"), "identity", "Version must be"),
    ("no statement", json.dumps({"Version": "2012-10-17"}), "identity", "missing Statement"),
    ("empty statement", policy(), "identity", "Statement must not be empty"),
    ("statement not object", policy("x"), "identity", "Statement #0 must be an object"),  # type: ignore[arg-type]
    ("unknown element", policy({**ALLOW_GET, "Foo": 1}), "identity", "unknown element 'Foo'"),
    ("bad effect", policy({**ALLOW_GET, "Effect": "allow"}), "identity", "Effect must be"),
    (
        "no action",
        policy({"Effect": "Allow", "Resource": "*"}),
        "identity",
        "missing Action or NotAction",
    ),
    (
        "no resource",
        policy({"Effect": "Allow", "Action": "s3:*"}),
        "identity",
        "missing Resource or NotResource",
    ),
    (
        "Action and NotAction",
        policy({**ALLOW_GET, "NotAction": "s3:PutObject"}),
        "identity",
        "both Action and NotAction",
    ),
    (
        "Resource and NotResource",
        policy({**ALLOW_GET, "NotResource": "*"}),
        "identity",
        "both Resource and NotResource",
    ),
    ("empty action list", policy({**ALLOW_GET, "Action": []}), "identity", "must not be empty"),
    ("action not a string", policy({**ALLOW_GET, "Action": 3}), "identity", "non-empty string"),
    (
        "action without service",
        policy({**ALLOW_GET, "Action": "GetObject"}),
        "identity",
        "is not an action",
    ),
    (
        "unknown service",
        policy({**ALLOW_GET, "Action": "ec2:RunInstances"}),
        "identity",
        "unknown service 'ec2'",
    ),
    (
        "service wildcard",
        policy({**ALLOW_GET, "Action": "s*:GetObject"}),
        "identity",
        "is not an action",
    ),
    (
        "resource not an ARN",
        policy({**ALLOW_GET, "Resource": "site-a/x"}),
        "identity",
        "must be an ARN or '*'",
    ),
    (
        "identity with Principal",
        policy({**ALLOW_GET, "Principal": "*"}),
        "identity",
        "must not have Principal",
    ),
    (
        "identity with NotPrincipal",
        policy({**ALLOW_GET, "NotPrincipal": "*"}),
        "identity",
        "must not have NotPrincipal",
    ),
    (
        "resource without Principal",
        policy(ALLOW_GET),
        "resource",
        "needs Principal or NotPrincipal",
    ),
    (
        "other bucket",
        policy(resource_statement(Resource="arn:aws:s3:::site-b/*")),
        "resource",
        "Policy has invalid resource",
    ),
    (
        "bucket prefix",
        policy(resource_statement(Resource="arn:aws:s3:::site-ab")),
        "resource",
        "Policy has invalid resource",
    ),
    (
        "bucket wildcard",
        policy(resource_statement(Resource="arn:aws:s3:::site-*")),
        "resource",
        "Policy has invalid resource",
    ),
    (
        "star resource",
        policy(resource_statement(Resource="*")),
        "resource",
        "Policy has invalid resource",
    ),
    (
        "NotResource outside",
        policy(
            {
                "Effect": "Deny",
                "Action": "s3:*",
                "Principal": "*",
                "NotResource": "arn:aws:s3:::other",
            }
        ),
        "resource",
        "Policy has invalid resource",
    ),
    (
        "principal type",
        policy(resource_statement(Principal={"Federated": "x"})),
        "resource",
        "unknown principal type 'Federated'",
    ),
    (
        "principal string",
        policy(resource_statement(Principal="alice")),
        "resource",
        'must be "*" or an object',
    ),
    (
        "principal arn",
        policy(resource_statement(Principal={"AWS": "alice"})),
        "resource",
        "Invalid principal in policy",
    ),
    (
        "principal other service ARN",
        policy(resource_statement(Principal={"AWS": "arn:aws:s3:::site-a"})),
        "resource",
        "Invalid principal in policy",
    ),
    (
        "principal ARN wildcard",
        policy(resource_statement(Principal={"AWS": "arn:aws:iam::000000000000:user/*"})),
        "resource",
        "has a wildcard",
    ),
    (
        "duplicate sid",
        policy({**ALLOW_GET, "Sid": "a"}, {**ALLOW_GET, "Sid": "a"}),
        "identity",
        "'a' is repeated",
    ),
    ("sid not string", policy({**ALLOW_GET, "Sid": 1}), "identity", "Sid must be a string"),
    (
        "unknown operator",
        policy({**ALLOW_GET, "Condition": {"StringFoo": {"s3:prefix": "a"}}}),
        "identity",
        "unknown condition operator 'StringFoo'",
    ),
    (
        "BinaryEquals unsupported",
        policy({**ALLOW_GET, "Condition": {"BinaryEquals": {"s3:prefix": "QQ=="}}}),
        "identity",
        "unknown condition operator 'BinaryEquals'",
    ),
    (
        "NullIfExists",
        policy({**ALLOW_GET, "Condition": {"NullIfExists": {"s3:prefix": "true"}}}),
        "identity",
        "Null takes no IfExists",
    ),
    (
        "ForAnyValue:Null",
        policy({**ALLOW_GET, "Condition": {"ForAnyValue:Null": {"s3:prefix": "true"}}}),
        "identity",
        "no set qualifier",
    ),
    (
        "unknown key",
        policy({**ALLOW_GET, "Condition": {"StringEquals": {"aws:Foo": "a"}}}),
        "identity",
        "unknown condition key 'aws:Foo'",
    ),
    (
        "empty tag key",
        policy({**ALLOW_GET, "Condition": {"StringEquals": {"s3:ExistingObjectTag/": "a"}}}),
        "identity",
        "unknown condition key",
    ),
    (
        "condition not object",
        policy({**ALLOW_GET, "Condition": []}),
        "identity",
        "Condition must be an object",
    ),
    (
        "operator block not object",
        policy({**ALLOW_GET, "Condition": {"StringEquals": "a"}}),
        "identity",
        "must be an object of condition keys",
    ),
    (
        "no values",
        policy({**ALLOW_GET, "Condition": {"StringEquals": {"s3:prefix": []}}}),
        "identity",
        "at least one value",
    ),
    (
        "object value",
        policy({**ALLOW_GET, "Condition": {"StringEquals": {"s3:prefix": {"a": 1}}}}),
        "identity",
        "must be a string, number or boolean",
    ),
    (
        "bad CIDR",
        policy({**ALLOW_GET, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0/33"}}}),
        "identity",
        "not an IP address or CIDR block",
    ),
    (
        "bad IPv6",
        policy({**ALLOW_GET, "Condition": {"NotIpAddress": {"aws:SourceIp": "2001:db8::/129"}}}),
        "identity",
        "not an IP address or CIDR block",
    ),
    (
        "bad date",
        policy({**ALLOW_GET, "Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}),
        "identity",
        "not a valid date",
    ),
    (
        "bad number",
        policy({**ALLOW_GET, "Condition": {"NumericLessThan": {"s3:max-keys": "ten"}}}),
        "identity",
        "not a valid number",
    ),
    (
        "bad bool",
        policy({**ALLOW_GET, "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}),
        "identity",
        "takes true or false",
    ),
    (
        "bad Null",
        policy({**ALLOW_GET, "Condition": {"Null": {"s3:prefix": "1"}}}),
        "identity",
        "takes true or false",
    ),
    (
        "bad ARN value",
        policy({**ALLOW_GET, "Condition": {"ArnLike": {"aws:PrincipalArn": "user/alice"}}}),
        "identity",
        "is not an ARN",
    ),
    (
        "unknown variable",
        policy({**ALLOW_GET, "Resource": "arn:aws:s3:::site-a/${aws:nope}"}),
        "identity",
        "unknown key 'aws:nope'",
    ),
    (
        "unterminated variable",
        policy({**ALLOW_GET, "Resource": "arn:aws:s3:::site-a/${aws:username"}),
        "identity",
        "no closing",
    ),
    (
        "bad variable default",
        policy({**ALLOW_GET, "Resource": "arn:aws:s3:::site-a/${aws:username, x}"}),
        "identity",
        "is not ${key}",
    ),
    (
        "resource policy too large",
        policy(resource_statement(Sid="x" * 21_000)),
        "resource",
        "maximum allowed document size",
    ),
]


@pytest.mark.parametrize(
    ("text", "kind", "message"), [row[1:] for row in MALFORMED], ids=[row[0] for row in MALFORMED]
)
def test_refused_with_a_precise_message(text: str, kind: PolicyKind, message: str) -> None:
    assert message in refused(text, kind)


def test_resource_policy_needs_the_bucket() -> None:
    with pytest.raises(ValueError, match="needs the bucket"):
        parse_policy(policy(resource_statement()), kind="resource")


def test_single_values_and_lists_are_both_accepted() -> None:
    single = parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": ALLOW_GET}), kind="identity"
    )
    listed = parse_policy(
        policy({**ALLOW_GET, "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::site-a/*"]}),
        kind="identity",
    )
    assert len(single.statements) == len(listed.statements) == 1
    assert single.statements[0].label == "#0"


def test_version_defaults_to_2008_and_disables_variables() -> None:
    old = parse_policy(
        json.dumps({"Statement": {**ALLOW_GET, "Resource": "arn:aws:s3:::site-a/${nope}"}}),
        kind="identity",
    )
    assert old.version == "2008-10-17"
    resources = old.statements[0].resources
    assert resources is not None
    assert not resources[0].has_variables


def test_statement_shape() -> None:
    document = parse_policy(
        policy(
            {
                "Sid": "ReadSite",
                "Effect": "Deny",
                "NotAction": ["s3:Get*", "pagewright:PinArtifact"],
                "NotResource": "arn:aws:s3:::site-a",
                "NotPrincipal": {"AWS": ["000000000000", "arn:aws:iam::000000000000:user/bob"]},
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            },
            Id="my-policy",
        ),
        kind="resource",
        bucket="site-a",
    )
    statement = document.statements[0]
    assert (statement.sid, statement.label, statement.effect) == ("ReadSite", "ReadSite", "Deny")
    assert statement.actions is None
    assert statement.not_actions is not None
    assert statement.resources is None
    assert statement.not_resources is not None
    assert statement.principals is None
    assert statement.not_principals is not None
    assert statement.not_principals.arns == {
        "arn:aws:iam::000000000000:root",
        "arn:aws:iam::000000000000:user/bob",
    }
    assert len(statement.conditions) == 1


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ["*"]},
        {"AWS": "123456789012"},
        {"AWS": "arn:aws:iam::000000000000:root"},
        {"AWS": "arn:aws:iam::000000000000:role/web-identity"},
        {"AWS": "arn:aws:sts::000000000000:assumed-role/web-identity/s1"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
        {"Service": "logging.s3.amazonaws.com"},
    ],
)
def test_principal_forms_accepted(principal: object) -> None:
    parse_policy(policy(resource_statement(Principal=principal)), kind="resource", bucket="site-a")


@pytest.mark.parametrize(
    "resource", ["arn:aws:s3:::site-a", "arn:aws:s3:::site-a/", "arn:aws:s3:::site-a/a/*"]
)
def test_bucket_policy_resources_inside_the_bucket(resource: str) -> None:
    parse_policy(policy(resource_statement(Resource=resource)), kind="resource", bucket="site-a")


def test_resource_policy_at_the_size_limit_is_accepted() -> None:
    text = policy(resource_statement(Sid="x"))
    padded = text[:-1] + " " * (20 * 1024 - len(text)) + text[-1]
    assert len(padded.encode()) == 20 * 1024
    parse_policy(padded, kind="resource", bucket="site-a")


def test_identity_policies_are_not_size_limited_here() -> None:
    parse_policy(policy({**ALLOW_GET, "Sid": "x" * 21_000}), kind="identity")


@pytest.mark.parametrize(
    "action", ["*", "s3:*", "S3:getobject", "pagewright:PinArtifact", "iam:Get?ser", "sts:*"]
)
def test_action_forms_accepted(action: str) -> None:
    parse_policy(policy({**ALLOW_GET, "Action": action}), kind="identity")
