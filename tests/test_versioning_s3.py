"""S3 versioning over HTTP with boto3, in-process over the memory store: the bucket's state,
version ids on every write, reads and deletes by version id, delete markers,
ListObjectVersions paging, DeleteObjects with versions, copies of a version, and the version
actions a policy can deny."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.s3_errors import s3_error


def enable(s3: Any, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def entries(s3: Any, bucket: str, **kwargs: Any) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) of every entry, in S3's order."""
    found: list[tuple[str, str, bool, bool]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, **kwargs):
        merged = [(v, False) for v in page.get("Versions", [])]
        merged += [(m, True) for m in page.get("DeleteMarkers", [])]
        # boto3 splits one list in two; S3's order is by key, then newest first.
        merged.sort(key=lambda e: (e[0]["Key"], -e[0]["LastModified"].timestamp()))
        found += [(e["Key"], e["VersionId"], e["IsLatest"], marker) for e, marker in merged]
    return found


def test_bucket_versioning_state(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert s3_error(lambda: enable(s3, bucket, "Off"))[:2] == (400, "MalformedXML")
    mfa = {"Status": "Enabled", "MFADelete": "Enabled"}
    assert s3_error(lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=mfa))[
        :2
    ] == (501, "NotImplemented")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert s3_error(lambda: s3.get_bucket_versioning(Bucket=f"{bucket}-none"))[:2] == (
        404,
        "NoSuchBucket",
    )


def test_versions_of_a_key(s3: Any, bucket: str) -> None:
    before = s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    assert "VersionId" not in before
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"second")["VersionId"]
    assert len({first, second, "null"}) == 3
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"second", second)
    old = s3.get_object(Bucket=bucket, Key="k", VersionId=first)
    assert (old["Body"].read(), old["VersionId"]) == (b"first", first)
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before"
    ranged = s3.get_object(Bucket=bucket, Key="k", VersionId=first, Range="bytes=1-2")
    assert ranged["Body"].read() == b"ir"
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=first)
    assert (head["ContentLength"], head["VersionId"]) == (5, first)
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="nope"))[:2] == (
        404,
        "NoSuchVersion",
    )
    assert entries(s3, bucket) == [
        ("k", second, True, False),
        ("k", first, False, False),
        ("k", "null", False, False),
    ]
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k", 6)]


def test_delete_markers(s3: Any, bucket: str) -> None:
    enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker != kept
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="k"))[:2] == (404, "NoSuchKey")
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key="k")
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["x-amz-delete-marker"], headers["x-amz-version-id"]) == ("true", marker)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=marker))[:2] == (
        405,
        "MethodNotAllowed",
    )
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=kept)["Body"].read() == b"kept"
    assert entries(s3, bucket) == [("k", marker, True, True), ("k", kept, False, False)]
    assert s3_error(lambda: s3.delete_bucket(Bucket=bucket))[:2] == (409, "BucketNotEmpty")
    # Deleting the marker by id brings the object back.
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert (removed["DeleteMarker"], removed["VersionId"]) == (True, marker)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=kept)
    assert "DeleteMarker" not in gone
    assert entries(s3, bucket) == []
    s3.delete_bucket(Bucket=bucket)


def test_suspended_bucket_writes_null_versions(s3: Any, bucket: str) -> None:
    enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    enable(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"] == "null"
    assert entries(s3, bucket) == [("k", "null", True, False), ("k", kept, False, False)]
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert (marker["DeleteMarker"], marker["VersionId"]) == (True, "null")


def test_list_object_versions_pages(s3: Any, bucket: str) -> None:
    enable(s3, bucket)
    for key in ("a", "b", "dir/x"):
        for n in range(3):
            s3.put_object(Bucket=bucket, Key=key, Body=f"{key}{n}".encode())
    full = entries(s3, bucket)
    assert [(k, latest) for k, _, latest, _ in full] == [
        (k, n == 0) for k in ("a", "b", "dir/x") for n in range(3)
    ]
    assert entries(s3, bucket, PaginationConfig={"PageSize": 2}) == full
    page = s3.list_object_versions(Bucket=bucket, MaxKeys=4)
    assert page["IsTruncated"]
    assert (page["NextKeyMarker"], page["NextVersionIdMarker"]) == ("b", full[3][1])
    rolled = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["dir/"]
    assert {v["Key"] for v in rolled["Versions"]} == {"a", "b"}
    assert s3_error(
        lambda: s3.list_object_versions(Bucket=bucket, KeyMarker="a", VersionIdMarker="nope")
    )[:2] == (400, "InvalidArgument")


def test_delete_objects_with_versions(s3: Any, bucket: str) -> None:
    enable(s3, bucket)
    one = s3.put_object(Bucket=bucket, Key="one", Body=b"1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="two", Body=b"2")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "one", "VersionId": one}, {"Key": "two"}]},
    )
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["one"]["VersionId"] == one
    assert "DeleteMarker" not in by_key["one"]
    assert by_key["two"]["DeleteMarker"] is True
    assert by_key["two"]["DeleteMarkerVersionId"]
    assert [(k, marker) for k, _, _, marker in entries(s3, bucket)] == [
        ("two", True),
        ("two", False),
    ]


def test_copy_and_multipart_versions(s3: Any, bucket: str) -> None:
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": first}
    )
    assert copied["CopySourceVersionId"] == first
    assert copied["VersionId"] not in (None, first)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"first"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"mp")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert done["VersionId"] == s3.head_object(Bucket=bucket, Key="mp")["VersionId"]


def test_tags_and_attributes_name_the_latest_version_only(s3: Any, bucket: str) -> None:
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    latest = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    tags = {"TagSet": [{"Key": "t", "Value": "v"}]}
    s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=latest, Tagging=tags)
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=latest)["TagSet"] == [
        {"Key": "t", "Value": "v"}
    ]
    assert s3_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first))[:2] == (
        404,
        "NoSuchVersion",
    )


def test_a_policy_can_deny_the_version_actions(s3: Any, bucket: str) -> None:
    """Reading or deleting a version needs its version action on top of the Operation's:
    a bucket policy denying them binds even root, while plain reads and deletes go on."""
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"2")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObjectVersion", "s3:DeleteObjectVersion"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"2"
    for call in (
        lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=first),
        lambda: s3.head_object(Bucket=bucket, Key="k", VersionId=first),
        lambda: s3.delete_object(Bucket=bucket, Key="k", VersionId=first),
        lambda: s3.copy_object(
            Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k", "VersionId": first}
        ),
    ):
        assert s3_error(call)[:2] in ((403, "AccessDenied"), (403, "403"))
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"1"


@pytest.mark.parametrize("bad", ["", "x" * 1025])
def test_bad_version_ids_are_invalid_arguments(s3: Any, bucket: str, bad: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    code = s3_error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=bad))[:2]
    assert code == (400, "InvalidArgument")
