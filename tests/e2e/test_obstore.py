"""obstore (Rust object_store) S3Store against the gateway; buckets are made with boto3."""

from __future__ import annotations

from typing import Any

import obstore
import pytest
from obstore.store import S3Store

from tests.e2e.helpers import MiB, data, md5_hex, multipart_etag
from tests.support.servers import GatewayServer


@pytest.fixture
def store(gateway: GatewayServer, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=gateway.endpoint,
        access_key_id=gateway.access_key,
        secret_access_key=gateway.secret_key,
        region=gateway.region,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )


def test_put_get_head(store: S3Store, s3: Any, bucket: str) -> None:
    small = data(2048, seed=30)
    put = obstore.put(store, "docs/small.txt", small)
    assert put["e_tag"] is not None
    assert put["e_tag"].strip('"') == md5_hex(small)
    assert bytes(obstore.get(store, "docs/small.txt").bytes()) == small

    meta = obstore.head(store, "docs/small.txt")
    assert meta["path"] == "docs/small.txt"
    assert meta["size"] == 2048
    assert meta["e_tag"] == put["e_tag"]

    # Bytes larger than chunk_size (5 MiB by default) go up as a multipart upload: 5+5+2 MiB.
    large = data(12 * MiB, seed=31)
    put = obstore.put(store, "media/large.bin", large)
    assert put["e_tag"] is not None
    assert put["e_tag"].strip('"') == multipart_etag(large, 5 * MiB)
    assert s3.head_object(Bucket=bucket, Key="media/large.bin")["ContentLength"] == 12 * MiB
    result = obstore.get(store, "media/large.bin")
    assert result.meta["size"] == 12 * MiB
    assert bytes(result.bytes()) == large

    with pytest.raises(FileNotFoundError):
        obstore.head(store, "docs/missing.txt")
    with pytest.raises(FileNotFoundError):
        obstore.get(store, "docs/missing.txt")


def test_get_range_is_exact(store: S3Store) -> None:
    body = data(6 * MiB + 123, seed=32)
    obstore.put(store, "blob.bin", body, use_multipart=False)

    assert bytes(obstore.get_range(store, "blob.bin", start=0, end=1)) == body[:1]
    assert bytes(obstore.get_range(store, "blob.bin", start=1000, end=2000)) == body[1000:2000]
    assert (
        bytes(obstore.get_range(store, "blob.bin", start=5 * MiB, length=MiB))
        == (body[5 * MiB : 6 * MiB])
    )
    last = len(body) - 10
    assert bytes(obstore.get_range(store, "blob.bin", start=last, end=len(body))) == body[last:]
    ranges = obstore.get_ranges(
        store, "blob.bin", starts=[0, 4096, last], ends=[10, 8192, len(body)]
    )
    assert [bytes(r) for r in ranges] == [body[:10], body[4096:8192], body[last:]]

    suffix = obstore.get(store, "blob.bin", options={"range": {"suffix": 100}})
    assert bytes(suffix.bytes()) == body[-100:]
    assert suffix.range == (len(body) - 100, len(body))
    offset = obstore.get(store, "blob.bin", options={"range": {"offset": len(body) - 5}})
    assert bytes(offset.bytes()) == body[-5:]


def test_list_copy_delete(store: S3Store, s3: Any, bucket: str) -> None:
    keys = ["a.txt", "dir/b.txt", "dir/c.txt", "dir/sub/d.txt", "z/e.txt"]
    for index, key in enumerate(keys):
        obstore.put(store, key, data(50 + index, seed=index))

    listed = obstore.list(store).collect()
    assert sorted((m["path"], m["size"]) for m in listed) == [
        (key, 50 + index) for index, key in enumerate(keys)
    ]
    under = obstore.list(store, prefix="dir").collect()
    assert sorted(m["path"] for m in under) == ["dir/b.txt", "dir/c.txt", "dir/sub/d.txt"]

    top = obstore.list_with_delimiter(store)
    assert sorted(top["common_prefixes"]) == ["dir", "z"]
    assert [m["path"] for m in top["objects"]] == ["a.txt"]
    inside = obstore.list_with_delimiter(store, prefix="dir")
    assert list(inside["common_prefixes"]) == ["dir/sub"]
    assert sorted(m["path"] for m in inside["objects"]) == ["dir/b.txt", "dir/c.txt"]

    obstore.copy(store, "dir/b.txt", "copies/b.txt")
    assert bytes(obstore.get(store, "copies/b.txt").bytes()) == data(51, seed=1)

    obstore.delete(store, "dir/b.txt")
    obstore.delete(store, ["dir/c.txt", "a.txt"])
    remaining = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in remaining] == ["copies/b.txt", "dir/sub/d.txt", "z/e.txt"]
    with pytest.raises(FileNotFoundError):
        obstore.get(store, "dir/b.txt")
