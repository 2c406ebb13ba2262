"""Object operations over HTTP, driven by boto3 at its defaults against the real gateway."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway
from tests.support.s3_errors import error_code, status


def test_put_get_head_delete(s3: Any, bucket: str) -> None:
    body = b"hello gateway\n" * 100
    put = s3.put_object(Bucket=bucket, Key="sites/index.html", Body=body)
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="sites/index.html")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="sites/index.html")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "binary/octet-stream"
    s3.delete_object(Bucket=bucket, Key="sites/index.html")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="sites/index.html")
    assert error_code(missing) == "NoSuchKey"
    with pytest.raises(ClientError) as missing_head:
        s3.head_object(Bucket=bucket, Key="sites/index.html")
    assert status(missing_head) == 404
    # Deleting a missing key succeeds, as in S3.
    s3.delete_object(Bucket=bucket, Key="sites/index.html")


def test_zero_byte_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


@pytest.mark.parametrize(
    ("header", "expected", "content_range"),
    [
        ("bytes=0-9", b"0123456789", "bytes 0-9/100"),
        ("bytes=95-", b"56789", "bytes 95-99/100"),
        ("bytes=-3", b"789", "bytes 97-99/100"),
        ("bytes=90-1000", b"0123456789", "bytes 90-99/100"),
    ],
)
def test_ranges(s3: Any, bucket: str, header: str, expected: bytes, content_range: str) -> None:
    body = b"0123456789" * 10
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header, ChecksumMode="ENABLED")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == content_range
    assert got["Body"].read() == expected
    assert not any(k.startswith("Checksum") for k in got)


def test_unsatisfiable_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=b"abc")
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-20")
    assert error_code(excinfo) == "InvalidRange"
    assert status(excinfo) == 416


def test_conditional_reads(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"data")
    etag = put["ETag"]
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"data"
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status(failed) == 412
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(not_modified) == 304
    with pytest.raises(ClientError) as not_modified_since:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert status(not_modified_since) == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"data"
    with pytest.raises(ClientError) as modified:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert status(modified) == 412
    # If-Match true wins over a false If-Unmodified-Since (RFC 9110, as S3 does).
    got = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=past)
    assert got["Body"].read() == b"data"


def test_conditional_writes(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="w", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfNoneMatch="*")
    assert status(exists) == 412
    with pytest.raises(ClientError) as wrong:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch='"ffff"')
    assert status(wrong) == 412
    s3.put_object(Bucket=bucket, Key="w", Body=b"three", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"three"


def test_metadata_round_trip(s3: Any, bucket: str) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    s3.put_object(
        Bucket=bucket,
        Key="m",
        Body=b"x",
        ContentType="application/gzip",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="site.tar.gz"',
        ContentLanguage="en-GB",
        CacheControl="max-age=60",
        Expires=expires,
        Metadata={"build-id": "42", "Creator": "ci"},
    )
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["ContentType"] == "application/gzip"
    assert head["ContentEncoding"] == "identity"
    assert head["ContentDisposition"] == 'attachment; filename="site.tar.gz"'
    assert head["ContentLanguage"] == "en-GB"
    assert head["CacheControl"] == "max-age=60"
    assert head["ExpiresString"] == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert head["Metadata"] == {"build-id": "42", "creator": "ci"}


def test_metadata_too_large(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="big", Body=b"x", Metadata={"a": "x" * 2100})
    assert error_code(excinfo) == "MetadataTooLarge"


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/json",
        ResponseContentDisposition="inline",
        ResponseCacheControl="no-cache",
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"


OPAQUE_KEYS = ["a", "a/b", "a//b", "dir/", "../x", "./y", "é/ü/ß", "k" * 1024, "sp ace+plus%25"]


def test_opaque_keys_coexist(s3: Any, bucket: str) -> None:
    for key in OPAQUE_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in OPAQUE_KEYS:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(OPAQUE_KEYS, key=lambda k: k.encode())


def test_key_too_long(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_code(excinfo) == "KeyTooLongError"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksums_stored_and_returned(s3: Any, bucket: str, algorithm: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"checksummed", ChecksumAlgorithm=algorithm)
    field = f"Checksum{algorithm}"
    assert put[field]
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"checksummed"
    assert got[field] == put[field]
    attributes = s3.get_object_attributes(
        Bucket=bucket, Key="c", ObjectAttributes=["Checksum", "ETag", "ObjectSize", "StorageClass"]
    )
    assert attributes["Checksum"][field] == put[field]
    assert attributes["ObjectSize"] == len(b"checksummed")
    assert attributes["StorageClass"] == "STANDARD"


def test_default_checksum_is_crc64nvme(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    plain = make_s3_client(gateway, request_checksum_calculation="when_required")
    plain.put_object(Bucket=bucket, Key="d", Body=b"plain")
    head = s3.head_object(Bucket=bucket, Key="d", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"]
    assert head["ChecksumType"] == "FULL_OBJECT"


def test_copy_object(s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket, Key="src", Body=b"copy me", Metadata={"k": "v"}, ContentType="text/x"
    )
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["Metadata"] == {"k": "v"}
    assert head["ContentType"] == "text/x"
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"copy me"
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        Metadata={"n": "w"},
        ContentType="text/y",
    )
    head2 = s3.head_object(Bucket=bucket, Key="dst2")
    assert head2["Metadata"] == {"n": "w"}
    assert head2["ContentType"] == "text/y"


def test_copy_onto_itself(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"same", Metadata={"v": "1"})
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert error_code(excinfo) == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource={"Bucket": bucket, "Key": "self"},
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
    )
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"v": "2"}
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"same"


def test_copy_source_conditions(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="s", Body=b"x")
    source = {"Bucket": bucket, "Key": "s"}
    s3.copy_object(Bucket=bucket, Key="t", CopySource=source, CopySourceIfMatch=put["ETag"])
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=bucket, Key="u", CopySource=source, CopySourceIfNoneMatch=put["ETag"])
    assert status(excinfo) == 412
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="u")


def test_delete_objects(s3: Any, bucket: str) -> None:
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": k} for k in keys[:3]] + [{"Key": "k3", "VersionId": "null"}]},
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["k0", "k1", "k2", "k3"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k4"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_delete_objects_conditions(s3: Any, bucket: str) -> None:
    """Per-object ETag, LastModifiedTime and Size: a condition that does not hold is that
    key's PreconditionFailed, a missing key its NoSuchKey; the others are deleted."""
    for key in ("etag", "etag-bad", "any", "time", "time-bad", "size", "size-bad"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"12345")
    head = s3.head_object(Bucket=bucket, Key="time")
    etag, modified = s3.head_object(Bucket=bucket, Key="etag")["ETag"], head["LastModified"]
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "etag", "ETag": etag},
                {"Key": "etag-bad", "ETag": '"0123456789abcdef0123456789abcdef"'},
                {"Key": "any", "ETag": "*"},
                {"Key": "time", "LastModifiedTime": modified},
                {"Key": "time-bad", "LastModifiedTime": modified - timedelta(days=1)},
                {"Key": "size", "Size": 5, "ETag": etag},
                {"Key": "size-bad", "Size": 4},
                {"Key": "missing", "ETag": etag},
            ]
        },
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["any", "etag", "size", "time"]
    errors = {e["Key"]: e["Code"] for e in result["Errors"]}
    assert errors == {
        "etag-bad": "PreconditionFailed",
        "time-bad": "PreconditionFailed",
        "size-bad": "PreconditionFailed",
        "missing": "NoSuchKey",
    }
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == ["etag-bad", "size-bad", "time-bad"]


def test_object_acl(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    acl = s3.get_object_acl(Bucket=bucket, Key="a")
    assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    s3.put_object_acl(Bucket=bucket, Key="a", ACL="private")
    with pytest.raises(ClientError) as excinfo:
        s3.put_object_acl(Bucket=bucket, Key="a", ACL="public-read")
    assert error_code(excinfo) == "AccessControlListNotSupported"
    assert "private" in excinfo.value.response["Error"]["Message"]


def test_not_implemented_names_operation(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3.get_bucket_logging(Bucket=bucket)
    assert error_code(excinfo) == "NotImplemented"
    assert status(excinfo) == 501
    assert "GetBucketLogging" in excinfo.value.response["Error"]["Message"]


def test_bucket_configurations_without_support_are_501_not_another_operation(
    s3: Any, bucket: str
) -> None:
    """Sub-resources the gateway does not implement are named and refused: a PUT of one must
    never be taken for CreateBucket, nor a GET for a listing."""
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    inventory = {
        "Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::d", "Format": "CSV"}},
        "IsEnabled": True,
        "Id": "i",
        "IncludedObjectVersions": "Current",
        "Schedule": {"Frequency": "Daily"},
    }
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GetBucketInventoryConfiguration", "get_bucket_inventory_configuration", {"Id": "i"}),
        (
            "PutBucketInventoryConfiguration",
            "put_bucket_inventory_configuration",
            {"Id": "i", "InventoryConfiguration": inventory},
        ),
        (
            "DeleteBucketAnalyticsConfiguration",
            "delete_bucket_analytics_configuration",
            {"Id": "a"},
        ),
        ("GetBucketMetricsConfiguration", "get_bucket_metrics_configuration", {"Id": "m"}),
        (
            "GetBucketIntelligentTieringConfiguration",
            "get_bucket_intelligent_tiering_configuration",
            {"Id": "t"},
        ),
        (
            "PutBucketAccelerateConfiguration",
            "put_bucket_accelerate_configuration",
            {"AccelerateConfiguration": {"Status": "Enabled"}},
        ),
        (
            "PutBucketRequestPayment",
            "put_bucket_request_payment",
            {"RequestPaymentConfiguration": {"Payer": "Requester"}},
        ),
    ]
    for operation, method, arguments in calls:
        with pytest.raises(ClientError) as excinfo:
            getattr(s3, method)(Bucket=bucket, **arguments)
        assert (error_code(excinfo), status(excinfo)) == ("NotImplemented", 501), operation
        assert operation in excinfo.value.response["Error"]["Message"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept"]


def test_unknown_version_id(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"x"
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="v", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert error_code(excinfo) == "NoSuchVersion"


def test_aws_chunked_is_not_stored_as_content_encoding(s3: Any, bucket: str) -> None:
    # boto3 sends its CRC in an aws-chunked trailer; only the client's own coding is kept.
    s3.put_object(Bucket=bucket, Key="gz", Body=b"x", ContentEncoding="gzip")
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert "ContentEncoding" not in s3.head_object(Bucket=bucket, Key="plain")


def test_write_options_the_gateway_lacks_are_refused(s3: Any, bucket: str) -> None:
    """One storage class, no website hosting: asking for another class or a redirect is an
    error, never silently ignored; STANDARD is fine."""
    s3.put_object(Bucket=bucket, Key="std", Body=b"x", StorageClass="STANDARD")
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
    assert (error_code(excinfo), status(excinfo)) == ("InvalidStorageClass", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(
            Bucket=bucket, Key="cold", CopySource=f"{bucket}/std", StorageClass="STANDARD_IA"
        )
    assert error_code(excinfo) == "InvalidStorageClass"
    with pytest.raises(ClientError) as excinfo:
        s3.create_multipart_upload(Bucket=bucket, Key="cold", StorageClass="DEEP_ARCHIVE")
    assert error_code(excinfo) == "InvalidStorageClass"
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="r", Body=b"x", WebsiteRedirectLocation="/other")
    assert (error_code(excinfo), status(excinfo)) == ("NotImplemented", 501)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["std"]
