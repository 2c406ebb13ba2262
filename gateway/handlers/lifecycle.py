"""Bucket lifecycle: S3 tools set and read a site's retention window (Expiration Days).

The only rule the gateway can honour is "expire artifacts after N days", stored as the
site's ``retention_days`` policy override (retention then keeps pinned artifacts, the
``retention_keep_last`` newest and the newest successful one regardless). A configuration
holds exactly one such rule: ``Status`` Enabled, ``Expiration`` with ``Days``, and an empty
filter or the prefix ``builds/``. Anything else (transitions, noncurrent-version rules,
tags, size filters, other prefixes, Date or ExpiredObjectDeleteMarker expirations, several
rules) is refused with a message that names it, so a tool never believes a rule is active
that is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from core.errors import S3Error
from core.numbers import NumberError, decimal
from gateway import s3xml
from gateway.handlers.common import site_policies
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from policy.policies import MAX_RETENTION_DAYS

E, T, G = s3xml.element, s3xml.text, s3xml.group
#: The prefix under which build artifacts live; the one non-empty filter accepted.
ARTIFACT_PREFIX = "builds/"
DEFAULT_RULE_ID = "pagewright-retention"
_UNSUPPORTED_RULE_PARTS = {
    "Transition": "transitions",
    "Transitions": "transitions",
    "NoncurrentVersionTransition": "noncurrent-version transitions",
    "NoncurrentVersionExpiration": "noncurrent-version expirations",
    "AbortIncompleteMultipartUpload": "aborting incomplete multipart uploads",
}


@dataclass(frozen=True)
class ExpirationRule:
    """The one lifecycle rule supported: artifacts expire ``days`` days after creation."""

    days: int
    rule_id: str = DEFAULT_RULE_ID
    prefix: str = ""


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname


def _elements(node: etree._Element) -> list[etree._Element]:
    return [c for c in node if isinstance(c.tag, str)]


def _child(node: etree._Element, tag: str) -> etree._Element | None:
    return next((c for c in _elements(node) if _local(c) == tag), None)


def _unsupported(what: str) -> S3Error:
    return S3Error(
        "NotImplemented",
        f"This gateway's lifecycle supports only <Expiration><Days>N</Days></Expiration> on "
        f"build artifacts (no filter, or prefix {ARTIFACT_PREFIX!r}); {what} is not supported.",
    )


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidRequest", message)


def _prefix(rule: etree._Element) -> str:
    """The rule's prefix (legacy ``Prefix`` or ``Filter``); other filters are refused."""
    legacy = _child(rule, "Prefix")
    prefix = (legacy.text or "") if legacy is not None else ""
    filter_node = _child(rule, "Filter")
    if filter_node is not None:
        for node in _elements(filter_node):
            name = _local(node)
            if name == "Prefix":
                prefix = node.text or ""
            elif name == "And":
                raise _unsupported("a combined (And) filter")
            elif name == "Tag":
                raise _unsupported("a tag filter")
            else:
                raise _unsupported(f"a {name} filter")
    if prefix not in ("", ARTIFACT_PREFIX):
        raise _unsupported(f"the prefix {prefix!r}")
    return prefix


def parse_lifecycle(body: bytes) -> ExpirationRule:
    """A ``LifecycleConfiguration`` document -> its one supported rule.

    ``MalformedXML`` for a document that is not a lifecycle configuration or a rule without
    Status; ``InvalidRequest`` for a disabled rule, several rules or a bad day count;
    ``NotImplemented`` for features the gateway cannot honour.
    """
    root = s3xml.parse(body)
    if _local(root) != "LifecycleConfiguration":
        raise S3Error("MalformedXML")
    rules = [n for n in _elements(root) if _local(n) == "Rule"]
    if not rules:
        raise S3Error("MalformedXML", "A lifecycle configuration needs at least one Rule.")
    if len(rules) > 1:
        raise _invalid("This gateway supports one lifecycle rule per site (Expiration Days).")
    rule = rules[0]
    for node in _elements(rule):
        if _local(node) in _UNSUPPORTED_RULE_PARTS:
            raise _unsupported(_UNSUPPORTED_RULE_PARTS[_local(node)])
    status = _child(rule, "Status")
    if status is None:
        raise S3Error("MalformedXML", "A lifecycle rule needs a Status.")
    if (status.text or "").strip() != "Enabled":
        raise _invalid(
            "Only an Enabled rule can be stored; remove the configuration "
            "(DeleteBucketLifecycle) to turn retention by age off."
        )
    expiration = _child(rule, "Expiration")
    if expiration is None:
        raise _unsupported("a rule without Expiration")
    for node in _elements(expiration):
        if _local(node) != "Days":
            raise _unsupported(f"Expiration {_local(node)}")
    days_node = _child(expiration, "Days")
    days_text = "" if days_node is None else (days_node.text or "").strip()
    try:
        days = decimal(days_text, low=1, high=MAX_RETENTION_DAYS)
    except NumberError:
        raise _invalid(
            f"Expiration Days must be a whole number of days from 1 to {MAX_RETENTION_DAYS}."
        ) from None
    rule_id = _child(rule, "ID")
    return ExpirationRule(
        days=days,
        rule_id=(rule_id.text or "").strip() or DEFAULT_RULE_ID
        if rule_id is not None
        else DEFAULT_RULE_ID,
        prefix=_prefix(rule),
    )


def render_lifecycle(rule: ExpirationRule) -> etree._Element:
    """The ``LifecycleConfiguration`` S3 answers for ``rule``."""
    return E(
        "LifecycleConfiguration",
        G(
            "Rule",
            [
                T("ID", rule.rule_id),
                G("Filter", [T("Prefix", rule.prefix)]),
                T("Status", "Enabled"),
                G("Expiration", [T("Days", rule.days)]),
            ],
        ),
    )


async def get_bucket_lifecycle(req: S3Request) -> Reply:
    """GetBucketLifecycleConfiguration: the stored rule, or NoSuchLifecycleConfiguration."""
    policies = await site_policies(req)
    days = (await policies.overrides(req.bucket)).get("retention_days")
    if days is None:
        raise S3Error("NoSuchLifecycleConfiguration", BucketName=req.bucket)
    return xml_reply(render_lifecycle(ExpirationRule(days=int(days), prefix=ARTIFACT_PREFIX)))


async def put_bucket_lifecycle(req: S3Request) -> Reply:
    """PutBucketLifecycleConfiguration: store Expiration Days as ``retention_days``."""
    policies = await site_policies(req)
    rule = parse_lifecycle(await req.read_body())
    overrides = await policies.overrides(req.bucket)
    overrides["retention_days"] = rule.days
    await policies.set_overrides(req.bucket, overrides)
    return empty_reply()


async def delete_bucket_lifecycle(req: S3Request) -> Reply:
    """DeleteBucketLifecycle: drop the ``retention_days`` override (204 even if none)."""
    policies = await site_policies(req)
    overrides = await policies.overrides(req.bucket)
    if overrides.pop("retention_days", None) is not None:
        await policies.set_overrides(req.bucket, overrides)
    return empty_reply(204)
