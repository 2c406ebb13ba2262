"""ACLs on the wire: read from a canned ``x-amz-acl``, ``x-amz-grant-*`` headers or an
``AccessControlPolicy`` body, and written as ``AccessControlPolicy`` XML.

Grantees are canonical users (``id="..."``; a principal's id is
:func:`policy.bucket_access.canonical_id` of its name, shown by Get*Acl and ListBuckets) and
S3's two groups. Grants by e-mail address cannot be resolved here (S3 only resolves them in a
few old regions): ``UnresolvableGrantByEmailAddress``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, cast

from lxml import etree

from core.errors import S3Error
from gateway import s3xml
from policy.bucket_access import (
    BUCKET_CANNED,
    GROUPS,
    OBJECT_CANNED,
    Grant,
    GranteeKind,
    Permission,
    canned_acl,
    canonical_id,
)

_GRANT_HEADERS: Final[dict[str, Permission]] = {
    "x-amz-grant-full-control": "FULL_CONTROL",
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
}
_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"([^"]*)"\s*(?:,|$)', re.IGNORECASE)
_CANONICAL = re.compile(r"[0-9a-f]{64}")


def _grantee(kind: str, value: str) -> tuple[GranteeKind, str]:
    kind = kind.lower()
    if kind == "emailaddress":
        raise S3Error("UnresolvableGrantByEmailAddress", EmailAddress=value)
    if kind == "uri":
        if value not in GROUPS:
            raise S3Error("InvalidArgument", f"{value!r} is not a group S3 knows.")
        return "Group", value
    if not _CANONICAL.fullmatch(value):
        raise S3Error("InvalidArgument", f"{value!r} is not a canonical user id.")
    return "CanonicalUser", value


def _header_grants(headers: Mapping[str, str]) -> tuple[Grant, ...]:
    grants: list[Grant] = []
    for header, permission in _GRANT_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        position = 0
        while position < len(value):
            match = _GRANTEE.match(value, position)
            if match is None:
                raise S3Error(
                    "InvalidArgument", f"{header} is not a list of grantees.", ArgumentName=header
                )
            kind, grantee = _grantee(match.group(1), match.group(2))
            grants.append(Grant(kind, grantee, permission))
            position = match.end()
    return tuple(grants)


def requested_acl(
    headers: Mapping[str, str], owner: str, *, on_object: bool, bucket_owner: str | None = None
) -> tuple[tuple[Grant, ...], str | None] | None:
    """The ACL a request's headers ask for, and its canned name (None for explicit grants);
    None when the headers name no ACL. ``owner`` is the resource's owner."""
    canned = headers.get("x-amz-acl")
    grants = _header_grants(headers)
    if canned is not None and grants:
        raise S3Error(
            "InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed"
        )
    if canned is not None:
        allowed = OBJECT_CANNED if on_object else BUCKET_CANNED
        if canned not in allowed:
            raise S3Error("InvalidArgument", ArgumentName="x-amz-acl", ArgumentValue=canned)
        return canned_acl(canned, owner, bucket_owner), canned
    return (grants, None) if grants else None


def parse_acl_body(body: bytes) -> tuple[Grant, ...]:
    """The grants of an ``AccessControlPolicy`` document; ``MalformedACLError`` otherwise."""
    root = s3xml.parse(body)
    if s3xml.local_name(root) != "AccessControlPolicy":
        raise S3Error("MalformedACLError")
    grants: list[Grant] = []
    for listing in s3xml.children(root, "AccessControlList"):
        for node in s3xml.children(listing, "Grant"):
            permission = s3xml.child_text(node, "Permission") or ""
            grantees = s3xml.children(node, "Grantee")
            if permission not in _GRANT_HEADERS.values() or len(grantees) != 1:
                raise S3Error("MalformedACLError")
            grantee = grantees[0]
            kind = grantee.get(f"{{{s3xml.XSI}}}type", "")
            if kind == "CanonicalUser":
                found = _grantee("id", s3xml.child_text(grantee, "ID") or "")
            elif kind == "Group":
                found = _grantee("uri", s3xml.child_text(grantee, "URI") or "")
            elif kind == "AmazonCustomerByEmail":
                found = _grantee("emailAddress", s3xml.child_text(grantee, "EmailAddress") or "")
            else:
                raise S3Error("MalformedACLError")
            grants.append(Grant(found[0], found[1], cast(Permission, permission)))
    return tuple(grants)


def acl_document(owner: str, grants: tuple[Grant, ...]) -> etree._Element:
    """``AccessControlPolicy`` of ``grants`` on a resource owned by ``owner``."""
    entries = []
    for grant in grants:
        node = etree.Element("Grantee", nsmap={"xsi": s3xml.XSI})
        node.set(f"{{{s3xml.XSI}}}type", grant.kind)
        if grant.kind == "Group":
            node.append(s3xml.text("URI", grant.grantee))
        else:
            node.append(s3xml.text("ID", grant.grantee))
            if grant.display:
                node.append(s3xml.text("DisplayName", grant.display))
        entries.append(s3xml.group("Grant", [node, s3xml.text("Permission", grant.permission)]))
    return s3xml.element(
        "AccessControlPolicy",
        owner_element(owner),
        s3xml.group("AccessControlList", entries),
    )


def owner_element(owner: str, tag: str = "Owner") -> etree._Element:
    """``<Owner><ID/><DisplayName/></Owner>`` of the principal named ``owner``."""
    return s3xml.group(
        tag, [s3xml.text("ID", canonical_id(owner)), s3xml.text("DisplayName", owner)]
    )
