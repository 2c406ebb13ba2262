"""Lifecycle XML: what PutBucketLifecycleConfiguration accepts, refuses, and Get renders."""

from __future__ import annotations

import pytest

from core.errors import S3Error
from gateway import s3xml
from gateway.handlers.lifecycle import ExpirationRule, parse_lifecycle, render_lifecycle

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def doc(rule_body: str, *, ns: str = NS) -> bytes:
    return (
        f"<LifecycleConfiguration {ns}><Rule>{rule_body}</Rule></LifecycleConfiguration>".encode()
    )


EXPIRE = "<Status>Enabled</Status><Expiration><Days>30</Days></Expiration>"
DAYS_3 = "<Expiration><Days>3</Days></Expiration>"
DAYS_0 = "<Expiration><Days>0</Days></Expiration>"


@pytest.mark.parametrize(
    "body",
    [
        doc("<ID>r</ID><Filter><Prefix>builds/</Prefix></Filter>" + EXPIRE),
        doc("<Filter/>" + EXPIRE, ns=""),
        doc("<Filter><Prefix></Prefix></Filter>" + EXPIRE),
        doc("<Prefix>builds/</Prefix>" + EXPIRE),
        doc(EXPIRE),
    ],
)
def test_accepts_expiration_days(body: bytes) -> None:
    assert parse_lifecycle(body).days == 30


def test_keeps_the_rule_id() -> None:
    assert parse_lifecycle(doc("<ID>keep-a-month</ID>" + EXPIRE)).rule_id == "keep-a-month"


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (doc("<Filter><Prefix>logs/</Prefix></Filter>" + EXPIRE), "NotImplemented", "logs/"),
        (
            doc("<Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter>" + EXPIRE),
            "NotImplemented",
            "tag",
        ),
        (
            doc(
                EXPIRE
                + "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
            ),
            "NotImplemented",
            "transitions",
        ),
        (
            doc(
                EXPIRE + "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                "</NoncurrentVersionExpiration>"
            ),
            "NotImplemented",
            "noncurrent",
        ),
        (
            doc(
                "<Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>"
            ),
            "NotImplemented",
            "Date",
        ),
        (
            doc("<Status>Disabled</Status><Expiration><Days>3</Days></Expiration>"),
            "InvalidRequest",
            "Enabled",
        ),
        (
            doc("<Status>Enabled</Status><Expiration><Days>0</Days></Expiration>"),
            "InvalidRequest",
            "Days",
        ),
        (doc("<Expiration><Days>3</Days></Expiration>"), "MalformedXML", "Status"),
        (b"<LifecycleConfiguration/>", "MalformedXML", "Rule"),
        (
            b"<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>1</Days>"
            b"</Expiration></Rule><Rule><Status>Enabled</Status><Expiration><Days>2</Days>"
            b"</Expiration></Rule></LifecycleConfiguration>",
            "InvalidRequest",
            "one lifecycle rule",
        ),
        (b"<Other/>", "MalformedXML", ""),
    ],
)
def test_refuses_what_it_cannot_honour(body: bytes, code: str, says: str) -> None:
    with pytest.raises(S3Error) as info:
        parse_lifecycle(body)
    assert info.value.code == code
    assert says in info.value.message


def test_render_round_trips() -> None:
    rendered = s3xml.serialize(render_lifecycle(ExpirationRule(days=14, prefix="builds/")))
    assert b"<Days>14</Days>" in rendered
    assert b"<Prefix>builds/</Prefix>" in rendered
    again = parse_lifecycle(rendered)
    assert (again.days, again.prefix) == (14, "builds/")
