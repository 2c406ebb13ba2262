"""Backend (``translators.versioning``) on every translator that keeps versions; the
translators without it (``translators.unversioned``: enabling is ``NotImplemented``) are
named in :data:`WITHOUT_VERSIONING` with the reason, and a test holds each translator to
its declaration and checks what every one answers for its ``null`` versions."""

from __future__ import annotations

import uuid

import pytest

from core.errors import S3Error
from tests.conformance.conftest import CTX, Harness
from tests.conformance.helpers import put, read
from tests.conformance.payload import MemoryPayload
from translators.base import (
    Backend,
    CompletedPart,
    GetOptions,
    ListQuery,
    WriteConditions,
    WriteMetadata,
)
from translators.versioning import NULL_VERSION, VersionsQuery

pytestmark = pytest.mark.anyio

#: Harness -> why its translator has no Backend capability.
WITHOUT_VERSIONING = {
    "azure": "the Azure translator keeps no versions: Azurite 3.35, the emulator it is tested "
    "against, has no blob versioning (Azure/Azurite#665), so blob versioning could not be tested",
    "gcs": "the GCS translator keeps no versions: fake-gcs-server 1.54, the emulator it is "
    "tested against (the only release installable here), keeps object generations but ignores "
    "`generation` on DELETE (fsouza/fake-gcs-server#1326, fixed upstream after 1.54), so "
    "removing one version, which DeleteObject by version id and the null rules need, could not "
    "be tested",
    "s3-rclone": "rclone serve s3 keeps no versions of its files",
}


@pytest.fixture
def target(request: pytest.FixtureRequest) -> str:
    """The name of the harness under test."""
    return str(request.node.callspec.params["harness"])


@pytest.fixture
def backend(harness: Harness, target: str) -> Backend:
    """The translator under test when it keeps versions; a declared exception skips."""
    if target in WITHOUT_VERSIONING:
        pytest.skip(f"{target}: {WITHOUT_VERSIONING[target]}")
    return harness.backend


async def read_version(backend: Backend, bucket: str, key: str, version_id: str) -> bytes:
    result = await backend.get_version(CTX, bucket, key, version_id, GetOptions())
    data = b"".join([chunk async for chunk in result.body])
    await result.body.aclose()
    return data


async def history(backend: Backend, bucket: str, key: str) -> list[tuple[str, bool]]:
    """(version id, is delete marker) of ``key``'s entries, newest first."""
    page = await backend.list_versions(CTX, bucket, VersionsQuery(prefix=key))
    return [(v.version_id, v.is_delete_marker) for v in page.versions if v.key == key]


async def test_capability_matches_its_declaration(harness: Harness, target: str) -> None:
    """A translator keeps versions exactly when it is not declared without; every one
    answers for the ``null`` version of a never-versioned bucket's objects. (Its own
    bucket: the ``bucket`` fixture would skip the translators declared without.)"""
    plain = harness.backend
    bucket = f"capability-{uuid.uuid4().hex[:12]}"
    await plain.create_bucket(CTX, bucket)
    assert await plain.get_bucket_versioning(CTX, bucket) is None
    info = await put(plain, bucket, "k", b"data")
    found = await plain.head_version(CTX, bucket, "k", NULL_VERSION)
    assert found.info is not None
    assert found.info.etag == info.etag
    assert found.is_latest
    assert await read_version(plain, bucket, "k", NULL_VERSION) == b"data"
    page = await plain.list_versions(CTX, bucket, VersionsQuery())
    assert [(v.key, v.version_id, v.is_latest) for v in page.versions] == [
        ("k", NULL_VERSION, True)
    ]
    with pytest.raises(S3Error) as caught:
        await plain.head_version(CTX, bucket, "k", "no-such-version")
    assert caught.value.code == "NoSuchVersion"
    if target in WITHOUT_VERSIONING:
        with pytest.raises(S3Error) as caught:
            await plain.put_bucket_versioning(CTX, bucket, "Enabled")
        assert caught.value.code == "NotImplemented"
        assert plain.name in caught.value.message
        assert await plain.get_bucket_versioning(CTX, bucket) is None
    else:
        await plain.put_bucket_versioning(CTX, bucket, "Enabled")
        assert await plain.get_bucket_versioning(CTX, bucket) == "Enabled"
    outcome = await plain.delete_version(CTX, bucket, "k", NULL_VERSION)
    assert not outcome.delete_marker
    with pytest.raises(S3Error) as caught:
        await plain.head_object(CTX, bucket, "k")
    assert caught.value.code == "NoSuchKey"


async def test_a_new_bucket_is_unversioned(harness: Harness, backend: Backend, bucket: str) -> None:
    assert await backend.get_bucket_versioning(CTX, bucket) is None
    info = await put(harness.backend, bucket, "k", b"one")
    assert info.version_id is None
    with pytest.raises(S3Error) as caught:
        await backend.get_bucket_versioning(CTX, f"{bucket}-missing")
    assert caught.value.code == "NoSuchBucket"


async def test_enabled_bucket_keeps_every_version(
    harness: Harness, backend: Backend, bucket: str
) -> None:
    plain: Backend = harness.backend
    before = await put(plain, bucket, "k", b"before")
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    assert await backend.get_bucket_versioning(CTX, bucket) == "Enabled"
    assert (await plain.head_object(CTX, bucket, "k")).version_id == NULL_VERSION
    first = await put(plain, bucket, "k", b"first")
    second = await put(plain, bucket, "k", b"second")
    assert first.version_id
    assert second.version_id
    assert len({NULL_VERSION, first.version_id, second.version_id}) == 3
    assert before.version_id is None
    assert await read(plain, bucket, "k") == b"second"
    assert (await plain.head_object(CTX, bucket, "k")).version_id == second.version_id
    assert await read_version(backend, bucket, "k", first.version_id) == b"first"
    assert await read_version(backend, bucket, "k", NULL_VERSION) == b"before"
    assert await history(backend, bucket, "k") == [
        (second.version_id, False),
        (first.version_id, False),
        (NULL_VERSION, False),
    ]
    head = await backend.head_version(CTX, bucket, "k", first.version_id)
    assert head.info is not None
    assert head.info.size == 5
    assert not head.is_latest
    listed = await plain.list_objects(CTX, bucket, ListQuery())
    assert [(o.key, o.size) for o in listed.objects] == [("k", 6)]


async def test_delete_marker_hides_the_key(harness: Harness, backend: Backend, bucket: str) -> None:
    plain: Backend = harness.backend
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    kept = await put(plain, bucket, "k", b"kept")
    assert kept.version_id is not None
    outcome = await backend.delete_version(CTX, bucket, "k", None)
    assert outcome.delete_marker
    assert outcome.version_id not in (None, kept.version_id)
    assert outcome.version_id is not None
    with pytest.raises(S3Error) as caught:
        await plain.head_object(CTX, bucket, "k")
    assert caught.value.code == "NoSuchKey"
    assert (await plain.list_objects(CTX, bucket, ListQuery())).objects == []
    with pytest.raises(S3Error) as caught:
        await backend.get_version(CTX, bucket, "k", outcome.version_id, GetOptions())
    assert caught.value.code == "MethodNotAllowed"
    marker = await backend.head_version(CTX, bucket, "k", outcome.version_id)
    assert marker.is_delete_marker
    assert marker.is_latest
    assert await read_version(backend, bucket, "k", kept.version_id) == b"kept"
    with pytest.raises(S3Error) as caught:
        await plain.delete_bucket(CTX, bucket)
    assert caught.value.code == "BucketNotEmpty"

    # Removing the marker by id brings the object back.
    removed = await backend.delete_version(CTX, bucket, "k", outcome.version_id)
    assert removed.delete_marker
    assert removed.version_id == outcome.version_id
    assert await read(plain, bucket, "k") == b"kept"
    assert (await plain.head_object(CTX, bucket, "k")).version_id == kept.version_id


async def test_deleting_versions_by_id(harness: Harness, backend: Backend, bucket: str) -> None:
    plain: Backend = harness.backend
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    first = await put(plain, bucket, "k", b"first")
    second = await put(plain, bucket, "k", b"second")
    assert first.version_id
    assert second.version_id
    gone = await backend.delete_version(CTX, bucket, "k", second.version_id)
    assert (gone.version_id, gone.delete_marker) == (second.version_id, False)
    assert await read(plain, bucket, "k") == b"first"
    with pytest.raises(S3Error) as caught:
        await backend.head_version(CTX, bucket, "k", second.version_id)
    assert caught.value.code == "NoSuchVersion"
    # An id the key does not have removes nothing.
    await backend.delete_version(CTX, bucket, "k", second.version_id)
    assert await read(plain, bucket, "k") == b"first"
    await backend.delete_version(CTX, bucket, "k", first.version_id)
    assert await history(backend, bucket, "k") == []
    await plain.delete_bucket(CTX, bucket)


async def test_suspended_bucket_replaces_the_null_version(
    harness: Harness, backend: Backend, bucket: str
) -> None:
    plain: Backend = harness.backend
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    kept = await put(plain, bucket, "k", b"kept")
    await backend.put_bucket_versioning(CTX, bucket, "Suspended")
    assert await backend.get_bucket_versioning(CTX, bucket) == "Suspended"
    one = await put(plain, bucket, "k", b"one")
    two = await put(plain, bucket, "k", b"two")
    assert one.version_id == two.version_id == NULL_VERSION
    assert await history(backend, bucket, "k") == [(NULL_VERSION, False), (kept.version_id, False)]
    outcome = await backend.delete_version(CTX, bucket, "k", None)
    assert (outcome.version_id, outcome.delete_marker) == (NULL_VERSION, True)
    assert await history(backend, bucket, "k") == [(NULL_VERSION, True), (kept.version_id, False)]
    again = await put(plain, bucket, "k", b"again")
    assert again.version_id == NULL_VERSION
    assert await history(backend, bucket, "k") == [(NULL_VERSION, False), (kept.version_id, False)]
    assert await read_version(backend, bucket, "k", kept.version_id or "") == b"kept"


async def test_multipart_completion_is_a_version(
    harness: Harness, backend: Backend, bucket: str
) -> None:
    plain: Backend = harness.backend
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    first = await put(plain, bucket, "k", b"first")
    upload = await plain.create_multipart_upload(CTX, bucket, "k", WriteMetadata(), None, None)
    part = await plain.upload_part(CTX, bucket, "k", upload.upload_id, 1, MemoryPayload(b"mp"))
    done = await plain.complete_multipart_upload(
        CTX,
        bucket,
        "k",
        upload.upload_id,
        [CompletedPart(1, part.etag)],
        WriteConditions(),
    )
    assert done.version_id not in (None, first.version_id)
    assert await read(plain, bucket, "k") == b"mp"
    assert await read_version(backend, bucket, "k", first.version_id or "") == b"first"


async def test_listing_versions_pages_and_rolls_up(
    harness: Harness, backend: Backend, bucket: str
) -> None:
    plain: Backend = harness.backend
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    ids: dict[str, list[str]] = {}
    for key in ("a", "b", "dir/x", "dir/y", "c"):
        for n in range(2 if key != "b" else 3):
            info = await put(plain, bucket, key, f"{key}{n}".encode())
            assert info.version_id is not None
            ids.setdefault(key, []).insert(0, info.version_id)
    marker = await backend.delete_version(CTX, bucket, "c", None)
    assert marker.version_id is not None
    ids["c"].insert(0, marker.version_id)
    expected = [(key, vid) for key in ("a", "b", "c", "dir/x", "dir/y") for vid in ids[key]]

    seen: list[tuple[str, str]] = []
    query = VersionsQuery(max_keys=3)
    while True:
        page = await backend.list_versions(CTX, bucket, query)
        assert len(page.versions) <= 3
        seen += [(v.key, v.version_id) for v in page.versions]
        for v in page.versions:
            assert v.is_latest == (v.version_id == ids[v.key][0])
        if page.next_key_marker is None:
            break
        query = VersionsQuery(
            key_marker=page.next_key_marker,
            version_id_marker=page.next_version_id_marker or "",
            max_keys=3,
        )
    assert seen == expected

    rolled = await backend.list_versions(CTX, bucket, VersionsQuery(delimiter="/"))
    assert rolled.common_prefixes == ["dir/"]
    assert {v.key for v in rolled.versions} == {"a", "b", "c"}
    deleted = [v for v in rolled.versions if v.is_delete_marker]
    assert [(v.key, v.version_id) for v in deleted] == [("c", marker.version_id)]

    with pytest.raises(S3Error) as caught:
        await backend.list_versions(
            CTX, bucket, VersionsQuery(key_marker="a", version_id_marker="no-such-version")
        )
    assert caught.value.code == "InvalidArgument"


async def test_versions_survive_a_restart(harness: Harness, backend: Backend, bucket: str) -> None:
    """Older versions' bytes are live data: a restart's orphan removal keeps them, and the
    bucket's state and every entry are as before; a version deleted by id frees its bytes."""
    if harness.restart is None or harness.stored_files is None:
        pytest.skip("the backend has no local storage to restart")
    await backend.put_bucket_versioning(CTX, bucket, "Enabled")
    first = await put(harness.backend, bucket, "k", b"first")
    await put(harness.backend, bucket, "k", b"second")
    marker = await backend.delete_version(CTX, bucket, "k", None)
    assert len(harness.stored_files()) == 2
    restarted = await harness.restart()
    assert await restarted.get_bucket_versioning(CTX, bucket) == "Enabled"
    assert len(harness.stored_files()) == 2
    assert await read_version(restarted, bucket, "k", first.version_id or "") == b"first"
    assert next(v for v, _ in await history(restarted, bucket, "k")) == marker.version_id
    await restarted.delete_version(CTX, bucket, "k", first.version_id)
    assert len(harness.stored_files()) == 1
