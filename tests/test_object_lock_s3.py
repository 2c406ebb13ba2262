"""S3 object lock over HTTP with boto3, in-process over the memory store: object lock at
bucket creation and by configuration, default and per-object retention (GOVERNANCE with its
bypass, COMPLIANCE without), legal holds, the lock headers of reads, and the latest
version's legal hold as the artifact pin the artifact API sets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import S3Error
from tests.support.artifact_api import ApiClient, create_api_key, upload
from tests.support.gateway import InProcessGateway
from tests.support.s3_errors import s3_error
from translators.memory.backend import MemoryBackend

DENIED = (403, "AccessDenied")


@pytest.fixture
def locked(s3: Any, bucket_name: Any) -> str:
    name = bucket_name()
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return str(name)


@pytest.fixture
def api(gateway: InProcessGateway) -> Iterator[ApiClient]:
    with ApiClient(gateway, create_api_key(gateway)) as client:
        yield client


def later(days: int = 1) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def test_a_bucket_created_with_object_lock(s3: Any, locked: str, bucket: str) -> None:
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    assert s3_error(lambda: s3.get_object_lock_configuration(Bucket=bucket))[:2] == (
        404,
        "ObjectLockConfigurationNotFoundError",
    )
    suspend = {"Status": "Suspended"}
    assert s3_error(
        lambda: s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration=suspend)
    )[:2] == (409, "InvalidBucketState")
    # Lock headers on a bucket without object lock are refused, not ignored.
    assert s3_error(
        lambda: s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=later(),
        )
    )[:2] == (400, "InvalidRequest")


def test_enabling_object_lock_needs_versioning(s3: Any, bucket: str) -> None:
    config = {"ObjectLockEnabled": "Enabled"}
    assert s3_error(
        lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)
    )[:2] == (409, "InvalidBucketState")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == config


def test_default_governance_retention_and_its_bypass(s3: Any, locked: str) -> None:
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    s3.put_object_lock_configuration(
        Bucket=locked, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule}
    )
    config = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert config["Rule"] == rule
    version = s3.put_object(Bucket=locked, Key="k", Body=b"kept")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(hours=23)
    assert head["ObjectLockLegalHoldStatus"] == "OFF"
    retention = s3.get_object_retention(Bucket=locked, Key="k", VersionId=version)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    assert (
        s3_error(lambda: s3.delete_object(Bucket=locked, Key="k", VersionId=version))[:2] == DENIED
    )
    # A delete without a version id only adds a delete marker: allowed.
    assert s3.delete_object(Bucket=locked, Key="k")["DeleteMarker"] is True
    assert s3.get_object(Bucket=locked, Key="k", VersionId=version)["Body"].read() == b"kept"
    # Shortening GOVERNANCE needs the bypass; with it the version goes.
    sooner = {"Mode": "GOVERNANCE", "RetainUntilDate": later(0) + timedelta(hours=1)}
    assert (
        s3_error(
            lambda: s3.put_object_retention(
                Bucket=locked, Key="k", VersionId=version, Retention=sooner
            )
        )[:2]
        == DENIED
    )
    s3.delete_object(Bucket=locked, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert s3_error(lambda: s3.head_object(Bucket=locked, Key="k", VersionId=version))[0] == 404


def test_compliance_retention_binds_everyone(s3: Any, locked: str) -> None:
    version = s3.put_object(
        Bucket=locked, Key="c", Body=b"x", ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=later(2),
    )["VersionId"]  # fmt: skip
    delete = lambda: s3.delete_object(  # noqa: E731
        Bucket=locked, Key="c", VersionId=version, BypassGovernanceRetention=True
    )
    assert s3_error(delete)[:2] == DENIED
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": later(1)}
    assert (
        s3_error(
            lambda: s3.put_object_retention(
                Bucket=locked,
                Key="c",
                VersionId=version,
                Retention=shorter,
                BypassGovernanceRetention=True,
            )
        )[:2]
        == DENIED
    )
    longer = {"Mode": "COMPLIANCE", "RetainUntilDate": later(3)}
    s3.put_object_retention(Bucket=locked, Key="c", VersionId=version, Retention=longer)
    got = s3.get_object_retention(Bucket=locked, Key="c", VersionId=version)["Retention"]
    assert got["RetainUntilDate"] > later(2)
    removed = s3.delete_objects(
        Bucket=locked,
        Delete={"Objects": [{"Key": "c", "VersionId": version}]},
        BypassGovernanceRetention=True,
    )
    assert [e["Code"] for e in removed["Errors"]] == ["AccessDenied"]


def test_legal_hold(s3: Any, locked: str) -> None:
    version = s3.put_object(Bucket=locked, Key="h", Body=b"x")["VersionId"]
    assert s3_error(lambda: s3.get_object_retention(Bucket=locked, Key="h"))[:2] == (
        404,
        "NoSuchObjectLockConfiguration",
    )
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "OFF"
    s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "ON"})
    assert s3.head_object(Bucket=locked, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    assert (
        s3_error(
            lambda: s3.delete_object(
                Bucket=locked, Key="h", VersionId=version, BypassGovernanceRetention=True
            )
        )[:2]
        == DENIED
    )
    # The hold stays with its version when a newer one is written.
    s3.put_object(Bucket=locked, Key="h", Body=b"newer")
    held = s3.get_object_legal_hold(Bucket=locked, Key="h", VersionId=version)
    assert held["LegalHold"]["Status"] == "ON"
    assert s3.get_object_legal_hold(Bucket=locked, Key="h")["LegalHold"]["Status"] == "OFF"
    assert (
        s3_error(lambda: s3.delete_object(Bucket=locked, Key="h", VersionId=version))[:2] == DENIED
    )
    s3.put_object_legal_hold(Bucket=locked, Key="h", VersionId=version, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=locked, Key="h", VersionId=version)


def test_the_legal_hold_is_the_artifact_pin(s3: Any, locked: str, api: ApiClient) -> None:
    upload(s3, locked, "b1")
    key = "builds/b1.tar.gz"
    assert s3.get_object_legal_hold(Bucket=locked, Key=key)["LegalHold"]["Status"] == "OFF"
    assert api.post(f"/sites/{locked}/artifacts/b1/pin").status_code == 200
    assert s3.get_object_legal_hold(Bucket=locked, Key=key)["LegalHold"]["Status"] == "ON"
    s3.put_object_legal_hold(Bucket=locked, Key=key, LegalHold={"Status": "OFF"})
    assert api.get(f"/sites/{locked}/artifacts/b1").json()["pinned"] is False
    s3.put_object_legal_hold(Bucket=locked, Key=key, LegalHold={"Status": "ON"})
    assert api.get(f"/sites/{locked}/artifacts/b1").json()["pinned"] is True
    version = s3.head_object(Bucket=locked, Key=key)["VersionId"]
    assert (
        s3_error(lambda: s3.delete_object(Bucket=locked, Key=key, VersionId=version))[:2] == DENIED
    )


def test_object_lock_on_a_backend_without_versions_creates_no_bucket(
    s3: Any, bucket_name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the backend cannot keep versions (``put_bucket_versioning`` is 501, as on Azure
    or GCS), CreateBucket with object lock is that 501 and leaves no bucket behind."""

    async def refuse(*_: object) -> None:
        raise S3Error("NotImplemented", "Bucket versioning is not supported by the x backend.")

    monkeypatch.setattr(MemoryBackend, "put_bucket_versioning", refuse)
    name = bucket_name()
    assert s3_error(lambda: s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True))[:2] == (
        501,
        "NotImplemented",
    )
    assert s3_error(lambda: s3.head_bucket(Bucket=name))[0] == 404


def test_a_multipart_upload_takes_the_lock_it_asked_for(s3: Any, locked: str, bucket: str) -> None:
    until = later(2)
    upload = s3.create_multipart_upload(
        Bucket=locked, Key="mp", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )["UploadId"]  # fmt: skip
    part = s3.upload_part(Bucket=locked, Key="mp", UploadId=upload, PartNumber=1, Body=b"mp")
    done = s3.complete_multipart_upload(
        Bucket=locked,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    head = s3.head_object(Bucket=locked, Key="mp")
    assert (head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]) == ("COMPLIANCE", "ON")
    assert abs((head["ObjectLockRetainUntilDate"] - until).total_seconds()) < 1
    version = done["VersionId"]
    assert (
        s3_error(lambda: s3.delete_object(Bucket=locked, Key="mp", VersionId=version))[:2] == DENIED
    )
    # An aborted upload's lock goes with it; a bucket without object lock refuses the headers.
    aborted = s3.create_multipart_upload(
        Bucket=locked, Key="gone", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
    )["UploadId"]
    s3.abort_multipart_upload(Bucket=locked, Key="gone", UploadId=aborted)
    assert s3_error(
        lambda: s3.create_multipart_upload(
            Bucket=bucket, Key="x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
        )
    )[:2] == (400, "InvalidRequest")
