"""Bucket operations: list, create, head, delete, location, versioning, ACLs."""

from __future__ import annotations

from lxml import etree

from core.errors import S3Error
from gateway import s3xml
from gateway.handlers.common import (
    owner_element,
    owner_id,
    require_private_acl,
    validate_bucket_name,
)
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply

E, T, G = s3xml.element, s3xml.text, s3xml.group


async def list_buckets(req: S3Request) -> Reply:
    buckets = await req.backend.list_buckets(req.ctx)
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
    require_private_acl(req.headers)
    constraint = s3xml.parse_location_constraint(await req.read_body())
    if constraint not in ("", req.settings.region):
        raise S3Error(
            "InvalidLocationConstraint",
            f"The location constraint {constraint!r} is not this gateway's region "
            f"{req.settings.region!r}.",
            LocationConstraint=constraint,
        )
    await req.backend.create_bucket(req.ctx, req.bucket)
    return empty_reply(headers=[("Location", f"/{req.bucket}")])


async def head_bucket(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    return empty_reply(headers=[("x-amz-bucket-region", req.settings.region)])


async def delete_bucket(req: S3Request) -> Reply:
    await req.backend.delete_bucket(req.ctx, req.bucket)
    return empty_reply(204)


async def get_bucket_location(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    region = req.settings.region
    # S3 answers an empty constraint for us-east-1, and clients expect exactly that.
    node = E("LocationConstraint")
    node.text = None if region == "us-east-1" else region
    return xml_reply(node)


async def get_bucket_versioning(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    return xml_reply(E("VersioningConfiguration"))


def acl_policy(req: S3Request) -> etree._Element:
    """The only ACL there is: the owner holds FULL_CONTROL."""
    grantee = etree.Element("Grantee", nsmap={"xsi": s3xml.XSI})
    grantee.set(f"{{{s3xml.XSI}}}type", "CanonicalUser")
    grantee.append(T("ID", owner_id(req.ctx.principal)))
    grantee.append(T("DisplayName", req.ctx.principal))
    grant = G("Grant", [grantee, T("Permission", "FULL_CONTROL")])
    return E("AccessControlPolicy", owner_element(req), G("AccessControlList", [grant]))


async def get_bucket_acl(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    return xml_reply(acl_policy(req))


async def put_acl(req: S3Request) -> Reply:
    """PutBucketAcl / PutObjectAcl: accepted only when they leave the ACL private."""
    require_private_acl(req.headers)
    body = await req.read_body()
    if body.strip() and not s3xml.acl_is_private(body, owner_id(req.ctx.principal)):
        require_private_acl({"x-amz-acl": "custom"})
    if req.address.key is None:
        await req.backend.head_bucket(req.ctx, req.bucket)
    else:
        await req.backend.head_object(req.ctx, req.bucket, req.key)
    return empty_reply()


async def get_object_acl(req: S3Request) -> Reply:
    await req.backend.head_object(req.ctx, req.bucket, req.key)
    return xml_reply(acl_policy(req))
