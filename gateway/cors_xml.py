"""S3's CORSConfiguration document: parsed from PutBucketCors, written for GetBucketCors.

Parsing follows S3: the root must be ``CORSConfiguration`` holding ``CORSRule`` elements,
each with at least one ``AllowedOrigin`` and ``AllowedMethod``, optional ``AllowedHeader``,
``ExposeHeader``, ``MaxAgeSeconds`` (a non-negative integer) and ``ID``; an unknown element
or a malformed value is ``MalformedXML``. What S3 checks beyond the schema (methods, wildcards,
the number of rules) is :func:`policy.cors.check_rules`'s.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from core.errors import S3Error
from core.numbers import NumberError, decimal
from gateway import s3xml
from policy.cors import CorsRule, CorsRules, check_rules

E, T, G = s3xml.element, s3xml.text, s3xml.group
_RULE_ELEMENTS: Final = frozenset(
    {"AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader", "MaxAgeSeconds", "ID"}
)


def parse_cors(body: bytes) -> CorsRules:
    """The rules of a PutBucketCors body (see the module docstring)."""
    root = s3xml.parse(body)
    if s3xml.local_name(root) != "CORSConfiguration":
        raise S3Error("MalformedXML")
    rules: list[CorsRule] = []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        if s3xml.local_name(node) != "CORSRule":
            raise S3Error("MalformedXML")
        rules.append(_rule(node))
    return check_rules(rules)


def _rule(node: etree._Element) -> CorsRule:
    values: dict[str, list[str]] = {name: [] for name in _RULE_ELEMENTS}
    for child in node:
        if not isinstance(child.tag, str):
            continue
        name = s3xml.local_name(child)
        if name not in _RULE_ELEMENTS or len(child):
            raise S3Error("MalformedXML")
        values[name].append((child.text or "").strip())
    if len(values["MaxAgeSeconds"]) > 1 or len(values["ID"]) > 1:
        raise S3Error("MalformedXML")
    return CorsRule(
        allowed_origins=tuple(values["AllowedOrigin"]),
        allowed_methods=tuple(values["AllowedMethod"]),
        allowed_headers=tuple(values["AllowedHeader"]),
        expose_headers=tuple(values["ExposeHeader"]),
        max_age_seconds=_max_age(values["MaxAgeSeconds"]),
        rule_id=values["ID"][0] if values["ID"] else None,
    )


def _max_age(values: list[str]) -> int | None:
    if not values:
        return None
    try:
        return decimal(values[0])
    except NumberError:
        raise S3Error("MalformedXML", "MaxAgeSeconds must be a non-negative integer.") from None


def cors_document(rules: CorsRules) -> etree._Element:
    """GetBucketCors's answer."""
    return E(
        "CORSConfiguration",
        *(
            G(
                "CORSRule",
                [
                    T("ID", rule.rule_id),
                    *(T("AllowedHeader", v) for v in rule.allowed_headers),
                    *(T("AllowedMethod", v) for v in rule.allowed_methods),
                    *(T("AllowedOrigin", v) for v in rule.allowed_origins),
                    *(T("ExposeHeader", v) for v in rule.expose_headers),
                    T("MaxAgeSeconds", rule.max_age_seconds),
                ],
            )
            for rule in rules
        ),
    )
