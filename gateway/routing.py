"""The one route table: (method, target, sub-resource) -> S3 Operation.

Operations the gateway does not implement are listed too, so a client gets a 501 naming the
operation instead of a wrong success. What an Operation stands for is said once, on
:class:`Operation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Target = Literal["service", "bucket", "object"]


class Operation(StrEnum):
    """An S3 operation, named as AWS names it: the one name of a request's kind.

    It selects the request's handler (the ``HANDLERS`` table), is the ``operation`` field of
    the access and audit lines, and names the permission checked for the request:
    :attr:`action` is its IAM action (``s3:<Operation>`` unless AWS names it otherwise, as in
    :data:`_ACTIONS`). It is also the ``operation`` label of the request metrics
    (``policy.metrics``) and the name of the request's span (``gateway.tracing``): one value,
    never a second hand-kept list.
    """

    @property
    def action(self) -> str:
        """The IAM action a policy grants or denies for this Operation (``s3:GetObject`` for
        GetObject and HeadObject alike)."""
        return _ACTIONS.get(self, f"s3:{self.value}")

    ListBuckets = "ListBuckets"
    CreateBucket = "CreateBucket"
    HeadBucket = "HeadBucket"
    DeleteBucket = "DeleteBucket"
    GetBucketLocation = "GetBucketLocation"
    GetBucketVersioning = "GetBucketVersioning"
    PutBucketVersioning = "PutBucketVersioning"
    ListObjects = "ListObjects"
    ListObjectsV2 = "ListObjectsV2"
    ListObjectVersions = "ListObjectVersions"
    ListMultipartUploads = "ListMultipartUploads"
    DeleteObjects = "DeleteObjects"
    GetBucketAcl = "GetBucketAcl"
    PutBucketAcl = "PutBucketAcl"
    PutObject = "PutObject"
    PostObject = "PostObject"
    CopyObject = "CopyObject"
    GetObject = "GetObject"
    HeadObject = "HeadObject"
    DeleteObject = "DeleteObject"
    GetObjectAttributes = "GetObjectAttributes"
    GetObjectAcl = "GetObjectAcl"
    PutObjectAcl = "PutObjectAcl"
    CreateMultipartUpload = "CreateMultipartUpload"
    UploadPart = "UploadPart"
    UploadPartCopy = "UploadPartCopy"
    CompleteMultipartUpload = "CompleteMultipartUpload"
    AbortMultipartUpload = "AbortMultipartUpload"
    ListParts = "ListParts"
    # Known to S3, mostly not implemented here: an Operation without a handler (HANDLERS)
    # is answered with 501 NotImplemented (the lifecycle and encryption ones below have
    # handlers).
    GetBucketTagging = "GetBucketTagging"
    PutBucketTagging = "PutBucketTagging"
    DeleteBucketTagging = "DeleteBucketTagging"
    GetBucketCors = "GetBucketCors"
    PutBucketCors = "PutBucketCors"
    DeleteBucketCors = "DeleteBucketCors"
    GetBucketPolicy = "GetBucketPolicy"
    PutBucketPolicy = "PutBucketPolicy"
    DeleteBucketPolicy = "DeleteBucketPolicy"
    GetBucketPolicyStatus = "GetBucketPolicyStatus"
    GetBucketLifecycleConfiguration = "GetBucketLifecycleConfiguration"
    PutBucketLifecycleConfiguration = "PutBucketLifecycleConfiguration"
    DeleteBucketLifecycle = "DeleteBucketLifecycle"
    GetBucketWebsite = "GetBucketWebsite"
    PutBucketWebsite = "PutBucketWebsite"
    DeleteBucketWebsite = "DeleteBucketWebsite"
    GetBucketLogging = "GetBucketLogging"
    PutBucketLogging = "PutBucketLogging"
    GetBucketNotificationConfiguration = "GetBucketNotificationConfiguration"
    PutBucketNotificationConfiguration = "PutBucketNotificationConfiguration"
    GetBucketReplication = "GetBucketReplication"
    PutBucketReplication = "PutBucketReplication"
    DeleteBucketReplication = "DeleteBucketReplication"
    GetBucketEncryption = "GetBucketEncryption"
    PutBucketEncryption = "PutBucketEncryption"
    DeleteBucketEncryption = "DeleteBucketEncryption"
    GetObjectLockConfiguration = "GetObjectLockConfiguration"
    PutObjectLockConfiguration = "PutObjectLockConfiguration"
    GetBucketOwnershipControls = "GetBucketOwnershipControls"
    PutBucketOwnershipControls = "PutBucketOwnershipControls"
    DeleteBucketOwnershipControls = "DeleteBucketOwnershipControls"
    GetPublicAccessBlock = "GetPublicAccessBlock"
    PutPublicAccessBlock = "PutPublicAccessBlock"
    DeletePublicAccessBlock = "DeletePublicAccessBlock"
    GetBucketAccelerateConfiguration = "GetBucketAccelerateConfiguration"
    PutBucketAccelerateConfiguration = "PutBucketAccelerateConfiguration"
    GetBucketRequestPayment = "GetBucketRequestPayment"
    PutBucketRequestPayment = "PutBucketRequestPayment"
    GetBucketAnalyticsConfiguration = "GetBucketAnalyticsConfiguration"
    PutBucketAnalyticsConfiguration = "PutBucketAnalyticsConfiguration"
    DeleteBucketAnalyticsConfiguration = "DeleteBucketAnalyticsConfiguration"
    GetBucketInventoryConfiguration = "GetBucketInventoryConfiguration"
    PutBucketInventoryConfiguration = "PutBucketInventoryConfiguration"
    DeleteBucketInventoryConfiguration = "DeleteBucketInventoryConfiguration"
    GetBucketMetricsConfiguration = "GetBucketMetricsConfiguration"
    PutBucketMetricsConfiguration = "PutBucketMetricsConfiguration"
    DeleteBucketMetricsConfiguration = "DeleteBucketMetricsConfiguration"
    GetBucketIntelligentTieringConfiguration = "GetBucketIntelligentTieringConfiguration"
    PutBucketIntelligentTieringConfiguration = "PutBucketIntelligentTieringConfiguration"
    DeleteBucketIntelligentTieringConfiguration = "DeleteBucketIntelligentTieringConfiguration"
    GetObjectTagging = "GetObjectTagging"
    PutObjectTagging = "PutObjectTagging"
    DeleteObjectTagging = "DeleteObjectTagging"
    GetObjectRetention = "GetObjectRetention"
    PutObjectRetention = "PutObjectRetention"
    GetObjectLegalHold = "GetObjectLegalHold"
    PutObjectLegalHold = "PutObjectLegalHold"
    GetObjectTorrent = "GetObjectTorrent"
    RestoreObject = "RestoreObject"
    SelectObjectContent = "SelectObjectContent"


#: Operations whose IAM action is not ``s3:<Operation>``: AWS's own names (the S3 "actions,
#: resources and condition keys" reference). A copy also needs ``s3:GetObject`` on its source,
#: and a DeleteObjects ``s3:DeleteObject`` on each key; the handlers check those.
_ACTIONS: Mapping[Operation, str] = {
    Operation.ListBuckets: "s3:ListAllMyBuckets",
    Operation.HeadBucket: "s3:ListBucket",
    Operation.ListObjects: "s3:ListBucket",
    Operation.ListObjectsV2: "s3:ListBucket",
    Operation.ListObjectVersions: "s3:ListBucketVersions",
    Operation.ListMultipartUploads: "s3:ListBucketMultipartUploads",
    Operation.ListParts: "s3:ListMultipartUploadParts",
    Operation.DeleteObjects: "s3:DeleteObject",
    Operation.HeadObject: "s3:GetObject",
    Operation.CopyObject: "s3:PutObject",
    Operation.PostObject: "s3:PutObject",
    Operation.CreateMultipartUpload: "s3:PutObject",
    Operation.UploadPart: "s3:PutObject",
    Operation.UploadPartCopy: "s3:PutObject",
    Operation.CompleteMultipartUpload: "s3:PutObject",
    Operation.GetBucketCors: "s3:GetBucketCORS",
    Operation.PutBucketCors: "s3:PutBucketCORS",
    Operation.DeleteBucketCors: "s3:PutBucketCORS",
    Operation.DeleteBucketTagging: "s3:PutBucketTagging",
    Operation.GetBucketLifecycleConfiguration: "s3:GetLifecycleConfiguration",
    Operation.PutBucketLifecycleConfiguration: "s3:PutLifecycleConfiguration",
    Operation.DeleteBucketLifecycle: "s3:PutLifecycleConfiguration",
    Operation.DeleteBucketWebsite: "s3:DeleteBucketWebsite",
    Operation.GetBucketNotificationConfiguration: "s3:GetBucketNotification",
    Operation.PutBucketNotificationConfiguration: "s3:PutBucketNotification",
    Operation.GetBucketReplication: "s3:GetReplicationConfiguration",
    Operation.PutBucketReplication: "s3:PutReplicationConfiguration",
    Operation.DeleteBucketReplication: "s3:PutReplicationConfiguration",
    Operation.GetBucketEncryption: "s3:GetEncryptionConfiguration",
    Operation.PutBucketEncryption: "s3:PutEncryptionConfiguration",
    Operation.DeleteBucketEncryption: "s3:PutEncryptionConfiguration",
    Operation.GetObjectLockConfiguration: "s3:GetBucketObjectLockConfiguration",
    Operation.PutObjectLockConfiguration: "s3:PutBucketObjectLockConfiguration",
    Operation.GetPublicAccessBlock: "s3:GetBucketPublicAccessBlock",
    Operation.PutPublicAccessBlock: "s3:PutBucketPublicAccessBlock",
    Operation.DeletePublicAccessBlock: "s3:PutBucketPublicAccessBlock",
    Operation.DeleteBucketOwnershipControls: "s3:PutBucketOwnershipControls",
    Operation.GetBucketAccelerateConfiguration: "s3:GetAccelerateConfiguration",
    Operation.PutBucketAccelerateConfiguration: "s3:PutAccelerateConfiguration",
    Operation.GetBucketAnalyticsConfiguration: "s3:GetAnalyticsConfiguration",
    Operation.PutBucketAnalyticsConfiguration: "s3:PutAnalyticsConfiguration",
    Operation.DeleteBucketAnalyticsConfiguration: "s3:PutAnalyticsConfiguration",
    Operation.GetBucketInventoryConfiguration: "s3:GetInventoryConfiguration",
    Operation.PutBucketInventoryConfiguration: "s3:PutInventoryConfiguration",
    Operation.DeleteBucketInventoryConfiguration: "s3:PutInventoryConfiguration",
    Operation.GetBucketMetricsConfiguration: "s3:GetMetricsConfiguration",
    Operation.PutBucketMetricsConfiguration: "s3:PutMetricsConfiguration",
    Operation.DeleteBucketMetricsConfiguration: "s3:PutMetricsConfiguration",
    Operation.GetBucketIntelligentTieringConfiguration: "s3:GetIntelligentTieringConfiguration",
    Operation.PutBucketIntelligentTieringConfiguration: "s3:PutIntelligentTieringConfiguration",
    Operation.DeleteBucketIntelligentTieringConfiguration: "s3:PutIntelligentTieringConfiguration",
    Operation.GetObjectAttributes: "s3:GetObjectAttributes",
}


@dataclass(frozen=True)
class Route:
    """``subresource`` is a query parameter that selects the route (None: no sub-resource);
    ``header`` a request header that must be present (copy source)."""

    method: str
    target: Target
    subresource: str | None
    operation: Operation
    header: str | None = None


_O = Operation

#: The route table. Within one (method, target) the first matching row wins, so rows with
#: a sub-resource or header come before the plain row.
ROUTES: tuple[Route, ...] = (
    Route("GET", "service", None, _O.ListBuckets),
    # Bucket sub-resources
    Route("GET", "bucket", "location", _O.GetBucketLocation),
    Route("GET", "bucket", "versioning", _O.GetBucketVersioning),
    Route("PUT", "bucket", "versioning", _O.PutBucketVersioning),
    Route("GET", "bucket", "versions", _O.ListObjectVersions),
    Route("GET", "bucket", "uploads", _O.ListMultipartUploads),
    Route("POST", "bucket", "delete", _O.DeleteObjects),
    Route("GET", "bucket", "acl", _O.GetBucketAcl),
    Route("PUT", "bucket", "acl", _O.PutBucketAcl),
    Route("GET", "bucket", "tagging", _O.GetBucketTagging),
    Route("PUT", "bucket", "tagging", _O.PutBucketTagging),
    Route("DELETE", "bucket", "tagging", _O.DeleteBucketTagging),
    Route("GET", "bucket", "cors", _O.GetBucketCors),
    Route("PUT", "bucket", "cors", _O.PutBucketCors),
    Route("DELETE", "bucket", "cors", _O.DeleteBucketCors),
    Route("GET", "bucket", "policyStatus", _O.GetBucketPolicyStatus),
    Route("GET", "bucket", "policy", _O.GetBucketPolicy),
    Route("PUT", "bucket", "policy", _O.PutBucketPolicy),
    Route("DELETE", "bucket", "policy", _O.DeleteBucketPolicy),
    Route("GET", "bucket", "lifecycle", _O.GetBucketLifecycleConfiguration),
    Route("PUT", "bucket", "lifecycle", _O.PutBucketLifecycleConfiguration),
    Route("DELETE", "bucket", "lifecycle", _O.DeleteBucketLifecycle),
    Route("GET", "bucket", "website", _O.GetBucketWebsite),
    Route("PUT", "bucket", "website", _O.PutBucketWebsite),
    Route("DELETE", "bucket", "website", _O.DeleteBucketWebsite),
    Route("GET", "bucket", "logging", _O.GetBucketLogging),
    Route("PUT", "bucket", "logging", _O.PutBucketLogging),
    Route("GET", "bucket", "notification", _O.GetBucketNotificationConfiguration),
    Route("PUT", "bucket", "notification", _O.PutBucketNotificationConfiguration),
    Route("GET", "bucket", "replication", _O.GetBucketReplication),
    Route("PUT", "bucket", "replication", _O.PutBucketReplication),
    Route("DELETE", "bucket", "replication", _O.DeleteBucketReplication),
    Route("GET", "bucket", "encryption", _O.GetBucketEncryption),
    Route("PUT", "bucket", "encryption", _O.PutBucketEncryption),
    Route("DELETE", "bucket", "encryption", _O.DeleteBucketEncryption),
    Route("GET", "bucket", "object-lock", _O.GetObjectLockConfiguration),
    Route("PUT", "bucket", "object-lock", _O.PutObjectLockConfiguration),
    Route("GET", "bucket", "ownershipControls", _O.GetBucketOwnershipControls),
    Route("PUT", "bucket", "ownershipControls", _O.PutBucketOwnershipControls),
    Route("DELETE", "bucket", "ownershipControls", _O.DeleteBucketOwnershipControls),
    Route("GET", "bucket", "publicAccessBlock", _O.GetPublicAccessBlock),
    Route("PUT", "bucket", "publicAccessBlock", _O.PutPublicAccessBlock),
    Route("DELETE", "bucket", "publicAccessBlock", _O.DeletePublicAccessBlock),
    Route("GET", "bucket", "accelerate", _O.GetBucketAccelerateConfiguration),
    Route("PUT", "bucket", "accelerate", _O.PutBucketAccelerateConfiguration),
    Route("GET", "bucket", "requestPayment", _O.GetBucketRequestPayment),
    Route("PUT", "bucket", "requestPayment", _O.PutBucketRequestPayment),
    Route("GET", "bucket", "analytics", _O.GetBucketAnalyticsConfiguration),
    Route("PUT", "bucket", "analytics", _O.PutBucketAnalyticsConfiguration),
    Route("DELETE", "bucket", "analytics", _O.DeleteBucketAnalyticsConfiguration),
    Route("GET", "bucket", "inventory", _O.GetBucketInventoryConfiguration),
    Route("PUT", "bucket", "inventory", _O.PutBucketInventoryConfiguration),
    Route("DELETE", "bucket", "inventory", _O.DeleteBucketInventoryConfiguration),
    Route("GET", "bucket", "metrics", _O.GetBucketMetricsConfiguration),
    Route("PUT", "bucket", "metrics", _O.PutBucketMetricsConfiguration),
    Route("DELETE", "bucket", "metrics", _O.DeleteBucketMetricsConfiguration),
    Route("GET", "bucket", "intelligent-tiering", _O.GetBucketIntelligentTieringConfiguration),
    Route("PUT", "bucket", "intelligent-tiering", _O.PutBucketIntelligentTieringConfiguration),
    Route(
        "DELETE", "bucket", "intelligent-tiering", _O.DeleteBucketIntelligentTieringConfiguration
    ),
    Route("GET", "bucket", "list-type", _O.ListObjectsV2),
    # Plain bucket operations
    Route("GET", "bucket", None, _O.ListObjects),
    Route("PUT", "bucket", None, _O.CreateBucket),
    Route("POST", "bucket", None, _O.PostObject),
    Route("HEAD", "bucket", None, _O.HeadBucket),
    Route("DELETE", "bucket", None, _O.DeleteBucket),
    # Object sub-resources
    Route("PUT", "object", "uploadId", _O.UploadPartCopy, header="x-amz-copy-source"),
    Route("PUT", "object", "uploadId", _O.UploadPart),
    Route("GET", "object", "uploadId", _O.ListParts),
    Route("POST", "object", "uploadId", _O.CompleteMultipartUpload),
    Route("DELETE", "object", "uploadId", _O.AbortMultipartUpload),
    Route("POST", "object", "uploads", _O.CreateMultipartUpload),
    Route("GET", "object", "attributes", _O.GetObjectAttributes),
    Route("GET", "object", "acl", _O.GetObjectAcl),
    Route("PUT", "object", "acl", _O.PutObjectAcl),
    Route("GET", "object", "tagging", _O.GetObjectTagging),
    Route("PUT", "object", "tagging", _O.PutObjectTagging),
    Route("DELETE", "object", "tagging", _O.DeleteObjectTagging),
    Route("GET", "object", "retention", _O.GetObjectRetention),
    Route("PUT", "object", "retention", _O.PutObjectRetention),
    Route("GET", "object", "legal-hold", _O.GetObjectLegalHold),
    Route("PUT", "object", "legal-hold", _O.PutObjectLegalHold),
    Route("GET", "object", "torrent", _O.GetObjectTorrent),
    Route("POST", "object", "restore", _O.RestoreObject),
    Route("POST", "object", "select", _O.SelectObjectContent),
    # Plain object operations
    Route("PUT", "object", None, _O.CopyObject, header="x-amz-copy-source"),
    Route("PUT", "object", None, _O.PutObject),
    Route("GET", "object", None, _O.GetObject),
    Route("HEAD", "object", None, _O.HeadObject),
    Route("DELETE", "object", None, _O.DeleteObject),
)

_BY_METHOD_TARGET: dict[tuple[str, Target], tuple[Route, ...]] = {}
for _route in ROUTES:
    key = (_route.method, _route.target)
    _BY_METHOD_TARGET[key] = (*_BY_METHOD_TARGET.get(key, ()), _route)


def resolve(
    method: str, target: Target, query: Mapping[str, str], headers: Mapping[str, str]
) -> Operation | None:
    """The Operation for a request, or None when no route matches (MethodNotAllowed).

    A HEAD is routed like a GET without a sub-resource only where a HEAD row exists.
    """
    for route in _BY_METHOD_TARGET.get((method, target), ()):
        if route.subresource is not None and route.subresource not in query:
            continue
        if route.header is not None and route.header not in headers:
            continue
        return route.operation
    return None
