"""Tags seen from outside the S3 tagging calls: the artifact API's search by tag (every
exchange checked against openapi.json), and each tagging operation's permission (AWS's IAM
actions, decided like every other request)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config

from tests.support.artifact_api import ApiClient, artifact_bytes, create_api_key
from tests.support.gateway import InProcessGateway
from tests.support.s3_errors import s3_error


@pytest.fixture(scope="module")
def api_key(gateway: InProcessGateway) -> str:
    return create_api_key(gateway)


@pytest.fixture
def api(gateway: InProcessGateway, api_key: str) -> Iterator[ApiClient]:
    with ApiClient(gateway, api_key) as client:
        yield client


def _upload(s3: Any, bucket: str, build: str, tags: dict[str, str]) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=f"builds/{build}.tar.gz",
        Body=artifact_bytes(f"{bucket}/{build}", 0, compress=True),
        Tagging=urlencode(tags),
    )


def test_search_artifacts_by_tag(api: ApiClient, s3: Any, bucket_name: Callable[[], str]) -> None:
    team = f"t{uuid.uuid4().hex[:12]}"  # a unique value: other tests' artifacts never match
    one, two = bucket_name(), bucket_name()
    for site in (one, two):
        s3.create_bucket(Bucket=site)
        _upload(s3, site, "x1", {"team:web": team, "env": "prod"})
        _upload(s3, site, "x2", {"team:web": team, "env": "staging"})
        _upload(s3, site, "x3", {"team:web": "other"})
    found = api.get("/artifacts/search", params={"tag.team:web": team}).json()
    assert {(i["site"], i["build_id"]) for i in found["items"]} == {
        (site, build) for site in (one, two) for build in ("x1", "x2")
    }
    both = api.get("/artifacts/search", params={"tag.team:web": team, "tag.env": "prod"}).json()
    assert {(i["site"], i["build_id"]) for i in both["items"]} == {(one, "x1"), (two, "x1")}
    assert both["items"][0]["tags"] == {"env": "prod", "team:web": team}
    scoped = api.get("/artifacts/search", params={"tag.team:web": team, "site": two}).json()
    assert {i["build_id"] for i in scoped["items"]} == {"x1", "x2"}
    # Tags changed later are searched as they are now; a replaced artifact loses its tags.
    s3.put_object_tagging(
        Bucket=one,
        Key="builds/x3.tar.gz",
        Tagging={"TagSet": [{"Key": "team:web", "Value": team}]},
    )
    _upload(s3, one, "x1", {})
    now = api.get("/artifacts/search", params={"tag.team:web": team, "site": one}).json()
    assert {i["build_id"] for i in now["items"]} == {"x2", "x3"}
    listed = api.get(f"/sites/{one}/artifacts").json()
    assert {i["build_id"]: i["tags"] for i in listed["items"]}["x1"] == {}


@pytest.mark.parametrize(
    "query",
    [
        "tag.bad%21key=x",
        "tag.k=bad%23value",
        "tag." + "k" * 129 + "=x",
        "tag.k=" + "v" * 257,
        "tag.k=a&tag.k=b",
    ],
)
def test_search_tag_parameters(api: ApiClient, query: str) -> None:
    response = api.get(f"/artifacts/search?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidArgument"


def test_a_site_listing_takes_no_tag_filter(api: ApiClient, bucket: str) -> None:
    response = api.get(f"/sites/{bucket}/artifacts?tag.env=prod")
    assert response.status_code == 400


# Permissions


def _client(service: Literal["iam", "s3"], gateway: InProcessGateway, key: str, secret: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=gateway.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=gateway.region,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def _user_with(gateway: InProcessGateway, bucket: str, *actions: str) -> Any:
    """An S3 client of a new IAM user allowed ``actions`` on ``bucket`` and its objects."""
    iam = _client("iam", gateway, gateway.access_key, gateway.secret_key)
    name = f"tagger-{uuid.uuid4().hex[:10]}"
    iam.create_user(UserName=name)
    statement = {
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return _client("s3", gateway, key["AccessKeyId"], key["SecretAccessKey"])


TAGS = {"TagSet": [{"Key": "k", "Value": "v"}]}


def test_each_tagging_operation_needs_its_action(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", Tagging="k=v")
    s3.put_bucket_tagging(Bucket=bucket, Tagging=TAGS)
    nobody = _user_with(gateway, bucket, "s3:GetObject", "s3:PutObject")
    denied = [
        lambda: nobody.get_object_tagging(Bucket=bucket, Key="o"),
        lambda: nobody.put_object_tagging(Bucket=bucket, Key="o", Tagging=TAGS),
        lambda: nobody.delete_object_tagging(Bucket=bucket, Key="o"),
        lambda: nobody.get_bucket_tagging(Bucket=bucket),
        lambda: nobody.put_bucket_tagging(Bucket=bucket, Tagging=TAGS),
        lambda: nobody.delete_bucket_tagging(Bucket=bucket),
        # A write that sets tags needs s3:PutObjectTagging too; a copy that takes its
        # source's tags, s3:GetObjectTagging on the source.
        lambda: nobody.put_object(Bucket=bucket, Key="n", Body=b"x", Tagging="k=v"),
        lambda: nobody.create_multipart_upload(Bucket=bucket, Key="n", Tagging="k=v"),
        lambda: nobody.copy_object(Bucket=bucket, Key="n", CopySource=f"{bucket}/o"),
    ]
    for call in denied:
        assert s3_error(call)[:2] == (403, "AccessDenied")
    # The tag count is shown only to callers who may read the tags, as in AWS.
    assert "TagCount" not in nobody.get_object(Bucket=bucket, Key="o")
    assert (
        "x-amz-tagging-count"
        not in (nobody.head_object(Bucket=bucket, Key="o")["ResponseMetadata"]["HTTPHeaders"])
    )
    # Writes without tags, and a copy that drops the source's tags, need no tagging action.
    nobody.put_object(Bucket=bucket, Key="n", Body=b"x")
    nobody.copy_object(
        Bucket=bucket, Key="n2", CopySource=f"{bucket}/o", TaggingDirective="REPLACE"
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="n2")["TagSet"] == []

    reader = _user_with(
        gateway, bucket, "s3:GetObject", "s3:GetObjectTagging", "s3:GetBucketTagging"
    )
    assert reader.get_object(Bucket=bucket, Key="o")["TagCount"] == 1
    assert reader.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == TAGS["TagSet"]
    assert reader.get_bucket_tagging(Bucket=bucket)["TagSet"] == TAGS["TagSet"]
    assert s3_error(lambda: reader.delete_object_tagging(Bucket=bucket, Key="o"))[1] == (
        "AccessDenied"
    )

    tagger = _user_with(
        gateway,
        bucket,
        "s3:GetObject",
        "s3:PutObject",
        "s3:GetObjectTagging",
        "s3:PutObjectTagging",
        "s3:DeleteObjectTagging",
        "s3:PutBucketTagging",
    )
    tagger.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1")
    tagger.copy_object(Bucket=bucket, Key="t2", CopySource=f"{bucket}/o")
    assert s3.get_object_tagging(Bucket=bucket, Key="t2")["TagSet"] == TAGS["TagSet"]
    tagger.put_object_tagging(Bucket=bucket, Key="t", Tagging=TAGS)
    tagger.delete_object_tagging(Bucket=bucket, Key="t")
    # DeleteBucketTagging is s3:PutBucketTagging, as in AWS.
    tagger.put_bucket_tagging(Bucket=bucket, Tagging=TAGS)
    tagger.delete_bucket_tagging(Bucket=bucket)
    assert s3_error(lambda: s3.get_bucket_tagging(Bucket=bucket))[1] == "NoSuchTagSet"


def test_a_multipart_artifact_gets_its_tags(api: ApiClient, s3: Any, bucket: str) -> None:
    """A multipart artifact is staged and validated below the catalog; the tags its upload
    asked for are its own once it completes, and the search finds it."""
    key = "builds/mp1.tar.gz"
    data = artifact_bytes(f"{bucket}/mp1", 0, compress=True)
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, Tagging="kind=multipart")
    part = s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
        {"Key": "kind", "Value": "multipart"}
    ]
    found = api.get("/artifacts/search", params={"tag.kind": "multipart", "site": bucket}).json()
    assert [i["build_id"] for i in found["items"]] == ["mp1"]
