"""GET /sites/{site}/artifacts/{build_id}/versions (policy.catalog_versions): an artifact's
versions with what the catalog knew of each, newest first, paged; usage counts them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.artifact_api import ApiClient, artifact_bytes, create_api_key
from tests.support.gateway import InProcessGateway

KEY = "builds/v1.tar.gz"


@pytest.fixture(scope="module")
def api_key(gateway: InProcessGateway) -> str:
    return create_api_key(gateway)


@pytest.fixture
def api(gateway: InProcessGateway, api_key: str) -> Iterator[ApiClient]:
    with ApiClient(gateway, api_key) as client:
        yield client


def _put(s3: Any, bucket: str, data: bytes, status: str) -> str:
    reply = s3.put_object(
        Bucket=bucket,
        Key=KEY,
        Body=data,
        Metadata={"status": status},
        ChecksumAlgorithm="SHA256",
    )
    return str(reply.get("VersionId", "null"))


def _all_versions(api: ApiClient, bucket: str, limit: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    params = {"limit": str(limit)}
    for _ in range(20):
        page = api.get(f"/sites/{bucket}/artifacts/v1/versions", params=params).json()
        assert page["key"] == KEY
        assert len(page["items"]) <= limit
        seen.extend(page["items"])
        if page["next_cursor"] is None:
            return seen
        params["cursor"] = page["next_cursor"]
    raise AssertionError("the pages never ended")


def test_an_artifact_overwritten_twice_lists_three_versions(
    api: ApiClient, s3: Any, bucket: str
) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    datas = [artifact_bytes(f"{bucket}/v1/{n}", 10 * n) for n in range(3)]
    ids = [_put(s3, bucket, data, f"s{n}") for n, data in enumerate(datas)]
    assert len(set(ids)) == 3
    for limit in (1, 2, 100):
        items = _all_versions(api, bucket, limit)
        assert [item["version_id"] for item in items] == ids[::-1]
        assert [item["is_latest"] for item in items] == [True, False, False]
        assert [item["sha256"] for item in items] == [
            hashlib.sha256(data).hexdigest() for data in datas[::-1]
        ]
        assert [item["status"] for item in items] == ["s2", "s1", "s0"]
        assert [item["size"] for item in items] == [len(data) for data in datas[::-1]]
        assert {item["build_id"] for item in items} == {"v1"}
    usage = api.get(f"/sites/{bucket}/usage").json()["usage"]
    assert usage["bytes"] == sum(len(d) for d in datas)
    assert (usage["noncurrent_bytes"], usage["noncurrent_versions"]) == (
        len(datas[0]) + len(datas[1]),
        2,
    )
    assert usage["artifacts"] == 1

    # A delete makes a marker, the latest entry; the build still lists its versions.
    marker = s3.delete_object(Bucket=bucket, Key=KEY)["VersionId"]
    items = _all_versions(api, bucket, 2)
    assert [item["version_id"] for item in items] == [marker, *ids[::-1]]
    assert items[0]["is_delete_marker"]
    assert items[0]["is_latest"]
    assert items[0]["size"] == 0
    assert items[0]["etag"] is None
    assert items[1]["sha256"] == hashlib.sha256(datas[2]).hexdigest()
    assert api.get(f"/sites/{bucket}/artifacts/v1").status_code == 404

    # Deleting a version by id removes its row and frees its bytes.
    s3.delete_object(Bucket=bucket, Key=KEY, VersionId=ids[1])
    items = _all_versions(api, bucket, 100)
    assert [item["version_id"] for item in items] == [marker, ids[2], ids[0]]
    usage = api.get(f"/sites/{bucket}/usage").json()["usage"]
    assert usage["bytes"] == len(datas[0]) + len(datas[2])
    assert usage["noncurrent_versions"] == 2
    assert usage["artifacts"] == 0


def test_an_unversioned_site_lists_the_one_null_version(
    api: ApiClient, s3: Any, bucket: str
) -> None:
    data = artifact_bytes(f"{bucket}/v1", 5)
    _put(s3, bucket, data, "ok")
    _put(s3, bucket, data + b"", "ok")
    page = api.get(f"/sites/{bucket}/artifacts/v1/versions").json()
    assert [(i["version_id"], i["is_latest"]) for i in page["items"]] == [("null", True)]
    assert page["items"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert page["next_cursor"] is None


def test_version_listing_errors(api: ApiClient, bucket: str) -> None:
    missing = api.get(f"/sites/{bucket}/artifacts/nothing/versions")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NoSuchArtifact"
    bad_cursor = api.get(f"/sites/{bucket}/artifacts/nothing/versions", params={"cursor": "eA"})
    assert bad_cursor.status_code == 400
    unknown = api.get(f"/sites/{bucket}/artifacts/v1/versions", params={"sort": "size"})
    assert unknown.status_code == 400
