"""S3 tagging over HTTP with boto3, in-process over the memory store: the six tagging
operations, S3's limits and error codes, tags on PutObject / CopyObject / multipart uploads,
the copy's tagging directive, x-amz-tagging-count, and tags going with their object."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.gateway import InProcessGateway
from tests.support.raw_s3 import send
from tests.support.s3_errors import s3_error


def tag_set(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def tags_of(s3: Any, bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def test_object_tagging_round_trip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="a")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="a")
    tags = {"env": "prod", "team": "wéb", "empty": "", "a b:c/d=e+f-g@h_i.j": "ünï 1"}
    put = s3.put_object_tagging(Bucket=bucket, Key="a", Tagging=tag_set(tags))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_of(s3, bucket, "a") == tags
    assert s3.head_object(Bucket=bucket, Key="a")["ResponseMetadata"]["HTTPHeaders"][
        "x-amz-tagging-count"
    ] == str(len(tags))
    got = s3.get_object(Bucket=bucket, Key="a")
    assert got["TagCount"] == len(tags)
    assert got["Body"].read() == b"x"
    # A put replaces the whole set.
    s3.put_object_tagging(Bucket=bucket, Key="a", Tagging=tag_set({"only": "1"}))
    assert tags_of(s3, bucket, "a") == {"only": "1"}
    deleted = s3.delete_object_tagging(Bucket=bucket, Key="a")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "a") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="a")


def test_object_tagging_of_missing_objects(s3: Any, bucket: str) -> None:
    body = tag_set({"k": "v"})
    assert s3_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="nope"))[:2] == (
        404,
        "NoSuchKey",
    )
    assert s3_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="nope", Tagging=body))[:2] == (
        404,
        "NoSuchKey",
    )
    assert s3_error(lambda: s3.delete_object_tagging(Bucket=bucket, Key="nope"))[:2] == (
        404,
        "NoSuchKey",
    )
    assert s3_error(lambda: s3.get_object_tagging(Bucket="no-such-bucket-x", Key="k"))[:2] == (
        404,
        "NoSuchBucket",
    )
    s3.put_object(Bucket=bucket, Key="v", Body=b"x")
    assert s3_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="v", VersionId="123"))[:2] == (
        404,
        "NoSuchVersion",
    )


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({f"k{i}": "v" for i in range(11)}, "cannot be greater than 10"),
        ({"k" * 129: "v"}, "too long"),
        ({"k": "v" * 257}, "too long"),
        ({"k!": "v"}, "TagKey you have provided is invalid"),
        ({"k": "v#"}, "TagValue you have provided is invalid"),
        ({"k": "line\nbreak"}, "invalid"),
        ({"aws:reserved": "v"}, "aws:"),
        ({"AWS:Reserved": "v"}, "aws:"),
    ],
)
def test_object_tag_limits(s3: Any, bucket: str, tags: dict[str, str], message: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    code = s3_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=tag_set(tags)))
    assert code[:2] == (400, "InvalidTag")
    assert message in code[2]
    assert tags_of(s3, bucket, "t") == {}


def test_tag_limits_at_their_edges(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    tags = {f"{i}" + "k" * 127: "v" * 256 for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=tag_set(tags))
    assert tags_of(s3, bucket, "t") == tags
    unicode = {"ключ" * 32: "値" * 256}  # 128 and 256 characters, more bytes
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=tag_set(unicode))
    assert tags_of(s3, bucket, "t") == unicode


def test_malformed_and_duplicate_tagging_documents(
    s3: Any, bucket: str, gateway: InProcessGateway
) -> None:
    s3.put_object(Bucket=bucket, Key="m", Body=b"x")
    tag = "<Tag><Key>k</Key><Value>v</Value></Tag>"
    cases = {
        b"not xml": "MalformedXML",
        b"<Tagging/>": "MalformedXML",
        b"<Other><TagSet/></Other>": "MalformedXML",
        f"<Tagging><TagSet>{tag}</TagSet><TagSet/></Tagging>".encode(): "MalformedXML",
        b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>": "MalformedXML",
        b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>": "MalformedXML",
        b"<Tagging><TagSet><Oops/></TagSet></Tagging>": "MalformedXML",
        f"<Tagging><TagSet>{tag}{tag}</TagSet></Tagging>".encode(): "InvalidTag",
        b"<Tagging><TagSet><Tag><Key></Key><Value>v</Value></Tag></TagSet></Tagging>": (
            "InvalidTag"
        ),
    }
    for body, code in cases.items():
        for path in (f"/{bucket}/m", f"/{bucket}"):
            reply = send(gateway, "PUT", path, "tagging", body=body)
            assert reply.status == 400, (body, path, reply.body)
            assert reply.error_code() == code, (body, path, reply.body)
    # S3's namespace is accepted, and an empty TagSet is no tags.
    namespaced = (
        f'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>{tag}</TagSet></Tagging>'
    ).encode()
    assert send(gateway, "PUT", f"/{bucket}/m", "tagging", body=namespaced).status == 200
    assert tags_of(s3, bucket, "m") == {"k": "v"}
    empty = b"<Tagging><TagSet></TagSet></Tagging>"
    assert send(gateway, "PUT", f"/{bucket}/m", "tagging", body=empty).status == 200
    assert tags_of(s3, bucket, "m") == {}


def test_bucket_tagging(s3: Any, bucket: str) -> None:
    missing = s3_error(lambda: s3.get_bucket_tagging(Bucket=bucket))
    assert missing[:2] == (404, "NoSuchTagSet")
    tags = {f"k{i}": f"v{i}" for i in range(50)}
    put = s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(tags))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert {t["Key"]: t["Value"] for t in got} == tags
    too_many = {f"k{i}": "v" for i in range(51)}
    error = s3_error(lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(too_many)))
    assert error[:2] == (400, "InvalidTag")
    assert "50" in error[2]
    deleted = s3.delete_bucket_tagging(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3_error(lambda: s3.get_bucket_tagging(Bucket=bucket))[:2] == (404, "NoSuchTagSet")
    for call in (
        lambda: s3.get_bucket_tagging(Bucket="no-such-bucket-x"),
        lambda: s3.put_bucket_tagging(Bucket="no-such-bucket-x", Tagging=tag_set({"k": "v"})),
        lambda: s3.delete_bucket_tagging(Bucket="no-such-bucket-x"),
    ):
        assert s3_error(call)[:2] == (404, "NoSuchBucket")


def test_bucket_tags_go_with_the_bucket(s3: Any, bucket_name: Any) -> None:
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging=tag_set({"k": "v"}))
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    assert s3_error(lambda: s3.get_bucket_tagging(Bucket=name))[:2] == (404, "NoSuchTagSet")


def test_put_object_with_tagging_header(s3: Any, bucket: str) -> None:
    header = urlencode({"env": "prod", "team": "wéb ops", "empty": ""})
    s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging=header)
    assert tags_of(s3, bucket, "h") == {"env": "prod", "team": "wéb ops", "empty": ""}
    assert s3.get_object(Bucket=bucket, Key="h")["TagCount"] == 3
    s3.put_object(Bucket=bucket, Key="h2", Body=b"x", Tagging="lonely")
    assert tags_of(s3, bucket, "h2") == {"lonely": ""}


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("a=1&a=2", "InvalidTag"),
        ("&".join(f"k{i}=v" for i in range(11)), "InvalidTag"),
        ("k%21=v", "InvalidTag"),
        ("aws%3Ax=v", "InvalidTag"),
        ("k=%FF", "InvalidArgument"),
    ],
)
def test_tagging_header_errors(s3: Any, bucket: str, header: str, code: str) -> None:
    error = s3_error(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging=header))
    assert error[:2] == (400, code)
    assert s3_error(lambda: s3.head_object(Bucket=bucket, Key="bad"))[0] == 404
    upload = s3_error(lambda: s3.create_multipart_upload(Bucket=bucket, Key="bad", Tagging=header))
    assert upload[:2] == (400, code)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_overwrite_and_delete_clear_tags(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"same", Tagging="k=v")
    # A new object under the key, same bytes (same ETag): it has only its own tags.
    s3.put_object(Bucket=bucket, Key="o", Body=b"same")
    assert tags_of(s3, bucket, "o") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="o")
    s3.put_object(Bucket=bucket, Key="o", Body=b"same", Tagging="k=v")
    s3.put_object(Bucket=bucket, Key="o", Body=b"other", Tagging="n=1")
    assert tags_of(s3, bucket, "o") == {"n": "1"}
    s3.delete_object(Bucket=bucket, Key="o")
    s3.put_object(Bucket=bucket, Key="o", Body=b"same")
    assert tags_of(s3, bucket, "o") == {}
    s3.put_object_tagging(Bucket=bucket, Key="o", Tagging=tag_set({"k": "v"}))
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "o"}]})
    s3.put_object(Bucket=bucket, Key="o", Body=b"same")
    assert tags_of(s3, bucket, "o") == {}


def test_copy_tagging_directive(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1&b=2")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3, bucket, "copy") == {"a": "1", "b": "2"}
    s3.copy_object(
        Bucket=bucket,
        Key="copy-header-ignored",
        CopySource={"Bucket": bucket, "Key": "src"},
        Tagging="ignored=1",
    )
    assert tags_of(s3, bucket, "copy-header-ignored") == {"a": "1", "b": "2"}
    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE",
        Tagging="c=3",
    )
    assert tags_of(s3, bucket, "replaced") == {"c": "3"}
    s3.copy_object(
        Bucket=bucket,
        Key="cleared",
        CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE",
    )
    assert tags_of(s3, bucket, "cleared") == {}
    # Copying onto itself with new metadata keeps the tags (COPY) or replaces them.
    s3.copy_object(
        Bucket=bucket,
        Key="src",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
    )
    assert tags_of(s3, bucket, "src") == {"a": "1", "b": "2"}
    # A copy over a tagged object replaces its tags with the source's (none here).
    s3.put_object(Bucket=bucket, Key="plain", Body=b"y")
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "plain"})
    assert tags_of(s3, bucket, "src") == {}
    error = s3_error(
        lambda: s3.copy_object(
            Bucket=bucket,
            Key="bad",
            CopySource={"Bucket": bucket, "Key": "plain"},
            TaggingDirective="MERGE",
        )
    )
    assert error[:2] == (400, "InvalidArgument")
    error = s3_error(
        lambda: s3.copy_object(
            Bucket=bucket,
            Key="bad",
            CopySource={"Bucket": bucket, "Key": "plain"},
            TaggingDirective="REPLACE",
            Tagging="x=1&x=2",
        )
    )
    assert error[:2] == (400, "InvalidTag")


def test_multipart_upload_tags_apply_on_completion(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="mp", Body=b"old", Tagging="old=1")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="stage=done&n=2")
    # Until it completes, the key's object keeps its own tags.
    assert tags_of(s3, bucket, "mp") == {"old": "1"}
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 10
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert tags_of(s3, bucket, "mp") == {"stage": "done", "n": "2"}
    assert s3.get_object(Bucket=bucket, Key="mp")["TagCount"] == 2
    # An upload without tags makes an untagged object; an aborted one changes nothing.
    aborted = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="never=1")
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=aborted["UploadId"])
    assert tags_of(s3, bucket, "mp") == {"stage": "done", "n": "2"}
    plain = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=plain["UploadId"], PartNumber=1, Body=b"q" * 10
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=plain["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert tags_of(s3, bucket, "mp") == {}
