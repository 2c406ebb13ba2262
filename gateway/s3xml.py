"""S3's XML: a small element builder for replies, and the parsers for request bodies.

Replies are built as lxml trees in S3's namespace and serialised with an XML declaration.
Request parsers accept documents with or without S3's namespace (clients differ) and raise
``MalformedXML`` for anything that does not fit the schema.

Every reply is well-formed XML 1.0. S3 keys may hold characters XML 1.0 cannot carry at all,
not even as character references (U+0000-U+001F but tab, LF and CR; U+FFFE, U+FFFF; lone
surrogates). S3 itself writes them as references such as ``&#x1;``, which XML parsers
(botocore's, Go's, Java's, libxml2) refuse, so the whole reply is lost. Here a value holding
such a character is written URL-encoded instead, as ``encoding-type=url`` writes it
(:func:`xml_safe`), and only that value: the rest of the reply stays exact. A listing asked
with ``encoding-type=url`` (as boto3, the aws cli and minio ask) carries every key exactly.
A human-readable message shows such a character as ``\\uXXXX`` (:func:`readable`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import overload
from urllib.parse import quote

from lxml import etree

from core.errors import S3Error
from core.numbers import int_argument, is_decimal
from translators.base import CompletedPart
from translators.multipart import MAX_PART_NUMBER

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
#: A character XML 1.0 cannot carry (its ``Char`` production, inverted).
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def xml_carries(value: str) -> bool:
    """True when every character of ``value`` is one XML 1.0 can carry."""
    return _NOT_XML_CHAR.search(value) is None


def url_encode(value: str) -> str:
    """``encoding-type=url``: every character but unreserved ones and ``/`` percent-encoded
    as UTF-8 (a lone surrogate as its 3-byte form, so nothing can make this fail)."""
    if _URL_SAFE.fullmatch(value):
        return value
    return quote(value.encode("utf-8", "surrogatepass"), safe="/")


def xml_safe(value: str) -> str:
    """``value``, or ``value`` URL-encoded when it holds a character XML 1.0 cannot carry."""
    return value if xml_carries(value) else url_encode(value)


def readable(text: str) -> str:
    """A message with every character XML 1.0 cannot carry shown as ``\\uXXXX``."""
    if xml_carries(text):
        return text
    return _NOT_XML_CHAR.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def element(tag: str, *children: etree._Element | None) -> etree._Element:
    """A root element in S3's namespace with the non-None children."""
    node = etree.Element(tag, nsmap={None: NS})  # type: ignore[dict-item]
    for child in children:
        if child is not None:
            node.append(child)
    return node


@overload
def text(tag: str, value: None) -> None: ...


@overload
def text(tag: str, value: object) -> etree._Element: ...


def text(tag: str, value: object | None) -> etree._Element | None:
    """``<tag>value</tag>``, or None (omitted) when value is None. A value XML 1.0 cannot
    carry is written URL-encoded (:func:`xml_safe`)."""
    if value is None:
        return None
    node = etree.Element(tag)
    if isinstance(value, bool):
        node.text = "true" if value else "false"
    elif isinstance(value, datetime):
        node.text = iso8601(value)
    else:
        node.text = xml_safe(str(value))
    return node


def group(tag: str, children: Iterable[etree._Element | None]) -> etree._Element:
    node = etree.Element(tag)
    for child in children:
        if child is not None:
            node.append(child)
    return node


def serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def iso8601(moment: datetime) -> str:
    """S3's XML timestamp: ``2009-10-12T17:50:30.000Z``."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # isoformat is C code; this runs once per listed object. Its "+00:00" becomes "Z"
    # (cheaper than a naive copy of the datetime).
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def error_document(
    code: str, message: str, request_id: str, resource: str, fields: dict[str, str]
) -> bytes:
    """S3's ``<Error>`` document (no namespace, as S3 sends it). Values naming keys or
    arguments are written as :func:`xml_safe` makes them, the message as :func:`readable`."""
    root = etree.Element("Error")
    etree.SubElement(root, "Code").text = code
    etree.SubElement(root, "Message").text = readable(message)
    for tag, value in fields.items():
        etree.SubElement(root, tag).text = xml_safe(value)
    etree.SubElement(root, "Resource").text = xml_safe(resource)
    etree.SubElement(root, "RequestId").text = request_id
    etree.SubElement(root, "HostId").text = request_id
    return serialize(root)


# ---------------------------------------------------------------------------- request bodies


def parse(body: bytes) -> etree._Element:
    """Parse a request document; ``MalformedXML`` if it is not well-formed."""
    if not body.strip():
        raise S3Error("MalformedXML")
    try:
        return etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise S3Error("MalformedXML") from exc


def local_name(node: etree._Element) -> str:
    return etree.QName(node).localname


def children(node: etree._Element, tag: str) -> list[etree._Element]:
    return [c for c in node if isinstance(c.tag, str) and local_name(c) == tag]


def child_text(node: etree._Element, tag: str) -> str | None:
    found = children(node, tag)
    if not found:
        return None
    return found[0].text or ""


def parse_location_constraint(body: bytes) -> str:
    """CreateBucketConfiguration -> its LocationConstraint ("" when absent)."""
    if not body.strip():
        return ""
    root = parse(body)
    if local_name(root) != "CreateBucketConfiguration":
        raise S3Error("MalformedXML")
    return (child_text(root, "LocationConstraint") or "").strip()


@dataclass(frozen=True)
class DeleteTarget:
    """One ``<Object>`` of a DeleteObjects document: the key, its version id, and the
    conditions it is deleted under (``ETag``, ``LastModifiedTime``, ``Size``; None: none)."""

    key: str
    version_id: str | None = None
    etag: str | None = None  # unquoted; "*": any existing object
    last_modified_time: datetime | None = None
    size: int | None = None

    @property
    def conditional(self) -> bool:
        return (self.etag, self.last_modified_time, self.size) != (None, None, None)


@dataclass(frozen=True)
class DeleteRequest:
    quiet: bool
    objects: list[DeleteTarget]


def parse_delete(body: bytes, limit: int = 1000) -> DeleteRequest:
    """DeleteObjects' ``<Delete>`` document: 1 to ``limit`` objects. A ``LastModifiedTime``
    that is no ISO 8601 time or a ``Size`` that is no byte count is ``MalformedXML``."""
    root = parse(body)
    if local_name(root) != "Delete":
        raise S3Error("MalformedXML")
    quiet = (child_text(root, "Quiet") or "false").strip().lower() == "true"
    objects: list[DeleteTarget] = []
    for node in children(root, "Object"):
        key = child_text(node, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        etag = child_text(node, "ETag")
        size = child_text(node, "Size")
        modified = child_text(node, "LastModifiedTime")
        if size is not None and not is_decimal(size.strip()):
            raise S3Error("MalformedXML", "The Size of an Object to delete is a byte count.")
        objects.append(
            DeleteTarget(
                key,
                child_text(node, "VersionId"),
                etag.strip().strip('"') if etag is not None else None,
                _timestamp(modified) if modified is not None else None,
                int(size.strip()) if size is not None else None,
            )
        )
    if not objects or len(objects) > limit:
        raise S3Error("MalformedXML", f"A Delete request names 1 to {limit} objects.")
    return DeleteRequest(quiet, objects)


def _timestamp(text: str) -> datetime:
    """A time as SDKs write ``LastModifiedTime``: an HTTP date (``Mon, 30 Nov 2026 21:23:55
    GMT``, what botocore sends) or ISO 8601 (``2026-11-30T21:23:55.000Z``); UTC when no zone
    is given."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise S3Error(
                "MalformedXML", "The LastModifiedTime of an Object to delete is not a time."
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_PART_CHECKSUM_TAGS = {
    "ChecksumCRC32": "CRC32",
    "ChecksumCRC32C": "CRC32C",
    "ChecksumCRC64NVME": "CRC64NVME",
    "ChecksumSHA1": "SHA1",
    "ChecksumSHA256": "SHA256",
}


def parse_complete_multipart(body: bytes) -> list[CompletedPart]:
    """CompleteMultipartUpload's part list, in the order given."""
    root = parse(body)
    if local_name(root) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML")
    parts: list[CompletedPart] = []
    for node in children(root, "Part"):
        number = child_text(node, "PartNumber")
        etag = child_text(node, "ETag")
        if number is None or etag is None or not is_decimal(number.strip()):
            raise S3Error("MalformedXML")
        part_number = int_argument(
            "PartNumber",
            number.strip(),
            low=1,
            high=MAX_PART_NUMBER,
            message="Part number must be an integer between 1 and 10000, inclusive",
        )
        checksums = {
            algorithm: value.strip()
            for tag, algorithm in _PART_CHECKSUM_TAGS.items()
            if (value := child_text(node, tag))
        }
        parts.append(CompletedPart(part_number, etag.strip().strip('"'), checksums))
    if not parts:
        raise S3Error("MalformedXML", "CompleteMultipartUpload names no parts.")
    return parts


def checksum_tag(algorithm: str) -> str:
    """``ChecksumCRC32`` for ``CRC32``."""
    return f"Checksum{algorithm}"
