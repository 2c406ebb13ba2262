"""Lifecycle over HTTP with boto3 against the in-process gateway: the whole configuration
round trip, S3's error codes, and the retention window seen from both sides (the artifact
API's ``days`` is the rule ``pagewright-retention``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.artifact_api import ApiClient, create_api_key
from tests.support.gateway import InProcessGateway
from tests.support.s3_errors import error_code

RULES: list[dict[str, Any]] = [
    {
        "ID": "debug-logs",
        "Status": "Enabled",
        "Filter": {
            "And": {
                "Prefix": "logs/",
                "Tags": [{"Key": "kind", "Value": "debug"}],
                "ObjectSizeLessThan": 1024,
            }
        },
        "Expiration": {"Days": 7},
    },
    {
        "ID": "cleanup",
        "Status": "Disabled",
        "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Date": datetime(2031, 1, 1, tzinfo=UTC)},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 5, "NewerNoncurrentVersions": 2},
    },
    {
        "ID": "markers",
        "Status": "Enabled",
        "Filter": {"ObjectSizeGreaterThan": 0},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    },
]
RETENTION = {
    "ID": "pagewright-retention",
    "Status": "Enabled",
    "Filter": {"Prefix": "builds/"},
    "Expiration": {"Days": 14},
}


@pytest.fixture
def api(gateway: InProcessGateway) -> Iterator[ApiClient]:
    with ApiClient(gateway, create_api_key(gateway)) as client:
        yield client


def put(s3: Any, bucket: str, rules: list[dict[str, Any]]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def rules_of(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])


def test_the_whole_configuration_round_trips(s3: Any, bucket: str) -> None:
    put(s3, bucket, RULES)
    assert rules_of(s3, bucket) == RULES
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as gone:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_code(gone) == "NoSuchLifecycleConfiguration"


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([{**RULES[0], "Expiration": {"Days": 0}}], "InvalidArgument"),
        ([RULES[0], RULES[0]], "InvalidArgument"),
        ([{**RULES[1], "ID": "x" * 256}], "InvalidArgument"),
        ([{"ID": "none", "Status": "Enabled", "Filter": {}}], "InvalidArgument"),
        (
            [{**RULES[0], "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}],
            "InvalidStorageClass",
        ),
        ([{**RETENTION, "Status": "Disabled"}], "InvalidArgument"),
        ([{**RULES[2], "Filter": {"Tag": {"Key": "k", "Value": "v"}}}], "InvalidArgument"),
    ],
)
def test_refusals(s3: Any, bucket: str, rules: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(ClientError) as refused:
        put(s3, bucket, rules)
    assert error_code(refused) == code
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def test_the_retention_window_is_the_retention_rule(s3: Any, bucket: str, api: ApiClient) -> None:
    # Set through the artifact API: S3 clients see the rule.
    api.put(f"/sites/{bucket}/retention", json={"days": 10})
    assert rules_of(s3, bucket) == [{**RETENTION, "Expiration": {"Days": 10}}]
    # Set through S3: the artifact API sees the window.
    put(s3, bucket, [RULES[0], RETENTION])
    assert api.get(f"/sites/{bucket}/retention").json()["effective"]["days"] == 14
    assert rules_of(s3, bucket) == [RETENTION, RULES[0]]
    # A configuration without the rule clears the window; Delete clears everything.
    put(s3, bucket, [RULES[1]])
    assert api.get(f"/sites/{bucket}/retention").json()["effective"]["days"] is None
    put(s3, bucket, [RETENTION])
    s3.delete_bucket_lifecycle(Bucket=bucket)
    assert api.get(f"/sites/{bucket}/retention").json()["effective"]["days"] is None
