"""A site's access surface: bucket policy and its status, ACLs of buckets and objects, the
public access block and object ownership controls.

Every change goes through :class:`policy.access_control.AccessControl`, which stores it in the
catalog and forgets its cached copy. The rules S3 applies at the door are applied here:
a public policy or ACL is refused (``AccessDenied``) while the block says so, an ACL other than
the owner's own is refused (``AccessControlListNotSupported``) while object ownership is
``BucketOwnerEnforced``, and ownership cannot become enforced while the bucket's ACL grants
to others (``InvalidBucketAclWithObjectOwnership``).
"""

from __future__ import annotations

from dataclasses import replace

from core.errors import S3Error
from gateway import s3xml
from gateway.acl_xml import acl_document, parse_acl_body, requested_acl
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from policy.access import parse_policy
from policy.access_control import AccessControl, SiteAccess
from policy.bucket_access import (
    OWNERSHIPS,
    BucketAccess,
    Grant,
    Ownership,
    PublicAccessBlock,
    canned_acl,
    canonical_id,
    is_public,
)
from policy.public import is_public_policy

E, T, G = s3xml.element, s3xml.text, s3xml.group
#: S3's limit on a bucket policy document.
MAX_POLICY_BYTES = 20 * 1024
_BLOCK_FIELDS = (
    ("BlockPublicAcls", "block_public_acls"),
    ("IgnorePublicAcls", "ignore_public_acls"),
    ("BlockPublicPolicy", "block_public_policy"),
    ("RestrictPublicBuckets", "restrict_public_buckets"),
)


def _control(req: S3Request) -> AccessControl:
    assert req.services is not None
    return req.services.access


async def _site(req: S3Request) -> SiteAccess:
    await req.backend.head_bucket(req.ctx, req.bucket)
    return await _control(req).site(req.bucket)


# Bucket policy


async def put_bucket_policy(req: S3Request) -> Reply:
    site = await _site(req)
    try:
        body = await req.read_body(MAX_POLICY_BYTES)
    except S3Error as error:
        if error.code != "MalformedXML":
            raise
        raise S3Error("MalformedPolicy", "Policies must be smaller than 20 KB.") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("MalformedPolicy", "Policies must be UTF-8 JSON.") from None
    document = parse_policy(text, kind="resource", bucket=req.bucket)
    if site.access.blocks("block_public_policy") and is_public_policy(document):
        raise S3Error(
            "AccessDenied",
            "The bucket's public access block (BlockPublicPolicy) refuses a public policy.",
        )
    await _control(req).store_site(req.bucket, site.access, text)
    return empty_reply(204)


async def get_bucket_policy(req: S3Request) -> Reply:
    site = await _site(req)
    if site.policy_text is None:
        raise S3Error("NoSuchBucketPolicy", BucketName=req.bucket)
    return Reply(200, [("Content-Type", "application/json")], site.policy_text.encode())


async def delete_bucket_policy(req: S3Request) -> Reply:
    site = await _site(req)
    await _control(req).store_site(req.bucket, site.access, None)
    return empty_reply(204)


async def get_bucket_policy_status(req: S3Request) -> Reply:
    site = await _site(req)
    if site.policy is None:
        raise S3Error("NoSuchBucketPolicy", BucketName=req.bucket)
    public = "true" if is_public_policy(site.policy) else "false"
    return xml_reply(E("PolicyStatus", T("IsPublic", public)))


# Public access block


async def put_public_access_block(req: S3Request) -> Reply:
    site = await _site(req)
    root = s3xml.parse(await req.read_body())
    if s3xml.local_name(root) != "PublicAccessBlockConfiguration":
        raise S3Error("MalformedXML")
    values: dict[str, bool] = {}
    for tag, name in _BLOCK_FIELDS:
        text = (s3xml.child_text(root, tag) or "false").strip().lower()
        if text not in ("true", "false"):
            raise S3Error("MalformedXML", f"{tag} must be true or false.")
        values[name] = text == "true"
    access = replace(site.access, public_access_block=PublicAccessBlock(**values))
    await _control(req).store_site(req.bucket, access, site.policy_text)
    return empty_reply()


async def get_public_access_block(req: S3Request) -> Reply:
    site = await _site(req)
    block = site.access.public_access_block
    if block is None:
        raise S3Error("NoSuchPublicAccessBlockConfiguration", BucketName=req.bucket)
    fields = [T(tag, "true" if getattr(block, name) else "false") for tag, name in _BLOCK_FIELDS]
    return xml_reply(G("PublicAccessBlockConfiguration", fields))


async def delete_public_access_block(req: S3Request) -> Reply:
    site = await _site(req)
    access = replace(site.access, public_access_block=None)
    await _control(req).store_site(req.bucket, access, site.policy_text)
    return empty_reply(204)


# Object ownership


def _ownership(value: str) -> Ownership:
    if value not in OWNERSHIPS:
        raise S3Error("MalformedXML", f"{value!r} is not an ObjectOwnership setting.")
    return value


def _check_enforceable(access: BucketAccess) -> None:
    """Ownership can be enforced only while the bucket ACL grants to its owner alone."""
    owner = canonical_id(access.owner)
    if any(grant.grantee != owner for grant in access.acl):
        raise S3Error("InvalidBucketAclWithObjectOwnership")


async def put_bucket_ownership_controls(req: S3Request) -> Reply:
    site = await _site(req)
    root = s3xml.parse(await req.read_body())
    rules = s3xml.children(root, "Rule")
    if s3xml.local_name(root) != "OwnershipControls" or len(rules) != 1:
        raise S3Error("MalformedXML")
    ownership = _ownership((s3xml.child_text(rules[0], "ObjectOwnership") or "").strip())
    if ownership == "BucketOwnerEnforced":
        _check_enforceable(site.access)
    access = replace(site.access, ownership=ownership)
    await _control(req).store_site(req.bucket, access, site.policy_text)
    return empty_reply()


async def get_bucket_ownership_controls(req: S3Request) -> Reply:
    site = await _site(req)
    if site.access.ownership is None:
        raise S3Error("OwnershipControlsNotFoundError", BucketName=req.bucket)
    rule = G("Rule", [T("ObjectOwnership", site.access.ownership)])
    return xml_reply(E("OwnershipControls", rule))


async def delete_bucket_ownership_controls(req: S3Request) -> Reply:
    site = await _site(req)
    access = replace(site.access, ownership=None)
    await _control(req).store_site(req.bucket, access, site.policy_text)
    return empty_reply(204)


# ACLs


def checked_acl(access: BucketAccess, grants: tuple[Grant, ...], owner: str) -> None:
    """Refuse an ACL the site's settings do not allow (see the module docstring)."""
    if not access.acls_enabled and any(g.grantee != canonical_id(owner) for g in grants):
        raise S3Error(
            "AccessControlListNotSupported",
            "The bucket does not allow ACLs: its object ownership is BucketOwnerEnforced, so "
            "only the owner's own ACL (private, bucket-owner-full-control) is accepted. "
            "Grant access with a bucket policy, or change the ownership controls.",
        )
    if access.blocks("block_public_acls") and is_public(grants):
        raise S3Error(
            "AccessDenied",
            "The bucket's public access block (BlockPublicAcls) refuses a public ACL.",
        )


async def _requested(
    req: S3Request, owner: str, *, on_object: bool, bucket_owner: str
) -> tuple[Grant, ...]:
    """The ACL a Put*Acl asks for: from its headers, else from its body."""
    asked = requested_acl(req.headers, owner, on_object=on_object, bucket_owner=bucket_owner)
    body = await req.read_body()
    if asked is not None:
        if body.strip():
            raise S3Error("InvalidRequest", "Specify an ACL by headers or by body, not both.")
        return asked[0]
    if not body.strip():
        raise S3Error("MalformedACLError")
    return parse_acl_body(body)


async def put_bucket_acl(req: S3Request) -> Reply:
    site = await _site(req)
    owner = site.access.owner
    grants = await _requested(req, owner, on_object=False, bucket_owner=owner)
    checked_acl(site.access, grants, owner)
    access = replace(site.access, acl=grants)
    await _control(req).store_site(req.bucket, access, site.policy_text)
    return empty_reply()


async def get_bucket_acl(req: S3Request) -> Reply:
    site = await _site(req)
    return xml_reply(acl_document(site.access.owner, site.access.acl))


async def put_object_acl(req: S3Request) -> Reply:
    site = await _site(req)
    await req.backend.head_object(req.ctx, req.bucket, req.key)
    owner = site.access.owner
    grants = await _requested(req, owner, on_object=True, bucket_owner=owner)
    checked_acl(site.access, grants, owner)
    private = grants == canned_acl("private", owner)
    await _control(req).set_object_acl(req.bucket, req.key, None if private else grants)
    return empty_reply()


async def get_object_acl(req: S3Request) -> Reply:
    site = await _site(req)
    await req.backend.head_object(req.ctx, req.bucket, req.key)
    owner = site.access.owner
    stored = (
        await _control(req).object_acl(req.bucket, req.key) if site.access.acls_enabled else None
    )
    return xml_reply(acl_document(owner, stored or canned_acl("private", owner)))


# The ACL an object write asks for (PutObject, CopyObject, CreateMultipartUpload)


async def requested_object_acl(req: S3Request) -> tuple[bool, tuple[Grant, ...] | None]:
    """Check the ACL headers of an object write before it starts; returns whether the site
    keeps object ACLs and the ACL to keep once the write succeeds (None: private)."""
    site = await _control(req).site(req.bucket)
    owner = site.access.owner
    asked = requested_acl(req.headers, owner, on_object=True, bucket_owner=owner)
    if asked is None:
        return site.access.acls_enabled, None
    grants = asked[0]
    checked_acl(site.access, grants, owner)
    private = grants == canned_acl("private", owner)
    return site.access.acls_enabled, None if private else grants


async def keep_object_acl(req: S3Request, change: tuple[bool, tuple[Grant, ...] | None]) -> None:
    """After a write succeeded: the object's ACL becomes the one it asked for (a write
    without ACL headers makes the object private again)."""
    enabled, grants = change
    if enabled:
        await _control(req).set_object_acl(req.bucket, req.key, grants)


async def forget_object_acl(req: S3Request, key: str) -> None:
    """A deleted object's ACL goes with it (where the site keeps object ACLs)."""
    site = await _control(req).site(req.bucket)
    if site.access.acls_enabled:
        await _control(req).set_object_acl(req.bucket, key, None)
