"""Bucket CORS configuration: PutBucketCors, GetBucketCors, DeleteBucketCors.

The rules are stored through :class:`policy.cors_settings.CorsSettings` (the catalog, and the
site's state record); preflights and the CORS headers of replies read them there
(``gateway.cors``).
"""

from __future__ import annotations

from core.errors import S3Error
from gateway.cors_xml import cors_document, parse_cors
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from policy.cors_settings import CorsSettings

#: A PutBucketCors body larger than this is refused (100 long rules fit well within it).
MAX_CORS_BYTES = 64 * 1024


def _settings(req: S3Request) -> CorsSettings:
    assert req.services is not None
    assert req.services.cors is not None
    return req.services.cors


async def put_bucket_cors(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    rules = parse_cors(await req.read_body(MAX_CORS_BYTES))
    await _settings(req).store(req.bucket, rules)
    return empty_reply()


async def get_bucket_cors(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    rules = await _settings(req).rules(req.bucket)
    if rules is None:
        raise S3Error("NoSuchCORSConfiguration", BucketName=req.bucket)
    return xml_reply(cors_document(rules))


async def delete_bucket_cors(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    await _settings(req).store(req.bucket, None)
    return empty_reply(204)
