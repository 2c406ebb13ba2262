"""Bucket operations and listings over HTTP with boto3."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from tests.support.s3_errors import error_code, status


def test_bucket_lifecycle(s3: Any, bucket_name: Callable[[], str]) -> None:
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as owned:
        s3.create_bucket(Bucket=name)
    assert error_code(owned) == "BucketAlreadyOwnedByYou"
    assert status(owned) == 409
    listed = s3.list_buckets()
    assert name in [b["Name"] for b in listed["Buckets"]]
    assert listed["Owner"]["DisplayName"] == "root"
    assert len(listed["Owner"]["ID"]) == 64
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    s3.put_object(Bucket=name, Key="x", Body=b"x")
    with pytest.raises(ClientError) as not_empty:
        s3.delete_bucket(Bucket=name)
    assert error_code(not_empty) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="x")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket=name)
    assert status(gone) == 404
    with pytest.raises(ClientError) as no_bucket:
        s3.list_objects_v2(Bucket=name)
    assert error_code(no_bucket) == "NoSuchBucket"


def test_abandoned_upload_does_not_block_delete(s3: Any, bucket_name: Callable[[], str]) -> None:
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    upload = s3.create_multipart_upload(Bucket=name, Key="abandoned")
    s3.upload_part(
        Bucket=name, Key="abandoned", UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
    )
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


@pytest.mark.parametrize(
    "name",
    ["ab", "UPPER", "has_underscore", "-lead", "trail-", "a..b", "192.168.1.1", "xn--x", "a" * 64],
)
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3.create_bucket(Bucket=name)
    assert error_code(excinfo) == "InvalidBucketName"


def test_location_constraint(s3: Any, bucket_name: Callable[[], str]) -> None:
    name = bucket_name()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    with pytest.raises(ClientError) as excinfo:
        s3.create_bucket(
            Bucket=bucket_name(), CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert error_code(excinfo) == "InvalidLocationConstraint"


def test_bucket_acl(s3: Any, bucket: str) -> None:
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    with pytest.raises(ClientError) as excinfo:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert error_code(excinfo) == "AccessControlListNotSupported"


def _fill(s3: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b""), keys))


def test_list_v2_prefix_delimiter_paging(s3: Any, bucket: str) -> None:
    keys = ["a/1", "a/2", "b/1", "b/c/2", "c", "d/", "e"]
    _fill(s3, bucket, keys)
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["c", "e"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "d/"]
    assert top["KeyCount"] == 5
    under_b = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in under_b["Contents"]] == ["b/1"]
    assert [p["Prefix"] for p in under_b["CommonPrefixes"]] == ["b/c/"]
    # Paging one entry at a time through prefixes and keys never repeats or skips.
    seen: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Delimiter": "/", "MaxKeys": 1}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == ["a/", "b/", "c", "d/", "e"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/1")
    assert [o["Key"] for o in after["Contents"]] == ["b/c/2", "c", "d/", "e"]
    owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, MaxKeys=1)
    assert owner["Contents"][0]["Owner"]["DisplayName"] == "root"
    assert "Owner" not in s3.list_objects_v2(Bucket=bucket, MaxKeys=1)["Contents"][0]


def test_list_encoding_type_url(s3: Any, bucket: str) -> None:
    keys = ["sp ace", "plus+sign", "uni/é", "ctl\x01"]
    _fill(s3, bucket, keys)
    # Asked for explicitly, the encoding reaches the caller (botocore decodes only its own).
    listed = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    encoded = [o["Key"] for o in listed["Contents"]]
    assert "ctl%01" in encoded
    assert "uni/%C3%A9" in encoded
    assert sorted(unquote_plus(k) for k in encoded) == sorted(keys)
    # Without it, botocore asks for url encoding itself and decodes: keys arrive as stored.
    plain = s3.list_objects(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in plain["CommonPrefixes"]] == ["uni/"]
    assert sorted(o["Key"] for o in plain["Contents"]) == sorted(k for k in keys if "/" not in k)


def test_list_v1_markers(s3: Any, bucket: str) -> None:
    keys = [f"k{i:02d}" for i in range(10)]
    _fill(s3, bucket, keys)
    first = s3.list_objects(Bucket=bucket, MaxKeys=4)
    assert [o["Key"] for o in first["Contents"]] == keys[:4]
    assert first["IsTruncated"]
    second = s3.list_objects(Bucket=bucket, Marker=first["NextMarker"], MaxKeys=100)
    assert [o["Key"] for o in second["Contents"]] == keys[4:]
    assert not second["IsTruncated"]
    assert first["Contents"][0]["Owner"]["DisplayName"] == "root"


def test_list_object_versions(s3: Any, bucket: str) -> None:
    _fill(s3, bucket, ["v1", "v2", "v3"])
    page = s3.list_object_versions(Bucket=bucket, MaxKeys=2)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in page["Versions"]] == [
        ("v1", "null", True),
        ("v2", "null", True),
    ]
    assert page["IsTruncated"]
    rest = s3.list_object_versions(
        Bucket=bucket, KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"]
    )
    assert [v["Key"] for v in rest["Versions"]] == ["v3"]


def test_list_ten_thousand_keys_paged(s3: Any, bucket: str) -> None:
    keys = [f"pages/{i:05d}.html" for i in range(10_050)]
    _fill(s3, bucket, keys)
    paginator = s3.get_paginator("list_objects_v2")
    listed = [o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page["Contents"]]
    assert listed == keys
    v1 = s3.get_paginator("list_objects")
    assert [o["Key"] for page in v1.paginate(Bucket=bucket) for o in page["Contents"]] == keys


def test_invalid_max_keys(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        s3.list_objects_v2(Bucket=bucket, MaxKeys=-1)
    assert error_code(excinfo) == "InvalidArgument"
