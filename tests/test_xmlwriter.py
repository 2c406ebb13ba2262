"""The text XML writer produces documents equivalent to lxml's, with S3's escaping."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from gateway.xmlwriter import XmlWriter


def test_document_parses_and_escapes() -> None:
    out = XmlWriter("ListBucketResult")
    out.leaf("Key", 'a&b<c>"d"')
    out.leaf("Skipped", None)
    out.leaf("IsTruncated", False)
    out.leaf("Size", 12)
    out.leaf("LastModified", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    out.open("CommonPrefixes")
    out.leaf("Prefix", "p/")
    out.close("CommonPrefixes")
    root = etree.fromstring(out.to_bytes())
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    assert root.findtext("s3:Key", namespaces=ns) == 'a&b<c>"d"'
    assert root.find("s3:Skipped", namespaces=ns) is None
    assert root.findtext("s3:IsTruncated", namespaces=ns) == "false"
    assert root.findtext("s3:LastModified", namespaces=ns) == "2026-01-02T03:04:05.678Z"
    assert root.findtext("s3:CommonPrefixes/s3:Prefix", namespaces=ns) == "p/"


def test_control_characters_become_references() -> None:
    out = XmlWriter("R")
    out.leaf("Key", "ctl\x01\r")
    assert b"<Key>ctl&#x1;&#xD;</Key>" in out.to_bytes()
