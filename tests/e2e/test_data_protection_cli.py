"""Object lock, lifecycle, server-side encryption and CORS against a real gateway process on
the filesystem default, driven with the aws cli (``aws s3api``, ``aws s3 cp``) and checked
with its JSON output, boto3, the files in the data dir and a browser's preflight (httpx)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from policy.sse_crypto import cipher_size
from tests.e2e.test_tagging_cli import aws_cli
from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer, running_gateway

Aws = Callable[..., Any]


def test_data_protection_with_the_aws_cli(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "data") as gateway:
        aws = aws_cli(gateway, tmp_path)
        _object_lock(aws, gateway, tmp_path)
        _lifecycle(aws)
        _encryption(aws, gateway, tmp_path)
        _cors(aws, gateway)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _refused(aws: Aws, code: str, *args: str | Path) -> None:
    """``aws ARGS`` fails (non-zero exit) with S3 error ``code``."""
    failed = aws(*args, check=False)
    assert failed.returncode != 0, failed.stdout
    assert f"({code})" in failed.stderr, failed.stderr


def _when(text: str) -> datetime:
    """A timestamp as the cli prints it (ISO 8601, or an HTTP date from a header)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return parsedate_to_datetime(text)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _object_lock(aws: Aws, gateway: GatewayServer, tmp_path: Path) -> None:
    bucket = _name("locked")
    body = tmp_path / "kept.txt"
    body.write_bytes(b"kept")
    aws("s3api", "create-bucket", "--bucket", bucket, "--object-lock-enabled-for-bucket")
    assert aws("s3api", "get-bucket-versioning", "--bucket", bucket)["Status"] == "Enabled"
    config = {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
    }
    aws("s3api", "put-object-lock-configuration", "--bucket", bucket,
        "--object-lock-configuration", json.dumps(config))  # fmt: skip
    got = aws("s3api", "get-object-lock-configuration", "--bucket", bucket)
    assert got["ObjectLockConfiguration"] == config

    # The default retention: GOVERNANCE for a day; deleting the version needs the bypass.
    version = aws("s3api", "put-object", "--bucket", bucket, "--key", "k",
                  "--body", body)["VersionId"]  # fmt: skip
    head = aws("s3api", "head-object", "--bucket", bucket, "--key", "k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = _when(head["ObjectLockRetainUntilDate"])
    now = datetime.now(UTC)
    assert now + timedelta(hours=23) < until < now + timedelta(hours=25)
    _refused(aws, "AccessDenied", "s3api", "delete-object", "--bucket", bucket, "--key", "k",
             "--version-id", version)  # fmt: skip
    assert aws("s3api", "head-object", "--bucket", bucket, "--key", "k")["VersionId"] == version
    aws("s3api", "delete-object", "--bucket", bucket, "--key", "k", "--version-id", version,
        "--bypass-governance-retention")  # fmt: skip
    assert "Versions" not in aws("s3api", "list-object-versions", "--bucket", bucket)

    # A legal hold binds even with the bypass, until it is lifted.
    held = aws("s3api", "put-object", "--bucket", bucket, "--key", "h",
               "--body", body)["VersionId"]  # fmt: skip
    hold = ("--bucket", bucket, "--key", "h", "--version-id", held)
    assert aws("s3api", "get-object-legal-hold", *hold)["LegalHold"] == {"Status": "OFF"}
    aws("s3api", "put-object-legal-hold", *hold, "--legal-hold", "Status=ON")
    assert aws("s3api", "get-object-legal-hold", *hold)["LegalHold"] == {"Status": "ON"}
    assert aws("s3api", "head-object", *hold)["ObjectLockLegalHoldStatus"] == "ON"
    _refused(aws, "AccessDenied", "s3api", "delete-object", *hold,
             "--bypass-governance-retention")  # fmt: skip
    aws("s3api", "put-object-legal-hold", *hold, "--legal-hold", "Status=OFF")
    assert aws("s3api", "get-object-legal-hold", *hold)["LegalHold"] == {"Status": "OFF"}
    aws("s3api", "delete-object", *hold, "--bypass-governance-retention")

    # COMPLIANCE: no bypass, and the date can only move later.
    in_two_days = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    strict = aws("s3api", "put-object", "--bucket", bucket, "--key", "c", "--body", body,
                 "--object-lock-mode", "COMPLIANCE",
                 "--object-lock-retain-until-date", _iso(in_two_days))["VersionId"]  # fmt: skip
    target = ("--bucket", bucket, "--key", "c", "--version-id", strict)
    retention = aws("s3api", "get-object-retention", *target)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert _when(retention["RetainUntilDate"]) == in_two_days
    tomorrow = in_two_days - timedelta(days=1)
    shorter = json.dumps({"Mode": "COMPLIANCE", "RetainUntilDate": _iso(tomorrow)})
    _refused(aws, "AccessDenied", "s3api", "put-object-retention", *target,
             "--retention", shorter, "--bypass-governance-retention")  # fmt: skip
    _refused(aws, "AccessDenied", "s3api", "delete-object", *target,
             "--bypass-governance-retention")  # fmt: skip
    in_three_days = in_two_days + timedelta(days=1)
    longer = json.dumps({"Mode": "COMPLIANCE", "RetainUntilDate": _iso(in_three_days)})
    aws("s3api", "put-object-retention", *target, "--retention", longer)
    retention = aws("s3api", "get-object-retention", *target)["Retention"]
    assert _when(retention["RetainUntilDate"]) == in_three_days
    s3 = make_s3_client(gateway)
    assert s3.head_object(Bucket=bucket, Key="c")["ObjectLockRetainUntilDate"] == in_three_days


def _lifecycle(aws: Aws) -> None:
    bucket = _name("lifecycle")
    aws("s3api", "create-bucket", "--bucket", bucket)
    rules = [
        {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
         "Expiration": {"Days": 7}},
        {"ID": "old", "Filter": {"Prefix": "builds/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    ]  # fmt: skip
    _refused(aws, "NoSuchLifecycleConfiguration",
             "s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)  # fmt: skip
    aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
        "--lifecycle-configuration", json.dumps({"Rules": rules}))  # fmt: skip
    got = aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)
    assert got["Rules"] == rules

    # No storage classes here: a Transition is refused and the rules stay as they were.
    moving = {"ID": "cold", "Filter": {"Prefix": ""}, "Status": "Enabled",
              "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}  # fmt: skip
    _refused(aws, "InvalidStorageClass", "s3api", "put-bucket-lifecycle-configuration",
             "--bucket", bucket,
             "--lifecycle-configuration", json.dumps({"Rules": [moving]}))  # fmt: skip
    got = aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)
    assert got["Rules"] == rules

    aws("s3api", "delete-bucket-lifecycle", "--bucket", bucket)
    _refused(aws, "NoSuchLifecycleConfiguration",
             "s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket)  # fmt: skip


def _stored_files(gateway: GatewayServer) -> list[Path]:
    return [path for path in (gateway.data_dir / "storage").rglob("*") if path.is_file()]


def _encryption(aws: Aws, gateway: GatewayServer, tmp_path: Path) -> None:
    bucket = _name("sealed")
    aws("s3api", "create-bucket", "--bucket", bucket)
    _refused(aws, "ServerSideEncryptionConfigurationNotFoundError",
             "s3api", "get-bucket-encryption", "--bucket", bucket)  # fmt: skip
    default = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    aws("s3api", "put-bucket-encryption", "--bucket", bucket,
        "--server-side-encryption-configuration", json.dumps(default))  # fmt: skip
    got = aws("s3api", "get-bucket-encryption", "--bucket", bucket)
    rule = got["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}

    # The bucket default encrypts what `aws s3 cp` uploads: the stored blob is ciphertext.
    secret = b"SECRET-PAGE-" * 1000
    page = tmp_path / "secret.html"
    page.write_bytes(secret)
    aws("s3", "cp", page, f"s3://{bucket}/secret.html", "--only-show-errors")
    head = aws("s3api", "head-object", "--bucket", bucket, "--key", "secret.html")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == len(secret)
    back = tmp_path / "back.html"
    aws("s3", "cp", f"s3://{bucket}/secret.html", back, "--only-show-errors")
    assert back.read_bytes() == secret
    blobs = [p for p in _stored_files(gateway) if p.stat().st_size == cipher_size(len(secret))]
    assert len(blobs) == 1, blobs
    assert b"SECRET-PAGE-" not in blobs[0].read_bytes()

    # Without the default, the same upload is stored as it is (so the look above can see it).
    aws("s3api", "delete-bucket-encryption", "--bucket", bucket)
    _refused(aws, "ServerSideEncryptionConfigurationNotFoundError",
             "s3api", "get-bucket-encryption", "--bucket", bucket)  # fmt: skip
    plain = b"PLAIN-PAGE-" * 1000
    page.write_bytes(plain)
    aws("s3", "cp", page, f"s3://{bucket}/plain.html", "--only-show-errors")
    head = aws("s3api", "head-object", "--bucket", bucket, "--key", "plain.html")
    assert "ServerSideEncryption" not in head
    assert [p.read_bytes() for p in _stored_files(gateway) if p.stat().st_size == len(plain)] == [
        plain
    ]
    assert b"SECRET-PAGE-" not in blobs[0].read_bytes()


def _cors(aws: Aws, gateway: GatewayServer) -> None:
    bucket = _name("browsers")
    aws("s3api", "create-bucket", "--bucket", bucket)
    url = f"{gateway.endpoint}/{bucket}/index.html"
    site = "https://site.example"

    def preflight(origin: str, method: str = "PUT") -> httpx.Response:
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        }
        return httpx.options(url, headers=headers)

    assert preflight(site).status_code == 403
    rules = [{"AllowedOrigins": [site], "AllowedMethods": ["GET", "PUT"],
              "AllowedHeaders": ["content-type"], "ExposeHeaders": ["ETag"],
              "MaxAgeSeconds": 600}]  # fmt: skip
    aws("s3api", "put-bucket-cors", "--bucket", bucket,
        "--cors-configuration", json.dumps({"CORSRules": rules}))  # fmt: skip
    assert aws("s3api", "get-bucket-cors", "--bucket", bucket)["CORSRules"] == rules

    allowed = preflight(site)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == site
    assert "PUT" in allowed.headers["access-control-allow-methods"].split(", ")
    assert allowed.headers["access-control-allow-headers"].lower() == "content-type"
    assert allowed.headers["access-control-max-age"] == "600"
    for origin, method in (("https://elsewhere.example", "PUT"), (site, "DELETE")):
        refused = preflight(origin, method)
        assert refused.status_code == 403, (origin, method)
        assert "<Code>AccessForbidden</Code>" in refused.text
        assert "access-control-allow-origin" not in refused.headers
    # An unsigned GET is refused, but its error carries the CORS headers a script needs.
    anonymous = httpx.get(url, headers={"Origin": site})
    assert anonymous.status_code == 403
    assert anonymous.headers["access-control-allow-origin"] == site

    aws("s3api", "delete-bucket-cors", "--bucket", bucket)
    _refused(aws, "NoSuchCORSConfiguration", "s3api", "get-bucket-cors", "--bucket", bucket)
    assert preflight(site).status_code == 403
