"""S3's tagging on the wire: the ``Tagging`` XML document and the ``x-amz-tagging`` header.

The rules a tag set must keep are :mod:`policy.tags`'s; here they are applied to what a
request carries, with the error codes S3 answers: a document that does not fit the schema is
``MalformedXML``, a header that is not a URL-encoded query string is ``InvalidArgument``,
and a tag that breaks a rule (duplicate keys included) is ``InvalidTag``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import unquote_to_bytes

from lxml import etree

from core.errors import S3Error
from gateway import s3xml
from policy.tags import TagSet, add_tag, check_tags

TAGGING_HEADER = "x-amz-tagging"
DIRECTIVE_HEADER = "x-amz-tagging-directive"
COUNT_HEADER = "x-amz-tagging-count"
#: The largest Tagging document read: 50 tags of 128 + 256 characters, 4 bytes each, with
#: room for markup.
MAX_TAGGING_BODY = 128 * 1024


def parse_tagging(body: bytes, target: Literal["object", "bucket"]) -> TagSet:
    """The tag set of a ``<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>``
    document (with or without S3's namespace), checked for ``target``."""
    root = s3xml.parse(body)
    tag_sets = s3xml.children(root, "TagSet")
    if s3xml.local_name(root) != "Tagging" or len(tag_sets) != 1:
        raise S3Error("MalformedXML")
    tags: TagSet = {}
    for node in tag_sets[0]:
        if not isinstance(node.tag, str):
            continue  # comments, processing instructions
        if s3xml.local_name(node) != "Tag":
            raise S3Error("MalformedXML")
        keys, values = s3xml.children(node, "Key"), s3xml.children(node, "Value")
        if len(keys) != 1 or len(values) != 1 or len(node) != 2:
            raise S3Error("MalformedXML")
        add_tag(tags, keys[0].text or "", values[0].text or "")
    check_tags(tags, target)
    return tags


def tagging_document(tags: Mapping[str, str]) -> etree._Element:
    """The ``Tagging`` reply of GetObjectTagging / GetBucketTagging, tags sorted by key."""
    tag_set = s3xml.group(
        "TagSet",
        [
            s3xml.group("Tag", [s3xml.text("Key", key), s3xml.text("Value", tags[key])])
            for key in sorted(tags)
        ],
    )
    return s3xml.element("Tagging", tag_set)


def header_tags(headers: Mapping[str, str]) -> TagSet:
    """The object tags a write asks for in ``x-amz-tagging`` ({} when absent or empty).

    The value is a URL-encoded query string, ``key1=value1&key2=value2`` (``+`` is a space;
    ``key`` alone is a tag whose value is empty). A value that does not decode as UTF-8 is
    ``InvalidArgument``; tags are checked as object tags (``InvalidTag``)."""
    raw = headers.get(TAGGING_HEADER)
    if raw is None:
        return {}
    tags: TagSet = {}
    for pair in raw.encode("latin-1").split(b"&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition(b"=")
        try:
            key = unquote_to_bytes(raw_key.replace(b"+", b" ")).decode("utf-8")
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error(
                "InvalidArgument",
                "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL "
                "query parameters without tag name duplicates.",
                ArgumentName=TAGGING_HEADER,
                ArgumentValue=raw,
            ) from None
        add_tag(tags, key, value)
    check_tags(tags, "object")
    return tags


def tagging_directive(headers: Mapping[str, str]) -> Literal["COPY", "REPLACE"]:
    """CopyObject's ``x-amz-tagging-directive``: ``COPY`` (the default: the source's tags)
    or ``REPLACE`` (the request's ``x-amz-tagging``); anything else ``InvalidArgument``."""
    raw = headers.get(DIRECTIVE_HEADER, "COPY")
    value = raw.strip().upper()
    if value == "COPY":
        return "COPY"
    if value == "REPLACE":
        return "REPLACE"
    raise S3Error(
        "InvalidArgument",
        "Unknown tagging directive.",
        ArgumentName=DIRECTIVE_HEADER,
        ArgumentValue=raw,
    )
