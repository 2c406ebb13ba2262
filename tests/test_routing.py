"""The route table: every (method, target, sub-resource) maps to the Operation AWS names."""

from __future__ import annotations

import pytest

from gateway.handlers import HANDLERS
from gateway.routing import ROUTES, Operation, Target, resolve


@pytest.mark.parametrize(
    ("method", "target", "query", "headers", "operation"),
    [
        ("GET", "service", {}, {}, Operation.ListBuckets),
        ("PUT", "bucket", {}, {}, Operation.CreateBucket),
        ("GET", "bucket", {}, {}, Operation.ListObjects),
        ("GET", "bucket", {"list-type": "2"}, {}, Operation.ListObjectsV2),
        ("GET", "bucket", {"versions": ""}, {}, Operation.ListObjectVersions),
        ("GET", "bucket", {"uploads": ""}, {}, Operation.ListMultipartUploads),
        ("POST", "bucket", {"delete": ""}, {}, Operation.DeleteObjects),
        ("GET", "bucket", {"location": ""}, {}, Operation.GetBucketLocation),
        ("GET", "bucket", {"tagging": ""}, {}, Operation.GetBucketTagging),
        (
            "PUT",
            "bucket",
            {"inventory": "", "id": "i"},
            {},
            Operation.PutBucketInventoryConfiguration,
        ),
        ("GET", "bucket", {"analytics": ""}, {}, Operation.GetBucketAnalyticsConfiguration),
        (
            "DELETE",
            "bucket",
            {"metrics": "", "id": "m"},
            {},
            Operation.DeleteBucketMetricsConfiguration,
        ),
        ("PUT", "bucket", {"accelerate": ""}, {}, Operation.PutBucketAccelerateConfiguration),
        ("PUT", "object", {}, {}, Operation.PutObject),
        ("PUT", "object", {}, {"x-amz-copy-source": "b/k"}, Operation.CopyObject),
        ("PUT", "object", {"uploadId": "u", "partNumber": "1"}, {}, Operation.UploadPart),
        (
            "PUT",
            "object",
            {"uploadId": "u", "partNumber": "1"},
            {"x-amz-copy-source": "b/k"},
            Operation.UploadPartCopy,
        ),
        ("POST", "object", {"uploads": ""}, {}, Operation.CreateMultipartUpload),
        ("POST", "object", {"uploadId": "u"}, {}, Operation.CompleteMultipartUpload),
        ("DELETE", "object", {"uploadId": "u"}, {}, Operation.AbortMultipartUpload),
        ("GET", "object", {"uploadId": "u"}, {}, Operation.ListParts),
        ("GET", "object", {"attributes": ""}, {}, Operation.GetObjectAttributes),
        ("GET", "object", {"partNumber": "2"}, {}, Operation.GetObject),
        ("HEAD", "object", {}, {}, Operation.HeadObject),
        ("DELETE", "object", {"versionId": "null"}, {}, Operation.DeleteObject),
    ],
)
def test_resolve(
    method: str,
    target: Target,
    query: dict[str, str],
    headers: dict[str, str],
    operation: Operation,
) -> None:
    assert resolve(method, target, query, headers) is operation


def test_unknown_method() -> None:
    assert resolve("PATCH", "object", {}, {}) is None
    assert resolve("POST", "service", {}, {}) is None


def test_every_operation_is_routed_once_per_row() -> None:
    routed = {route.operation for route in ROUTES}
    assert routed == set(Operation)
    assert set(HANDLERS) <= routed
