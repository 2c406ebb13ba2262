"""Request-body parsers and the error document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from lxml import etree

from core.errors import S3Error
from gateway import s3xml

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_error_document() -> None:
    body = s3xml.error_document("NoSuchKey", "gone", "REQ1", "/b/k", {"Key": "k"})
    root = etree.fromstring(body)
    assert [c.tag for c in root] == ["Code", "Message", "Key", "Resource", "RequestId", "HostId"]
    assert root.findtext("Code") == "NoSuchKey"


def test_error_document_naming_values_xml_cannot_carry() -> None:
    """lxml refuses such text (a plain-text 500 before): values are URL-encoded, the
    message shows the character as an escape."""
    body = s3xml.error_document(
        "NoSuchKey", "no \x01 here", "REQ1", "/b/a\x01b", {"Key": "a\x01b\ufffe"}
    )
    root = etree.fromstring(body, etree.XMLParser(recover=False))
    assert root.findtext("Key") == "a%01b%EF%BF%BE"
    assert root.findtext("Resource") == "/b/a%01b"
    assert root.findtext("Message") == "no \\u0001 here"


def test_text_elements_are_always_serialisable() -> None:
    root = s3xml.element("R", s3xml.text("Key", "k\x00\x1f"), s3xml.text("Plain", "a&b\r"))
    parsed = etree.fromstring(s3xml.serialize(root), etree.XMLParser(recover=False))
    assert [node.text for node in parsed] == ["k%00%1F", "a&b\r"]


def test_parse_delete_with_and_without_namespace() -> None:
    for ns in ("", NS):
        body = (
            f"<Delete {ns}><Quiet>true</Quiet><Object><Key>a</Key></Object>"
            "<Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>"
        ).encode()
        request = s3xml.parse_delete(body)
        assert request.quiet
        assert request.objects == [s3xml.DeleteTarget("a"), s3xml.DeleteTarget("b", "null")]


@pytest.mark.parametrize(
    "body",
    [b"", b"<Delete/>", b"<Nope/>", b"<Delete><Object></Object></Delete>", b"<Delete>"],
)
def test_parse_delete_malformed(body: bytes) -> None:
    with pytest.raises(S3Error) as excinfo:
        s3xml.parse_delete(body)
    assert excinfo.value.code == "MalformedXML"


def test_parse_delete_conditions() -> None:
    body = (
        b'<Delete><Object><Key>a</Key><ETag>"abc"</ETag><Size>5</Size>'
        b"<LastModifiedTime>2026-12-01T10:00:00.000Z</LastModifiedTime></Object>"
        b"<Object><Key>b</Key><LastModifiedTime>Tue, 01 Dec 2026 10:00:00 GMT</LastModifiedTime>"
        b"</Object><Object><Key>c</Key><LastModifiedTime>2026-12-01T10:00:00</LastModifiedTime>"
        b"</Object>"
        b"</Delete>"
    )
    first, second, third = s3xml.parse_delete(body).objects
    moment = datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert first == s3xml.DeleteTarget("a", None, "abc", moment, 5)
    assert second == s3xml.DeleteTarget("b", last_modified_time=moment)
    assert third == s3xml.DeleteTarget("c", last_modified_time=moment)
    assert first.conditional
    assert second.conditional
    assert not s3xml.DeleteTarget("c").conditional


@pytest.mark.parametrize(
    "element",
    [
        "<Size>-1</Size>",
        "<Size>lots</Size>",
        "<LastModifiedTime>x</LastModifiedTime>",
        "<LastModifiedTime>Mon, 99 Nov 2026</LastModifiedTime>",
    ],
)
def test_parse_delete_malformed_condition(element: str) -> None:
    body = f"<Delete><Object><Key>k</Key>{element}</Object></Delete>".encode()
    with pytest.raises(S3Error) as excinfo:
        s3xml.parse_delete(body)
    assert excinfo.value.code == "MalformedXML"


def test_parse_delete_limit() -> None:
    objects = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1001))
    with pytest.raises(S3Error):
        s3xml.parse_delete(f"<Delete>{objects}</Delete>".encode())


def test_parse_complete_multipart() -> None:
    body = (
        f'<CompleteMultipartUpload {NS}><Part><PartNumber>1</PartNumber><ETag>"abc"</ETag>'
        "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>"
    ).encode()
    [part] = s3xml.parse_complete_multipart(body)
    assert (part.part_number, part.etag, part.checksums) == (1, "abc", {"CRC32": "AAAAAA=="})


def test_entities_are_not_expanded() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Delete><Object><Key>&x;</Key></Object></Delete>"
    )
    request = s3xml.parse_delete(body)
    assert "root:" not in request.objects[0].key


def test_location_constraint() -> None:
    assert s3xml.parse_location_constraint(b"") == ""
    body = f"<CreateBucketConfiguration {NS}><LocationConstraint>eu-west-1</LocationConstraint>"
    assert (
        s3xml.parse_location_constraint((body + "</CreateBucketConfiguration>").encode())
        == "eu-west-1"
    )


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2009, 10, 12, 17, 50, 30, 123456, tzinfo=UTC), "2009-10-12T17:50:30.123Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T01:04:05.000Z",
        ),
    ],
)
def test_timestamps_are_utc_with_milliseconds(moment: datetime, expected: str) -> None:
    assert s3xml.iso8601(moment) == expected
