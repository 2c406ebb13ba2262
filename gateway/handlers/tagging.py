"""Tagging: the tag sets of objects and buckets (Get/Put/DeleteObjectTagging,
Get/Put/DeleteBucketTagging); ``gateway.handlers.object_tags`` has the tags of object
writes and the tag count of reads.

Tags are catalog state (:class:`policy.model.Catalog`), shared by every replica: an
object's tags live on its catalog row, so they go with the object (a delete removes them, a
new object under the key has only the tags its own write asked for). The bucket and object
must exist in the backend; an object the catalog has no row of (a catalog that missed a
write, until ``reindex``) has no tags, and tagging it is ``NoSuchKey``.

Each handler's permission is its Operation's IAM action, decided before it runs
(``gateway.access``); DeleteBucketTagging is ``s3:PutBucketTagging`` as in AWS.
"""

from __future__ import annotations

from core.errors import S3Error
from gateway.handlers.object_tags import catalog_of as _catalog
from gateway.handlers.versions import require_latest
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from gateway.tagging import MAX_TAGGING_BODY, parse_tagging, tagging_document

# Objects


async def get_object_tagging(req: S3Request) -> Reply:
    await require_latest(req)
    info = await req.backend.head_object(req.ctx, req.bucket, req.key)
    stored = await _catalog(req).object_tags(req.bucket, req.key)
    tags = stored[1] if stored is not None and stored[0] == info.etag else {}
    return xml_reply(tagging_document(tags))


async def put_object_tagging(req: S3Request) -> Reply:
    await require_latest(req)
    tags = parse_tagging(await req.read_body(MAX_TAGGING_BODY), "object")
    await _set_object_tags(req, tags)
    return empty_reply()


async def delete_object_tagging(req: S3Request) -> Reply:
    await require_latest(req)
    await _set_object_tags(req, {})
    return empty_reply(204)


async def _set_object_tags(req: S3Request, tags: dict[str, str]) -> None:
    await req.backend.head_object(req.ctx, req.bucket, req.key)
    if not await _catalog(req).set_object_tags(req.bucket, req.key, tags):
        raise S3Error("NoSuchKey", Key=req.key)


# Buckets


async def get_bucket_tagging(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    tags = await _catalog(req).bucket_tags(req.bucket)
    if not tags:
        raise S3Error("NoSuchTagSet", BucketName=req.bucket)
    return xml_reply(tagging_document(tags))


async def put_bucket_tagging(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    tags = parse_tagging(await req.read_body(MAX_TAGGING_BODY), "bucket")
    await _catalog(req).set_bucket_tags(req.bucket, tags or None)
    return empty_reply(204)


async def delete_bucket_tagging(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    await _catalog(req).set_bucket_tags(req.bucket, None)
    return empty_reply(204)
