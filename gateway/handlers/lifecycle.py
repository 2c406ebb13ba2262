"""Bucket lifecycle: PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration and
DeleteBucketLifecycle.

The document is parsed and checked by ``gateway.lifecycle_xml`` (S3's ``MalformedXML``,
``InvalidArgument``, and ``InvalidStorageClass`` for transitions) and stored whole through
:class:`policy.lifecycle_store.LifecycleStore`: the rules in the catalog (and the site's
state record), except the rule ``pagewright-retention``, which is the site's artifact
retention window (``retention_days``). The background job ``lifecycle``
(``policy.lifecycle_job``) executes the rules; retention executes the window.
"""

from __future__ import annotations

from core.errors import S3Error
from gateway.lifecycle_xml import parse_lifecycle, render_lifecycle
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from policy.lifecycle_store import LifecycleStore


def _store(req: S3Request) -> LifecycleStore:
    if req.services is None or req.services.catalog is None:
        raise S3Error(
            "NotImplemented",
            f"{req.operation.value} needs the site policy store, which is not configured.",
        )
    return LifecycleStore(req.services.catalog, req.services.policies)


async def get_bucket_lifecycle(req: S3Request) -> Reply:
    """GetBucketLifecycleConfiguration: the configuration, or NoSuchLifecycleConfiguration."""
    store = _store(req)
    await req.backend.head_bucket(req.ctx, req.bucket)
    rules = await store.configuration(req.bucket)
    if rules is None:
        raise S3Error("NoSuchLifecycleConfiguration", BucketName=req.bucket)
    return xml_reply(render_lifecycle(rules))


async def put_bucket_lifecycle(req: S3Request) -> Reply:
    """PutBucketLifecycleConfiguration: replace the whole configuration."""
    store = _store(req)
    await req.backend.head_bucket(req.ctx, req.bucket)
    rules = parse_lifecycle(await req.read_body())
    await store.store(req.bucket, rules)
    return empty_reply()


async def delete_bucket_lifecycle(req: S3Request) -> Reply:
    """DeleteBucketLifecycle: remove every rule and the retention window (204 even if none)."""
    store = _store(req)
    await req.backend.head_bucket(req.ctx, req.bucket)
    await store.store(req.bucket, None)
    return empty_reply(204)
