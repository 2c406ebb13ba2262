"""S3's ``LifecycleConfiguration`` XML: parsed into ``policy.lifecycle`` rules, and rendered.

:func:`parse_lifecycle` accepts documents with or without S3's namespace. What does not fit
S3's schema is ``MalformedXML`` (an unknown or repeated element, a missing ``Status``, a
``Status`` other than Enabled/Disabled, a ``Filter`` with more than one predicate, a rule
with both the legacy ``Prefix`` and a ``Filter`` or with neither, a non-number where a number
goes, a ``Date`` that is not ISO 8601); ``Transition`` and ``NoncurrentVersionTransition``
are ``InvalidStorageClass`` (this gateway has no storage classes to move objects to); the
rest is checked by :func:`policy.lifecycle.check_rules` (``InvalidArgument``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree

from core.errors import S3Error
from core.numbers import INT64_MAX, NumberError, decimal
from gateway import s3xml
from policy.lifecycle import (
    MAX_DAYS,
    Expiration,
    LifecycleFilter,
    LifecycleRule,
    LifecycleRules,
    NoncurrentExpiration,
    check_rules,
)
from policy.tags import TagSet, add_tag

E, T, G = s3xml.element, s3xml.text, s3xml.group
_RULE_PARTS = frozenset(
    {
        "ID",
        "Status",
        "Filter",
        "Prefix",
        "Expiration",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
)
_TRANSITIONS = ("Transition", "NoncurrentVersionTransition")


def _malformed(message: str) -> S3Error:
    return S3Error("MalformedXML", message)


def _elements(node: etree._Element) -> list[etree._Element]:
    return [c for c in node if isinstance(c.tag, str)]


def _parts(node: etree._Element, allowed: frozenset[str], where: str) -> dict[str, etree._Element]:
    """``node``'s child elements by name: each at most once, each one of ``allowed``."""
    found: dict[str, etree._Element] = {}
    for child in _elements(node):
        name = s3xml.local_name(child)
        if name not in allowed:
            raise _malformed(f"{where} cannot hold <{name}>.")
        if name in found:
            raise _malformed(f"{where} holds <{name}> more than once.")
        found[name] = child
    return found


def _text(node: etree._Element) -> str:
    return (node.text or "").strip()


def _number(node: etree._Element | None, name: str, *, high: int = MAX_DAYS) -> int | None:
    """A whole number element: ``MalformedXML`` unless digits (with an optional ``-``);
    ``InvalidArgument`` for one out of range (zero and negatives included)."""
    if node is None:
        return None
    text = _text(node)
    digits = text[1:] if text.startswith("-") else text
    try:
        value = decimal(digits, low=0, high=high)
    except NumberError as error:
        if not error.out_of_range:
            raise _malformed(f"<{name}> must be a whole number.") from None
        raise S3Error(
            "InvalidArgument", f"'{name}' is out of range", ArgumentName=name, ArgumentValue=text
        ) from None
    return -value if text.startswith("-") else value


def _positive(node: etree._Element | None, name: str, action: str) -> int | None:
    value = _number(node, name)
    if value is not None and value < 1:
        raise S3Error("InvalidArgument", f"'{name}' for {action} action must be a positive integer")
    return value


def _date(node: etree._Element | None) -> datetime | None:
    if node is None:
        return None
    text = _text(node)
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise _malformed("<Date> must be an ISO 8601 date and time.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _tag(node: etree._Element, tags: TagSet) -> None:
    parts = _parts(node, frozenset({"Key", "Value"}), "A Tag")
    if "Key" not in parts:
        raise _malformed("A Tag needs a Key.")
    value = parts.get("Value")
    add_tag(tags, parts["Key"].text or "", "" if value is None else value.text or "")


def _predicates(node: etree._Element, where: str, allowed: frozenset[str]) -> LifecycleFilter:
    parts: dict[str, etree._Element] = {}
    tags: TagSet = {}
    for child in _elements(node):
        name = s3xml.local_name(child)
        if name not in allowed:
            raise _malformed(f"{where} cannot hold <{name}>.")
        if name == "Tag":
            _tag(child, tags)
            continue
        if name in parts:
            raise _malformed(f"{where} holds <{name}> more than once.")
        parts[name] = child
    prefix = parts.get("Prefix")
    return LifecycleFilter(
        prefix="" if prefix is None else prefix.text or "",
        tags=tuple(tags.items()),
        size_greater_than=_number(
            parts.get("ObjectSizeGreaterThan"), "ObjectSizeGreaterThan", high=INT64_MAX
        ),
        size_less_than=_number(
            parts.get("ObjectSizeLessThan"), "ObjectSizeLessThan", high=INT64_MAX
        ),
    )


_SINGLE = frozenset({"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"})
_AND = frozenset({"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})


def _filter(rule: dict[str, etree._Element]) -> LifecycleFilter:
    legacy, node = rule.get("Prefix"), rule.get("Filter")
    if legacy is not None and node is not None:
        raise _malformed("A rule holds either a Filter or a Prefix, not both.")
    if legacy is not None:
        return LifecycleFilter(prefix=legacy.text or "", form="legacy")
    if node is None:
        raise _malformed("A rule needs a Filter (or the legacy Prefix).")
    predicates = _elements(node)
    if len(predicates) > 1:
        raise _malformed("A Filter holds exactly one of Prefix, Tag, ObjectSize... or And.")
    if predicates and s3xml.local_name(predicates[0]) == "And":
        if not _elements(predicates[0]):
            raise _malformed("An And holds at least one predicate.")
        combined = _predicates(predicates[0], "And", _AND)
        return LifecycleFilter(
            combined.prefix,
            combined.tags,
            combined.size_greater_than,
            combined.size_less_than,
            "and",
        )
    return _predicates(node, "A Filter", _SINGLE)


def _expiration(node: etree._Element | None) -> Expiration | None:
    if node is None:
        return None
    parts = _parts(node, frozenset({"Days", "Date", "ExpiredObjectDeleteMarker"}), "Expiration")
    marker = parts.get("ExpiredObjectDeleteMarker")
    flag = None
    if marker is not None:
        if _text(marker) not in ("true", "false"):
            raise _malformed("<ExpiredObjectDeleteMarker> must be true or false.")
        flag = _text(marker) == "true"
    return Expiration(
        days=_positive(parts.get("Days"), "Days", "Expiration"),
        date=_date(parts.get("Date")),
        expired_object_delete_marker=flag,
    )


def _noncurrent(node: etree._Element | None) -> NoncurrentExpiration | None:
    if node is None:
        return None
    parts = _parts(
        node,
        frozenset({"NoncurrentDays", "NewerNoncurrentVersions"}),
        "NoncurrentVersionExpiration",
    )
    days = _positive(parts.get("NoncurrentDays"), "NoncurrentDays", "NoncurrentVersionExpiration")
    if days is None:
        raise _malformed("NoncurrentVersionExpiration needs NoncurrentDays.")
    newer = _number(parts.get("NewerNoncurrentVersions"), "NewerNoncurrentVersions")
    return NoncurrentExpiration(days, newer)


def _abort_days(node: etree._Element | None) -> int | None:
    if node is None:
        return None
    parts = _parts(node, frozenset({"DaysAfterInitiation"}), "AbortIncompleteMultipartUpload")
    action = "AbortIncompleteMultipartUpload"
    days = _positive(parts.get("DaysAfterInitiation"), "DaysAfterInitiation", action)
    if days is None:
        raise _malformed("AbortIncompleteMultipartUpload needs DaysAfterInitiation.")
    return days


def _rule(node: etree._Element) -> LifecycleRule:
    for child in _elements(node):
        if s3xml.local_name(child) in _TRANSITIONS:
            raise S3Error(
                "InvalidStorageClass",
                f"This gateway has no storage classes, so a lifecycle rule cannot move objects "
                f"between them: <{s3xml.local_name(child)}> is not supported.",
            )
    parts = _parts(node, _RULE_PARTS, "A Rule")
    status = parts.get("Status")
    if status is None or _text(status) not in ("Enabled", "Disabled"):
        raise _malformed("A rule needs a Status of Enabled or Disabled.")
    rule_id = parts.get("ID")
    return LifecycleRule(
        rule_id=None if rule_id is None or not rule_id.text else rule_id.text,
        enabled=_text(status) == "Enabled",
        filter=_filter(parts),
        expiration=_expiration(parts.get("Expiration")),
        noncurrent_expiration=_noncurrent(parts.get("NoncurrentVersionExpiration")),
        abort_after_days=_abort_days(parts.get("AbortIncompleteMultipartUpload")),
    )


def parse_lifecycle(body: bytes) -> LifecycleRules:
    """A ``LifecycleConfiguration`` document -> its checked rules (see the module docstring)."""
    root = s3xml.parse(body)
    if s3xml.local_name(root) != "LifecycleConfiguration":
        raise _malformed("The document is not a LifecycleConfiguration.")
    rules = []
    for node in _elements(root):
        if s3xml.local_name(node) != "Rule":
            raise _malformed(f"A LifecycleConfiguration cannot hold <{s3xml.local_name(node)}>.")
        rules.append(_rule(node))
    return check_rules(rules)


# Rendering


def _tag_element(name: str, value: str) -> etree._Element:
    return G("Tag", [T("Key", name), T("Value", value)])


def _render_filter(flt: LifecycleFilter) -> etree._Element:
    if flt.form == "legacy":
        return T("Prefix", flt.prefix)
    predicates = [
        T("Prefix", flt.prefix) if flt.prefix or flt.form == "and" else None,
        *(_tag_element(name, value) for name, value in flt.tags),
        T("ObjectSizeGreaterThan", flt.size_greater_than),
        T("ObjectSizeLessThan", flt.size_less_than),
    ]
    present = [p for p in predicates if p is not None]
    if flt.form == "and":
        return G("Filter", [G("And", present)])
    if not present and flt.prefix == "":
        return G("Filter", [T("Prefix", "")])
    return G("Filter", present)


def _render_rule(rule: LifecycleRule) -> etree._Element:
    expiration, noncurrent = rule.expiration, rule.noncurrent_expiration
    return G(
        "Rule",
        [
            T("ID", rule.rule_id),
            _render_filter(rule.filter),
            T("Status", "Enabled" if rule.enabled else "Disabled"),
            None
            if expiration is None
            else G(
                "Expiration",
                [
                    T("Date", expiration.date),
                    T("Days", expiration.days),
                    T("ExpiredObjectDeleteMarker", expiration.expired_object_delete_marker),
                ],
            ),
            None
            if noncurrent is None
            else G(
                "NoncurrentVersionExpiration",
                [
                    T("NoncurrentDays", noncurrent.noncurrent_days),
                    T("NewerNoncurrentVersions", noncurrent.newer_noncurrent_versions),
                ],
            ),
            None
            if rule.abort_after_days is None
            else G(
                "AbortIncompleteMultipartUpload", [T("DaysAfterInitiation", rule.abort_after_days)]
            ),
        ],
    )


def render_lifecycle(rules: Sequence[LifecycleRule]) -> etree._Element:
    """The ``LifecycleConfiguration`` S3 answers for ``rules``."""
    return E("LifecycleConfiguration", *(_render_rule(rule) for rule in rules))
