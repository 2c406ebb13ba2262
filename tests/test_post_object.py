"""POST Object: HTML form uploads signed with a POST policy (SigV4 and SigV2), the policy's
expiration and conditions, the answers a form asks for, and every refusal as S3's XML error.
In-process (the memory translator); forms made by boto3's ``generate_presigned_post``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lxml import etree

from core.errors import S3Error
from gateway.post_form import MAX_FIELD_BYTES
from gateway.post_policy import check_form, parse_post_policy
from gateway.settings import Settings
from gateway.sigv4_signing import signing_key
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def s3v4(gateway: InProcessGateway) -> Any:
    return make_s3_client(gateway, signature_version="s3v4")


def post(
    form: dict[str, Any],
    data: bytes = b"hello form",
    filename: str = "hello.txt",
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """Send ``form`` (as generate_presigned_post gives it) with ``extra`` fields and a file."""
    fields = {**form["fields"], **(extra or {})}
    return httpx.post(form["url"], data=fields, files={"file": (filename, data, "text/plain")})


def error(response: httpx.Response) -> tuple[int, str, str]:
    root = etree.fromstring(response.content)
    return response.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def absent(s3: Any, bucket: str, key: str) -> bool:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return not any(item["Key"] == key for item in listed)


def test_a_sigv4_form_uploads_with_its_metadata(s3v4: Any, s3: Any, bucket: str) -> None:
    form = s3v4.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-team": "web"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            ["starts-with", "$Content-Type", "text/"],
            {"x-amz-meta-team": "web"},
            ["content-length-range", 1, 1024],
        ],
    )
    assert "x-amz-signature" in form["fields"]
    answer = post(form, b"first upload")
    assert answer.status_code == 204
    assert answer.headers["location"].endswith(f"/{bucket}/uploads/hello.txt")
    head = s3.head_object(Bucket=bucket, Key="uploads/hello.txt")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"team": "web"}
    assert answer.headers["etag"] == head["ETag"]
    assert read(s3, bucket, "uploads/hello.txt") == b"first upload"


def test_a_sigv2_form_uploads(s3: Any, bucket: str) -> None:
    form = s3.generate_presigned_post(bucket, "v2.bin")
    assert "signature" in form["fields"]
    assert "AWSAccessKeyId" in form["fields"]
    assert post(form, b"\x00\x01binary").status_code == 204
    assert read(s3, bucket, "v2.bin") == b"\x00\x01binary"


def test_the_answer_follows_the_form(s3v4: Any, s3: Any, bucket: str) -> None:
    created = s3v4.generate_presigned_post(
        bucket,
        "a.txt",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}],
    )
    answer = post(created)
    assert answer.status_code == 201
    root = etree.fromstring(answer.content)
    assert root.tag == f"{NS}PostResponse"
    assert (root.findtext(f"{NS}Bucket"), root.findtext(f"{NS}Key")) == (bucket, "a.txt")
    assert root.findtext(f"{NS}ETag") == s3.head_object(Bucket=bucket, Key="a.txt")["ETag"]

    ok = s3v4.generate_presigned_post(
        bucket,
        "b.txt",
        Fields={"success_action_status": "200"},
        Conditions=[{"success_action_status": "200"}],
    )
    assert (post(ok).status_code, post(ok).content) == (200, b"")

    target = "https://site.example/done?from=form"
    redirected = s3v4.generate_presigned_post(
        bucket,
        "c.txt",
        Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}],
    )
    answer = post(redirected)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(target + "&bucket=" + bucket + "&key=c.txt&etag=")
    assert read(s3, bucket, "c.txt") == b"hello form"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"key": "elsewhere/x.txt"}, (403, "AccessDenied", "Policy Condition failed")),
        ({"x-amz-meta-extra": "1"}, (403, "AccessDenied", "Extra input fields: x-amz-meta-extra")),
        ({"x-amz-signature": "0" * 64}, (403, "SignatureDoesNotMatch", "")),
        ({"policy": "bm90IEpTT04="}, (403, "SignatureDoesNotMatch", "")),
        ({"x-amz-algorithm": "AWS4-HMAC-SHA1"}, (400, "InvalidArgument", "AWS4-HMAC-SHA256")),
    ],
)
def test_forms_the_policy_or_signature_refuse(
    s3v4: Any, s3: Any, bucket: str, change: dict[str, str], expected: tuple[int, str, str]
) -> None:
    form = s3v4.generate_presigned_post(
        bucket, "in/${filename}", Conditions=[["starts-with", "$key", "in/"]]
    )
    status, code, message = error(post(form, extra=change))
    assert (status, code) == expected[:2]
    assert expected[2] in message
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_an_expired_policy_and_an_unknown_key_are_refused(s3v4: Any, bucket: str) -> None:
    expired = s3v4.generate_presigned_post(bucket, "late.txt", ExpiresIn=-5)
    assert error(post(expired)) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )
    form = s3v4.generate_presigned_post(bucket, "x.txt")
    scope = form["fields"]["x-amz-credential"].split("/", 1)[1]
    status, code, _ = error(post(form, extra={"x-amz-credential": f"NOSUCHKEY/{scope}"}))
    assert (status, code) == (403, "InvalidAccessKeyId")
    region = form["fields"]["x-amz-credential"].replace("us-east-1", "eu-west-3")
    assert error(post(form, extra={"x-amz-credential": region}))[:2] == (400, "InvalidArgument")


def test_content_length_range_is_enforced_while_the_file_streams(
    s3v4: Any, s3: Any, bucket: str
) -> None:
    form = s3v4.generate_presigned_post(
        bucket, "sized.bin", Conditions=[["content-length-range", 10, 20]]
    )
    status, code, _ = error(post(form, b"x" * 21))
    assert (status, code) == (400, "EntityTooLarge")
    status, code, _ = error(post(form, b"x" * 9))
    assert (status, code) == (400, "EntityTooSmall")
    assert absent(s3, bucket, "sized.bin")
    assert post(form, b"x" * 20).status_code == 204
    assert read(s3, bucket, "sized.bin") == b"x" * 20


def test_malformed_forms_are_s3_errors(s3v4: Any, bucket: str, gateway: InProcessGateway) -> None:
    form = s3v4.generate_presigned_post(bucket, "k.txt")
    url = form["url"]
    not_a_form = httpx.post(url, data=form["fields"])  # urlencoded, no file
    assert error(not_a_form)[:2] == (412, "PreconditionFailed")
    no_file = httpx.post(url, data=form["fields"], files={"other": ("a", b"a")})
    assert error(no_file)[:2] == (400, "InvalidArgument")
    no_key = {k: v for k, v in form["fields"].items() if k != "key"}
    answer = httpx.post(url, data=no_key, files={"file": ("a", b"a")})
    assert error(answer)[:3] == (
        403,
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "k.txt"]',
    )
    unsigned_without_key = httpx.post(url, data={"acl": "private"}, files={"file": ("a", b"a")})
    assert error(unsigned_without_key)[:2] == (400, "InvalidArgument")
    # A policy that is not a policy, correctly signed: InvalidPolicyDocument.
    bad_policy = base64.b64encode(b'{"conditions": []}').decode()
    date = form["fields"]["x-amz-date"][:8]
    key = signing_key(gateway.secret_key, date, gateway.region)
    signature = hmac.new(key, bad_policy.encode(), hashlib.sha256).hexdigest()
    fields = {**form["fields"], "policy": bad_policy, "x-amz-signature": signature}
    answer = httpx.post(url, data=fields, files={"file": ("a", b"a")})
    assert error(answer) == (
        400,
        "InvalidPolicyDocument",
        "Invalid Policy: Policy missing expiration.",
    )
    huge = {**form["fields"], "x-ignore-padding": "p" * (MAX_FIELD_BYTES + 1)}
    answer = httpx.post(url, data=huge, files={"file": ("a", b"a")})
    assert error(answer)[:2] == (400, "MaxPostPreDataLengthExceededError")
    garbage = httpx.post(
        url,
        content=b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert error(garbage)[:2] == (400, "MalformedPOSTRequest")


def test_the_signer_needs_put_object_on_the_key(s3v4: Any, s3: Any, bucket: str) -> None:
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/locked/*",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "public-read"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
    form = s3v4.generate_presigned_post(bucket, "locked/x.txt")
    assert error(post(form))[:2] == (403, "AccessDenied")
    public = s3v4.generate_presigned_post(
        bucket,
        "open/public.txt",
        Fields={"acl": "public-read"},
        Conditions=[{"acl": "public-read"}],
    )
    assert error(post(public))[:2] == (403, "AccessDenied")  # the form's acl is a condition key
    private = s3v4.generate_presigned_post(
        bucket, "open/private.txt", Fields={"acl": "private"}, Conditions=[{"acl": "private"}]
    )
    assert post(private).status_code == 204
    assert post(s3v4.generate_presigned_post(bucket, "open/x.txt")).status_code == 204
    # Unsigned forms are anonymous: refused without a grant to anyone.
    unsigned = {"url": form["url"], "fields": {"key": "open/anon.txt"}}
    assert error(post(unsigned))[:2] == (403, "AccessDenied")
    assert absent(s3, bucket, "open/anon.txt")


def test_an_unsigned_form_is_served_where_anyone_may_write(s3: Any, bucket: str) -> None:
    s3.delete_public_access_block(Bucket=bucket)
    anyone = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/drop/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(anyone))
    url = s3.generate_presigned_post(bucket, "x")["url"]
    assert post({"url": url, "fields": {"key": "drop/${filename}"}}).status_code == 204
    assert read(s3, bucket, "drop/hello.txt") == b"hello form"
    assert error(post({"url": url, "fields": {"key": "other.txt"}}))[:2] == (403, "AccessDenied")


@pytest.fixture(scope="module")
def small_quota_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    settings = Settings(log_level="warning")
    settings = replace(settings, policy=replace(settings.policy, quota_bytes=100))
    with in_process_gateway(tmp_path_factory.mktemp("post-quota") / "data", settings) as server:
        yield server


def test_a_form_upload_counts_against_the_quota(small_quota_gateway: InProcessGateway) -> None:
    s3 = make_s3_client(small_quota_gateway, signature_version="s3v4")
    s3.create_bucket(Bucket="quota-site")
    form = s3.generate_presigned_post("quota-site", "big.bin")
    status, code, _ = error(post(form, b"x" * 101))
    assert (status, code) == (403, "QuotaExceeded")
    assert absent(s3, "quota-site", "big.bin")
    assert post(form, b"x" * 100).status_code == 204


def test_a_policy_is_checked_by_its_own_rules() -> None:
    def encoded(document: Any) -> str:
        return base64.b64encode(json.dumps(document).encode()).decode()

    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    policy = parse_post_policy(
        encoded(
            {
                "expiration": later,
                "conditions": [
                    {"bucket": "site"},
                    ["eq", "$Key", "a.txt"],
                    ["starts-with", "$content-type", "image/"],
                    ["content-length-range", "1", 5],
                ],
            }
        )
    )
    assert policy.length_range == (1, 5)
    now = datetime.now(UTC)
    check_form(policy, {"key": "a.txt", "content-type": "image/png"}, "site", now)
    for fields, bucket in (
        ({"key": "a.txt", "content-type": "image/png,text/html"}, "site"),
        ({"key": "a.txt", "content-type": "image/png"}, "other"),
        ({"key": "b.txt", "content-type": "image/png"}, "site"),
    ):
        with pytest.raises(S3Error) as refused:
            check_form(policy, fields, bucket, now)
        assert refused.value.code == "AccessDenied"
    documents: tuple[Any, ...] = (
        {"conditions": []},
        {"expiration": "soon", "conditions": []},
        {"expiration": later},
        {"expiration": later, "conditions": [["between", "$key", "a"]]},
        {"expiration": later, "conditions": [{"a": "1", "b": "2"}]},
        {"expiration": later, "conditions": [["content-length-range", -1, 5]]},
        [],
    )
    for document in documents:
        with pytest.raises(S3Error) as invalid:
            parse_post_policy(encoded(document))
        assert invalid.value.code == "InvalidPolicyDocument"


def test_form_files_are_streamed_not_buffered(s3v4: Any, s3: Any, bucket: str) -> None:
    """A file larger than any buffer the form reader keeps arrives whole."""
    data = bytes(range(256)) * 8192  # 2 MiB
    form = s3v4.generate_presigned_post(bucket, "large.bin")
    assert post(form, data).status_code == 204
    assert read(s3, bucket, "large.bin") == data


def test_a_form_tags_and_encrypts_its_object(s3v4: Any, s3: Any, bucket: str) -> None:
    """The form's ``tagging`` field (a Tagging document) tags the object, and an encrypted
    upload's answer names its encryption as PutObject's does."""
    tagging = (
        "<Tagging><TagSet><Tag><Key>team</Key><Value>web ops</Value></Tag>"
        "<Tag><Key>stage</Key><Value>2</Value></Tag></TagSet></Tagging>"
    )
    form = s3v4.generate_presigned_post(
        bucket,
        "tagged.txt",
        Fields={"tagging": tagging, "x-amz-server-side-encryption": "AES256"},
        Conditions=[{"tagging": tagging}, {"x-amz-server-side-encryption": "AES256"}],
    )
    answer = post(form, b"tagged and sealed")
    assert answer.status_code == 204, answer.text
    assert answer.headers["x-amz-server-side-encryption"] == "AES256"
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged.txt")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "web ops", "stage": "2"}
    assert read(s3, bucket, "tagged.txt") == b"tagged and sealed"
    assert s3.head_object(Bucket=bucket, Key="tagged.txt")["ServerSideEncryption"] == "AES256"

    bad = "<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>"
    form = s3v4.generate_presigned_post(
        bucket, "badly-tagged.txt", Fields={"tagging": bad}, Conditions=[{"tagging": bad}]
    )
    status, code, _ = error(post(form))
    assert (status, code) == (400, "InvalidTag")
    assert absent(s3, bucket, "badly-tagged.txt")


def test_a_form_checksum_is_checked_and_kept(s3v4: Any, s3: Any, bucket: str) -> None:
    """A form's ``x-amz-checksum-<algorithm>`` field is the file's: a match stores the object
    with that checksum, a mismatch is ``BadDigest`` with nothing stored, and a malformed or
    doubled one is ``InvalidRequest``."""
    data = b"checked form"
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    def form_with(key: str, fields: dict[str, str]) -> dict[str, Any]:
        return dict(
            s3v4.generate_presigned_post(
                bucket, key, Fields=fields, Conditions=[{n: v} for n, v in fields.items()]
            )
        )

    ok = post(form_with("sum.txt", {"x-amz-checksum-sha256": good}), data)
    assert ok.status_code == 204, ok.text
    head = s3.head_object(Bucket=bucket, Key="sum.txt", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == good
    assert read(s3, bucket, "sum.txt") == data

    wrong = post(form_with("wrong.txt", {"x-amz-checksum-sha256": bad}), data)
    assert error(wrong)[:2] == (400, "BadDigest")
    assert absent(s3, bucket, "wrong.txt")
    garbled = post(form_with("garbled.txt", {"x-amz-checksum-crc32": "nope"}), data)
    assert error(garbled)[:2] == (400, "InvalidRequest")
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    both = {"x-amz-checksum-sha256": good, "x-amz-checksum-crc32": crc}
    assert error(post(form_with("both.txt", both), data))[:2] == (400, "InvalidRequest")
