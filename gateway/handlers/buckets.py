"""Bucket operations: list, create, head, delete, location (versioning: handlers.versions)."""

from __future__ import annotations

from core.errors import S3Error
from gateway import s3xml
from gateway.acl_xml import requested_acl
from gateway.handlers.access import checked_acl
from gateway.handlers.common import owner_element, validate_bucket_name
from gateway.handlers.object_lock import enable_at_creation
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from policy.bucket_access import (
    OWNERSHIPS,
    BucketAccess,
    PublicAccessBlock,
    canned_acl,
)
from policy.principals import Role

E, T, G = s3xml.element, s3xml.text, s3xml.group


async def list_buckets(req: S3Request) -> Reply:
    """Every bucket for root; for anyone else, the buckets it may list (a site's readers
    see the site, and no one learns the names of sites closed to them)."""
    buckets = await req.backend.list_buckets(req.ctx)
    if req.access is not None and not req.access.principal.is_root:
        buckets = [b for b in buckets if await req.access.permits("s3:ListBucket", b.name)]
    entries = [
        G(
            "Bucket",
            [
                T("Name", b.name),
                T("CreationDate", b.created),
                T("BucketRegion", req.settings.region),
            ],
        )
        for b in sorted(buckets, key=lambda b: b.name)
    ]
    return xml_reply(E("ListAllMyBucketsResult", owner_element(req), G("Buckets", entries)))


async def create_bucket(req: S3Request) -> Reply:
    validate_bucket_name(req.bucket)
    access = new_site_access(req)
    constraint = s3xml.parse_location_constraint(await req.read_body())
    if constraint not in ("", req.settings.region):
        raise S3Error(
            "InvalidLocationConstraint",
            f"The location constraint {constraint!r} is not this gateway's region "
            f"{req.settings.region!r}.",
            LocationConstraint=constraint,
        )
    await req.backend.create_bucket(req.ctx, req.bucket)
    try:
        await enable_at_creation(req)
    except S3Error:
        # Object lock asked for on a backend without versions (501): no bucket either.
        await req.backend.delete_bucket(req.ctx, req.bucket)
        raise
    assert req.services is not None
    await req.services.access.store_site(req.bucket, access, None)
    identities = req.services.identities
    if identities is not None and req.access is not None and req.access.principal.kind == "user":
        # A user who creates a site owns it (its policy, ACLs, deleting it).
        await identities.grant(req.bucket, req.access.principal.name, Role.owner)
        req.services.access.forget(user=req.access.principal.name)
    return empty_reply(headers=[("Location", f"/{req.bucket}")])


def new_site_access(req: S3Request) -> BucketAccess:
    """A new site's access settings: AWS's defaults (ownership enforced, public access
    blocked), the ACL and ownership the request asks for, its creator as owner."""
    owner = req.ctx.principal
    ownership = req.headers.get("x-amz-object-ownership", "BucketOwnerEnforced")
    if ownership not in OWNERSHIPS:
        raise S3Error(
            "InvalidArgument",
            f"{ownership!r} is not an ObjectOwnership setting.",
            ArgumentName="x-amz-object-ownership",
            ArgumentValue=ownership,
        )
    asked = requested_acl(req.headers, owner, on_object=False, bucket_owner=owner)
    grants = canned_acl("private", owner) if asked is None else asked[0]
    access = BucketAccess(owner, grants, PublicAccessBlock(), ownership)
    if ownership == "BucketOwnerEnforced" and grants != canned_acl("private", owner):
        raise S3Error("InvalidBucketAclWithObjectOwnership")
    checked_acl(access, grants, owner)
    return access


async def head_bucket(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    return empty_reply(headers=[("x-amz-bucket-region", req.settings.region)])


async def delete_bucket(req: S3Request) -> Reply:
    await req.backend.delete_bucket(req.ctx, req.bucket)
    assert req.services is not None
    await req.services.access.remove_site(req.bucket)  # its CORS rules too
    if req.services.cors is not None:
        req.services.cors.forget(req.bucket)
    return empty_reply(204)


async def get_bucket_location(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    region = req.settings.region
    # S3 answers an empty constraint for us-east-1, and clients expect exactly that.
    node = E("LocationConstraint")
    node.text = None if region == "us-east-1" else region
    return xml_reply(node)
