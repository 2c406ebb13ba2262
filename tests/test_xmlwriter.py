"""The text XML writer produces documents equivalent to lxml's, with S3's escaping."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
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


def test_carriage_return_is_a_reference() -> None:
    """A bare CR would be read back as LF (XML end-of-line handling)."""
    out = XmlWriter("R")
    out.leaf("Key", "cr\r\nlf\ttab")
    assert b"<Key>cr&#xD;\nlf\ttab</Key>" in out.to_bytes()
    assert etree.fromstring(out.to_bytes()).findtext("{*}Key") == "cr\r\nlf\ttab"


@pytest.mark.parametrize("value", ["ctl\x01\r", "\x00", "\ufffe", "\uffff", "\ud800", "a\x1fb&c"])
def test_values_xml_cannot_carry_are_url_encoded(value: str) -> None:
    """``&#x1;`` is not well-formed XML 1.0: such a value is written URL-encoded, and the
    document parses with a strict parser."""
    out = XmlWriter("R")
    out.leaf("Key", value)
    document = out.to_bytes()
    parsed = etree.fromstring(document, etree.XMLParser(recover=False)).findtext("{*}Key")
    assert parsed == quote(value.encode("utf-8", "surrogatepass"), safe="/")
    assert b"&#x" not in document
