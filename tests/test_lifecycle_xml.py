"""Lifecycle XML (gateway.lifecycle_xml): what PutBucketLifecycleConfiguration accepts, the
S3 error code of every refusal, and what GetBucketLifecycleConfiguration renders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import S3Error
from gateway import s3xml
from gateway.lifecycle_xml import parse_lifecycle, render_lifecycle
from policy.lifecycle import (
    RETENTION_RULE_ID,
    Expiration,
    LifecycleFilter,
    LifecycleRule,
    NoncurrentExpiration,
)

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
ON = "<Status>Enabled</Status>"
DAYS = "<Expiration><Days>30</Days></Expiration>"
ANY = "<Filter></Filter>"


def doc(*rules: str, ns: str = NS) -> bytes:
    body = "".join(f"<Rule>{rule}</Rule>" for rule in rules)
    return f"<LifecycleConfiguration {ns}>{body}</LifecycleConfiguration>".encode()


def tag(key: str, value: str) -> str:
    return f"<Tag><Key>{key}</Key><Value>{value}</Value></Tag>"


def test_a_full_rule_is_parsed() -> None:
    (rule,) = parse_lifecycle(
        doc(
            "<ID>everything</ID><Filter><And><Prefix>logs/</Prefix>"
            + tag("kind", "debug")
            + tag("team", "web")
            + "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
            "<ObjectSizeLessThan>1000</ObjectSizeLessThan></And></Filter>"
            + ON
            + DAYS
            + "<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>"
            "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
        )
    )
    assert rule == LifecycleRule(
        "everything",
        True,
        LifecycleFilter("logs/", (("kind", "debug"), ("team", "web")), 10, 1000, "and"),
        Expiration(days=30),
        NoncurrentExpiration(7, 3),
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (ANY + ON + DAYS, LifecycleFilter()),
        ("<Filter><Prefix>a/</Prefix></Filter>" + ON + DAYS, LifecycleFilter("a/")),
        ("<Prefix>a/</Prefix>" + ON + DAYS, LifecycleFilter("a/", form="legacy")),
        ("<Filter>" + tag("k", "v") + "</Filter>" + ON + DAYS, LifecycleFilter(tags=(("k", "v"),))),
        (
            "<Filter><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter>" + ON + DAYS,
            LifecycleFilter(size_less_than=5),
        ),
        (
            "<Filter><ObjectSizeGreaterThan>0</ObjectSizeGreaterThan></Filter>" + ON + DAYS,
            LifecycleFilter(size_greater_than=0),
        ),
    ],
)
def test_filters(rule: str, expected: LifecycleFilter) -> None:
    assert parse_lifecycle(doc(rule))[0].filter == expected


def test_without_namespace_disabled_date_marker_and_abort() -> None:
    rules = parse_lifecycle(
        doc(
            "<ID>a</ID>" + ANY + "<Status>Disabled</Status>"
            "<Expiration><Date>2031-01-01T00:00:00Z</Date></Expiration>",
            "<ID>b</ID><Filter><Prefix>x/</Prefix></Filter>" + ON + "<Expiration>"
            "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>",
            ns="",
        )
    )
    assert not rules[0].enabled
    assert rules[0].expiration == Expiration(date=datetime(2031, 1, 1, tzinfo=UTC))
    assert rules[1].expiration == Expiration(expired_object_delete_marker=True)
    assert rules[1].abort_after_days == 2


def test_an_id_is_generated_when_absent_and_kept_when_given() -> None:
    rules = parse_lifecycle(doc(ANY + ON + DAYS, "<ID>mine</ID>" + ANY + ON + DAYS))
    assert rules[0].rule_id is not None
    assert 0 < len(rules[0].rule_id) <= 255
    assert rules[1].rule_id == "mine"


def test_up_to_1000_rules() -> None:
    assert len(parse_lifecycle(doc(*[ANY + ON + DAYS] * 1000))) == 1000


def _refusal(rule_body: str) -> bytes:
    return doc(rule_body)


LONG_ID = "x" * 256
CASES = [
    # Not a lifecycle configuration, or not S3's schema.
    (b"", "MalformedXML", ""),
    (b"<LifecycleConfiguration>", "MalformedXML", ""),
    (b"<Other/>", "MalformedXML", "LifecycleConfiguration"),
    (b"<LifecycleConfiguration/>", "MalformedXML", "at least one Rule"),
    (doc(*[ANY + ON + DAYS] * 1001), "MalformedXML", "1000"),
    (b"<LifecycleConfiguration><Bogus/></LifecycleConfiguration>", "MalformedXML", "Bogus"),
    (_refusal(ANY + DAYS), "MalformedXML", "Status"),
    (_refusal(ANY + "<Status>enabled</Status>" + DAYS), "MalformedXML", "Status"),
    (_refusal(ANY + ON + ON + DAYS), "MalformedXML", "more than once"),
    (_refusal(ANY + ON + DAYS + "<Color/>"), "MalformedXML", "Color"),
    (_refusal(ON + DAYS), "MalformedXML", "Filter"),
    (_refusal("<Prefix>a</Prefix>" + ANY + ON + DAYS), "MalformedXML", "not both"),
    (
        _refusal("<Filter><Prefix>a</Prefix>" + tag("k", "v") + "</Filter>" + ON + DAYS),
        "MalformedXML",
        "exactly one",
    ),
    (_refusal("<Filter><And></And></Filter>" + ON + DAYS), "MalformedXML", "And"),
    (_refusal("<Filter><And><Bad/></And></Filter>" + ON + DAYS), "MalformedXML", "Bad"),
    (_refusal("<Filter><Tag><Value>v</Value></Tag></Filter>" + ON + DAYS), "MalformedXML", "Key"),
    (_refusal(ANY + ON + "<Expiration><Days>ten</Days></Expiration>"), "MalformedXML", "Days"),
    (_refusal(ANY + ON + "<Expiration><Date>soon</Date></Expiration>"), "MalformedXML", "Date"),
    (
        _refusal(
            ANY + ON + "<Expiration><ExpiredObjectDeleteMarker>yes"
            "</ExpiredObjectDeleteMarker></Expiration>"
        ),
        "MalformedXML",
        "true or false",
    ),
    (
        _refusal(ANY + ON + "<NoncurrentVersionExpiration/>"),
        "MalformedXML",
        "NoncurrentDays",
    ),
    (
        _refusal(ANY + ON + "<AbortIncompleteMultipartUpload/>"),
        "MalformedXML",
        "DaysAfterInitiation",
    ),
    # Transitions: no storage classes here.
    (
        _refusal(
            ANY + ON + "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
        ),
        "InvalidStorageClass",
        "Transition",
    ),
    (
        _refusal(
            ANY + ON + DAYS + "<NoncurrentVersionTransition><NoncurrentDays>1"
            "</NoncurrentDays><StorageClass>GLACIER</StorageClass>"
            "</NoncurrentVersionTransition>"
        ),
        "InvalidStorageClass",
        "NoncurrentVersionTransition",
    ),
    # S3's semantic checks.
    (_refusal(ANY + ON), "InvalidArgument", "At least one action"),
    (_refusal(f"<ID>{LONG_ID}</ID>" + ANY + ON + DAYS), "InvalidArgument", "255"),
    (
        doc("<ID>same</ID>" + ANY + ON + DAYS, "<ID>same</ID>" + ANY + ON + DAYS),
        "InvalidArgument",
        "unique",
    ),
    (
        _refusal(ANY + ON + "<Expiration><Days>0</Days></Expiration>"),
        "InvalidArgument",
        "'Days' for Expiration action must be a positive integer",
    ),
    (
        _refusal(ANY + ON + "<Expiration><Days>-3</Days></Expiration>"),
        "InvalidArgument",
        "positive integer",
    ),
    (
        _refusal(ANY + ON + "<Expiration><Days>99999999999</Days></Expiration>"),
        "InvalidArgument",
        "out of range",
    ),
    (_refusal(ANY + ON + "<Expiration></Expiration>"), "InvalidArgument", "exactly one"),
    (
        _refusal(
            ANY + ON + "<Expiration><Days>1</Days><Date>2031-01-01T00:00:00Z</Date></Expiration>"
        ),
        "InvalidArgument",
        "exactly one",
    ),
    (
        _refusal(
            ANY + ON + "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true"
            "</ExpiredObjectDeleteMarker></Expiration>"
        ),
        "InvalidArgument",
        "cannot be specified with Days or Date",
    ),
    (
        _refusal(ANY + ON + "<Expiration><Date>2031-01-01T12:00:00Z</Date></Expiration>"),
        "InvalidArgument",
        "midnight GMT",
    ),
    (
        _refusal(
            "<Filter>" + tag("k", "v") + "</Filter>" + ON + "<Expiration>"
            "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
        ),
        "InvalidArgument",
        "ExpiredObjectDeleteMarker cannot be specified with tags",
    ),
    (
        _refusal(
            "<Filter>" + tag("k", "v") + "</Filter>" + ON + "<AbortIncompleteMultipartUpload>"
            "<DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        ),
        "InvalidArgument",
        "AbortIncompleteMultipartUpload cannot be specified with Tags",
    ),
    (
        _refusal(
            "<Filter><ObjectSizeLessThan>9</ObjectSizeLessThan></Filter>"
            + ON
            + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>"
        ),
        "InvalidArgument",
        "object size",
    ),
    (
        _refusal(
            ANY + ON + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0"
            "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        ),
        "InvalidArgument",
        "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action",
    ),
    (
        _refusal(
            ANY + ON + "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
            "</NoncurrentVersionExpiration>"
        ),
        "InvalidArgument",
        "'NoncurrentDays' for NoncurrentVersionExpiration action",
    ),
    (
        _refusal(
            ANY + ON + "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
            "<NewerNoncurrentVersions>101</NewerNoncurrentVersions>"
            "</NoncurrentVersionExpiration>"
        ),
        "InvalidArgument",
        "NewerNoncurrentVersions",
    ),
    (
        _refusal(
            "<Filter><And><ObjectSizeGreaterThan>9</ObjectSizeGreaterThan>"
            "<ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter>" + ON + DAYS
        ),
        "InvalidArgument",
        "less than",
    ),
    (
        _refusal("<Filter><ObjectSizeLessThan>0</ObjectSizeLessThan></Filter>" + ON + DAYS),
        "InvalidArgument",
        "ObjectSizeLessThan",
    ),
    (
        _refusal("<Filter><And>" + tag("k", "a") + tag("k", "b") + "</And></Filter>" + ON + DAYS),
        "InvalidTag",
        "same key",
    ),
    (_refusal("<Filter>" + tag("aws:x", "v") + "</Filter>" + ON + DAYS), "InvalidTag", "aws:"),
    # The retention rule has one shape.
    (
        _refusal(f"<ID>{RETENTION_RULE_ID}</ID>" + ANY + "<Status>Disabled</Status>" + DAYS),
        "InvalidArgument",
        "retention window",
    ),
    (
        _refusal(
            f"<ID>{RETENTION_RULE_ID}</ID><Filter><Prefix>logs/</Prefix></Filter>" + ON + DAYS
        ),
        "InvalidArgument",
        "retention window",
    ),
    (
        _refusal(
            f"<ID>{RETENTION_RULE_ID}</ID>"
            + ANY
            + ON
            + DAYS
            + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>"
        ),
        "InvalidArgument",
        "retention window",
    ),
    (
        _refusal(
            f"<ID>{RETENTION_RULE_ID}</ID>"
            + ANY
            + ON
            + "<Expiration><Days>36501</Days></Expiration>"
        ),
        "InvalidArgument",
        "at most 36500",
    ),
]


@pytest.mark.parametrize(("body", "code", "says"), CASES)
def test_refusals_carry_s3s_code(body: bytes, code: str, says: str) -> None:
    with pytest.raises(S3Error) as info:
        parse_lifecycle(body)
    assert info.value.code == code
    assert says in info.value.message


@pytest.mark.parametrize(
    "body",
    [
        doc("<ID>r</ID><Prefix>legacy/</Prefix>" + ON + DAYS),
        doc("<ID>r</ID>" + ANY + ON + DAYS),
        doc("<ID>r</ID><Filter>" + tag("k", "v") + "</Filter>" + ON + DAYS),
        doc(
            "<ID>r</ID><Filter><And><Prefix></Prefix>"
            + tag("k", "v")
            + tag("j", "")
            + "<ObjectSizeLessThan>4</ObjectSizeLessThan></And></Filter><Status>Disabled</Status>"
            "<Expiration><Date>2031-01-01T00:00:00.000Z</Date></Expiration>"
        ),
        doc(
            "<ID>r</ID><Filter><Prefix>p</Prefix></Filter>" + ON + "<Expiration>"
            "<ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration>"
            "<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays>"
            "</NoncurrentVersionExpiration><AbortIncompleteMultipartUpload>"
            "<DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        ),
    ],
)
def test_render_round_trips(body: bytes) -> None:
    rules = parse_lifecycle(body)
    assert parse_lifecycle(s3xml.serialize(render_lifecycle(rules))) == rules
