"""Operation -> handler. An Operation of the route table without a handler answers 501."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.handlers import (
    access,
    buckets,
    cors,
    encryption,
    lifecycle,
    listing,
    multipart,
    object_lock,
    objects,
    post_object,
    tagging,
    versions,
)
from gateway.request import S3Request
from gateway.responses import Reply
from gateway.routing import Operation

Handler = Callable[[S3Request], Awaitable[Reply]]

_O = Operation
HANDLERS: dict[Operation, Handler] = {
    _O.ListBuckets: buckets.list_buckets,
    _O.CreateBucket: buckets.create_bucket,
    _O.HeadBucket: buckets.head_bucket,
    _O.DeleteBucket: buckets.delete_bucket,
    _O.GetBucketLocation: buckets.get_bucket_location,
    _O.GetBucketVersioning: versions.get_bucket_versioning,
    _O.PutBucketVersioning: versions.put_bucket_versioning,
    _O.GetBucketAcl: access.get_bucket_acl,
    _O.PutBucketAcl: access.put_bucket_acl,
    _O.GetObjectAcl: access.get_object_acl,
    _O.PutObjectAcl: access.put_object_acl,
    _O.GetBucketPolicy: access.get_bucket_policy,
    _O.PutBucketPolicy: access.put_bucket_policy,
    _O.DeleteBucketPolicy: access.delete_bucket_policy,
    _O.GetBucketPolicyStatus: access.get_bucket_policy_status,
    _O.GetPublicAccessBlock: access.get_public_access_block,
    _O.PutPublicAccessBlock: access.put_public_access_block,
    _O.DeletePublicAccessBlock: access.delete_public_access_block,
    _O.GetBucketOwnershipControls: access.get_bucket_ownership_controls,
    _O.PutBucketOwnershipControls: access.put_bucket_ownership_controls,
    _O.DeleteBucketOwnershipControls: access.delete_bucket_ownership_controls,
    _O.ListObjects: listing.list_objects_v1,
    _O.ListObjectsV2: listing.list_objects_v2,
    _O.ListObjectVersions: versions.list_object_versions,
    _O.PutObject: objects.put_object,
    _O.PostObject: post_object.post_object,
    _O.GetObject: objects.get_object,
    _O.HeadObject: objects.head_object,
    _O.DeleteObject: objects.delete_object,
    _O.DeleteObjects: objects.delete_objects,
    _O.CopyObject: objects.copy_object,
    _O.GetObjectAttributes: objects.get_object_attributes,
    _O.CreateMultipartUpload: multipart.create_multipart_upload,
    _O.UploadPart: multipart.upload_part,
    _O.UploadPartCopy: multipart.upload_part_copy,
    _O.CompleteMultipartUpload: multipart.complete_multipart_upload,
    _O.AbortMultipartUpload: multipart.abort_multipart_upload,
    _O.ListParts: multipart.list_parts,
    _O.ListMultipartUploads: multipart.list_multipart_uploads,
    _O.GetBucketLifecycleConfiguration: lifecycle.get_bucket_lifecycle,
    _O.PutBucketLifecycleConfiguration: lifecycle.put_bucket_lifecycle,
    _O.DeleteBucketLifecycle: lifecycle.delete_bucket_lifecycle,
    _O.PutBucketCors: cors.put_bucket_cors,
    _O.GetBucketCors: cors.get_bucket_cors,
    _O.DeleteBucketCors: cors.delete_bucket_cors,
    _O.GetObjectTagging: tagging.get_object_tagging,
    _O.PutObjectTagging: tagging.put_object_tagging,
    _O.DeleteObjectTagging: tagging.delete_object_tagging,
    _O.GetBucketTagging: tagging.get_bucket_tagging,
    _O.PutBucketTagging: tagging.put_bucket_tagging,
    _O.DeleteBucketTagging: tagging.delete_bucket_tagging,
    _O.GetObjectLockConfiguration: object_lock.get_object_lock_configuration,
    _O.PutObjectLockConfiguration: object_lock.put_object_lock_configuration,
    _O.GetObjectRetention: object_lock.get_object_retention,
    _O.PutObjectRetention: object_lock.put_object_retention,
    _O.GetObjectLegalHold: object_lock.get_object_legal_hold,
    _O.PutObjectLegalHold: object_lock.put_object_legal_hold,
    _O.GetBucketEncryption: encryption.get_bucket_encryption,
    _O.PutBucketEncryption: encryption.put_bucket_encryption,
    _O.DeleteBucketEncryption: encryption.delete_bucket_encryption,
}
