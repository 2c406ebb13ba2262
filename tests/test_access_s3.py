"""S3's access-control surface on a real gateway: bucket policies and their status, the public
access block, object ownership, ACLs, and anonymous requests served exactly where a policy or
ACL grants them."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.settings import Settings
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway


def anonymous(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """An unsigned request, as curl would send it: (status, body)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def code_of(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def public_read_policy(bucket: str, prefix: str = "") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
                }
            ],
        }
    )


def test_a_new_bucket_has_aws_defaults(s3: Any, bucket: str) -> None:
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_policy(Bucket=bucket)
    assert code_of(caught) == "NoSuchBucketPolicy"
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]


def test_anonymous_requests_are_refused_without_a_grant(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<h1>hi</h1>")
    for method, path in (
        ("GET", "/index.html"),
        ("HEAD", "/index.html"),
        ("GET", ""),
        ("DELETE", "/index.html"),
    ):
        status, body = anonymous(f"{gateway.endpoint}/{bucket}{path}", method)
        assert status == 403, (method, path)
        if method != "HEAD":
            assert b"<Code>AccessDenied</Code>" in body
    status, _ = anonymous(f"{gateway.endpoint}/")
    assert status == 403
    assert s3.get_object(Bucket=bucket, Key="index.html")["Body"].read() == b"<h1>hi</h1>"


def test_a_public_policy_waits_for_the_block_to_be_lifted(
    gateway: InProcessGateway, s3: Any, bucket: str, bucket_name: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"public page")
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
    assert code_of(caught) == "AccessDenied"
    s3.delete_public_access_block(Bucket=bucket)
    with pytest.raises(ClientError) as caught:
        s3.get_public_access_block(Bucket=bucket)
    assert code_of(caught) == "NoSuchPublicAccessBlockConfiguration"
    s3.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(
        public_read_policy(bucket)
    )
    assert anonymous(f"{gateway.endpoint}/{bucket}/index.html") == (200, b"public page")
    # Only what the policy grants: no listing, no writes, nothing on other sites.
    assert anonymous(f"{gateway.endpoint}/{bucket}")[0] == 403
    assert anonymous(f"{gateway.endpoint}/{bucket}/new", "PUT", b"x")[0] == 403
    other = bucket_name()
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key="index.html", Body=b"private")
    assert anonymous(f"{gateway.endpoint}/{other}/index.html")[0] == 403
    # RestrictPublicBuckets turns the public policy off for anonymous callers.
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": True,
        },
    )
    assert anonymous(f"{gateway.endpoint}/{bucket}/index.html")[0] == 403
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_policy(Bucket=bucket)
    assert code_of(caught) == "NoSuchBucketPolicy"


def test_an_explicit_deny_binds_root_too(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret/key.pem", Body=b"k")
    s3.put_object(Bucket=bucket, Key="public/a.txt", Body=b"a")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NoSecrets",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/secret/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="secret/key.pem")
    assert code_of(caught) == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"a"
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="secret/key.pem")["Body"].read() == b"k"


def test_secure_transport_condition(s3: Any, bucket: str) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="k", Body=b"over plain http")
    assert code_of(caught) == "AccessDenied"
    # The policy denies its own removal over plain HTTP as well, as S3 would; root can lift
    # it only over TLS, so this test's site keeps it.
    with pytest.raises(ClientError) as caught:
        s3.delete_bucket_policy(Bucket=bucket)
    assert code_of(caught) == "AccessDenied"


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ("{not json", "JSON"),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::elsewhere/*",
                    }
                ]
            },
            "resource",
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::BUCKET/*",
                        "Condition": {"StringEquals": {"aws:NoSuchKey": "x"}},
                    }
                ]
            },
            "aws:NoSuchKey",
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::BUCKET/*",
                        "Condition": {"StringSortOf": {"s3:prefix": "x"}},
                    }
                ]
            },
            "StringSortOf",
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::BUCKET/*",
                    }
                ]
            },
            "Principal",
        ),
    ],
)
def test_a_malformed_policy_is_refused_and_names_its_fault(
    s3: Any, bucket: str, document: Any, needle: str
) -> None:
    text = document if isinstance(document, str) else json.dumps(document).replace("BUCKET", bucket)
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=bucket, Policy=text)
    assert code_of(caught) == "MalformedPolicy"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert needle.lower() in caught.value.response["Error"]["Message"].lower()
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=bucket)


def test_acls_are_off_until_ownership_allows_them(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert code_of(caught) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert code_of(caught) == "AccessControlListNotSupported"
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    # Still blocked: the public access block refuses public ACLs.
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="page.html", Body=b"page", ACL="public-read")
    assert code_of(caught) == "AccessDenied"
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"page", ACL="public-read")
    grants = s3.get_object_acl(Bucket=bucket, Key="page.html")["Grants"]
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [
        g["Grantee"] for g in grants
    ]
    assert anonymous(f"{gateway.endpoint}/{bucket}/page.html") == (200, b"page")
    assert anonymous(f"{gateway.endpoint}/{bucket}/k")[0] == 403
    # Overwritten without an ACL, the object is private again.
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"page 2")
    assert anonymous(f"{gateway.endpoint}/{bucket}/page.html")[0] == 403
    s3.put_object_acl(Bucket=bucket, Key="page.html", ACL="public-read")
    assert anonymous(f"{gateway.endpoint}/{bucket}/page.html") == (200, b"page 2")
    # A public bucket ACL lets anyone list; enforcing ownership is refused while it stands.
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    status, body = anonymous(f"{gateway.endpoint}/{bucket}?list-type=2")
    assert status == 200
    assert b"<Key>page.html</Key>" in body
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_ownership_controls(
            Bucket=bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        )
    assert code_of(caught) == "InvalidBucketAclWithObjectOwnership"
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    # Enforced ownership disables ACLs: the object's public grant no longer counts.
    assert anonymous(f"{gateway.endpoint}/{bucket}/page.html")[0] == 403


def test_explicit_grants_by_header_and_body(s3: Any, bucket: str) -> None:
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}
    )
    reader = "a" * 64
    s3.put_bucket_acl(Bucket=bucket, GrantRead=f'id="{reader}"')
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert grants == [{"Grantee": {"Type": "CanonicalUser", "ID": reader}, "Permission": "READ"}]
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    s3.put_bucket_acl(
        Bucket=bucket,
        AccessControlPolicy={
            "Owner": owner,
            "Grants": [
                {
                    "Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]},
                    "Permission": "FULL_CONTROL",
                }
            ],
        },
    )
    assert [g["Permission"] for g in s3.get_bucket_acl(Bucket=bucket)["Grants"]] == ["FULL_CONTROL"]
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_acl(Bucket=bucket, GrantRead='emailAddress="someone@example.com"')
    assert code_of(caught) == "UnresolvableGrantByEmailAddress"


def test_source_ip_conditions_honour_only_trusted_proxies(tmp_path: Path) -> None:
    settings = replace(Settings(log_level="warning"), trusted_proxies=("127.0.0.1",))
    with in_process_gateway(tmp_path / "data", settings) as gateway:
        s3 = make_s3_client(gateway)
        s3.create_bucket(Bucket="site")
        s3.put_object(Bucket="site", Key="index.html", Body=b"office only")
        s3.delete_public_access_block(Bucket="site")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Office",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::site/*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
                }
            ],
        }
        s3.put_bucket_policy(Bucket="site", Policy=json.dumps(policy))
        assert s3.get_bucket_policy_status(Bucket="site")["PolicyStatus"]["IsPublic"] is False
        url = f"{gateway.endpoint}/site/index.html"
        assert anonymous(url)[0] == 403
        assert anonymous(url, headers={"X-Forwarded-For": "10.1.2.3"}) == (200, b"office only")
        assert anonymous(url, headers={"X-Forwarded-For": "192.0.2.7"})[0] == 403
        # The client's own claim before an untrusted hop is not believed.
        assert anonymous(url, headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.7"})[0] == 403


def test_every_denial_and_every_change_is_audited(
    gateway: InProcessGateway, s3: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pagewright.audit"):
        s3.put_object(Bucket=bucket, Key="docs/a.txt", Body=b"a")
        s3.get_object(Bucket=bucket, Key="docs/a.txt")
        anonymous(f"{gateway.endpoint}/{bucket}/docs/a.txt")
    lines: list[Any] = [r for r in caplog.records if r.name == "pagewright.audit"]
    put = [
        r for r in lines if getattr(r, "operation", None) == "PutObject" and r.key == "docs/a.txt"
    ]
    assert len(put) == 1
    assert (put[0].principal, put[0].decision, put[0].site, put[0].status) == (
        "root",
        "allow",
        bucket,
        200,
    )
    assert not [
        r for r in lines if getattr(r, "operation", None) == "GetObject" and r.decision == "allow"
    ]
    denied = [r for r in lines if r.decision == "deny" and r.site == bucket]
    assert len(denied) == 1
    assert (denied[0].principal, denied[0].action, denied[0].source) == (
        "anonymous",
        "s3:GetObject",
        "127.0.0.1",
    )
    assert denied[0].statement is None
