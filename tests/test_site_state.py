"""Catalog-only state kept with the data (policy.site_state): each site's record is hidden
from S3 clients, rewritten on every change, restored by reindex and carried by migrate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from commands.cli import main
from core.context import RequestContext
from core.errors import S3Error
from policy.catalog import SqlCatalog
from policy.model import SitePolicy
from policy.reindex import reindex
from policy.site_state import SITE_STATE_KEY, load_site_state
from policy.stack import build_stack
from tests.conformance.payload import MemoryPayload
from tests.support.artifact_api import ApiClient, create_api_key, upload
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway
from tests.support.postgres import catalog_url, fresh_schema
from tests.support.servers import running_gateway
from translators.base import Backend, GetOptions, ListQuery, WriteConditions, WriteMetadata
from translators.filesystem.backend import FilesystemBackend

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server

CTX = RequestContext(request_id="test-site-state", principal="alice")
SITE = "site-a"
GIB = 1024**3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path / "catalog") as value:
        yield value


async def put(backend: Backend, key: str, data: bytes, **meta: str) -> None:
    await backend.put_object(
        CTX, SITE, key, MemoryPayload(data), WriteMetadata(user_metadata=meta), WriteConditions()
    )


async def opened(root: Path) -> FilesystemBackend:
    storage = FilesystemBackend(root, fsync=False)
    await storage.start()
    return storage


@pytest.mark.anyio
async def test_state_is_kept_in_a_hidden_record_and_restored_by_reindex(
    tmp_path: Path, url: str
) -> None:
    storage = FilesystemBackend(tmp_path / "storage", fsync=False)
    stack = build_stack(storage, url, SitePolicy(validate_archives=False), GIB)
    await stack.backend.start()
    try:
        await stack.backend.create_bucket(CTX, SITE)
        await put(stack.backend, "builds/1.tar.gz", b"one", status="success")
        await put(stack.backend, "builds/2.tar.gz", b"two", status="success", action="deploy")
        await put(stack.backend, "builds/3.tar.gz", b"three")
        await put(stack.backend, "index.html", b"<html>")
        await stack.catalog.update(SITE, "builds/1.tar.gz", pinned=True)
        await stack.catalog.update(SITE, "builds/3.tar.gz", pinned=True)
        await stack.catalog.update(SITE, "builds/2.tar.gz", status="failed", action="rollback")
        await stack.policies.set_overrides(SITE, {"retention_keep_last": 5, "quota_artifacts": 9})
        # A new upload under a pinned key is a new artifact: the old pin is not its pin.
        await put(stack.backend, "builds/1.tar.gz", b"one, rebuilt", status="success")

        record = await load_site_state(storage, SITE)
        assert record is not None
        assert record.overrides == {"retention_keep_last": 5, "quota_artifacts": 9}
        assert set(record.artifacts) == {"builds/1.tar.gz", "builds/2.tar.gz", "builds/3.tar.gz"}
        # S3 clients can neither see nor touch it.
        page = await stack.backend.list_objects(CTX, SITE, ListQuery())
        assert [o.key for o in page.objects] == [
            "builds/1.tar.gz",
            "builds/2.tar.gz",
            "builds/3.tar.gz",
            "index.html",
        ]
        hidden = await stack.backend.list_objects(CTX, SITE, ListQuery(prefix=".pagewright-"))
        assert (hidden.objects, hidden.common_prefixes) == ([], [])
        attempts = [
            stack.backend.head_object(CTX, SITE, SITE_STATE_KEY),
            stack.backend.get_object(CTX, SITE, SITE_STATE_KEY, GetOptions()),
            stack.backend.delete_object(CTX, SITE, SITE_STATE_KEY),
            stack.backend.put_object(
                CTX, SITE, SITE_STATE_KEY, MemoryPayload(b"{}"), WriteMetadata(), WriteConditions()
            ),
        ]
        for attempt in attempts:
            with pytest.raises(S3Error) as caught:
                await attempt
            assert caught.value.code == "InvalidObjectName"
    finally:
        await stack.close()

    # The catalog is lost: a new, empty one is rebuilt from the backend.
    if url.startswith("sqlite"):
        for file in (tmp_path / "catalog").glob("catalog.sqlite3*"):
            file.unlink()
    with nullcontext(url) if url.startswith("sqlite") else fresh_schema() as lost_url:
        rebuilt = SqlCatalog(lost_url)
        await rebuilt.start()
        storage = await opened(tmp_path / "storage")
        try:
            report = await reindex(storage, rebuilt)
            rows = {b: await rebuilt.get(SITE, f"builds/{b}.tar.gz") for b in ("1", "2", "3")}
            overrides = await rebuilt.site_overrides(SITE)
            record_row = await rebuilt.get(SITE, SITE_STATE_KEY)
        finally:
            await rebuilt.close()
            await storage.close()
    assert (report.objects, report.restored_artifacts, report.restored_policies) == (4, 2, 1)
    assert record_row is None
    assert overrides == {"retention_keep_last": 5, "quota_artifacts": 9}
    state = {
        key: (row.pinned, row.status, row.action) for key, row in rows.items() if row is not None
    }
    assert state == {
        "1": (False, "success", None),
        "2": (False, "failed", "rollback"),
        "3": (True, None, None),
    }


async def _rows(catalog: SqlCatalog, site: str) -> dict[str, Any]:
    rows = {}
    for build in ("101", "102", "103"):
        row = await catalog.get(site, f"builds/{build}.tar.gz")
        assert row is not None
        rows[build] = (row.pinned, row.status, row.action)
    return {"rows": rows, "overrides": await catalog.site_overrides(site)}


def _catalog_state(path: Path, site: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        catalog = SqlCatalog(f"sqlite:///{path}")
        await catalog.start()
        try:
            return await _rows(catalog, site)
        finally:
            await catalog.close()

    result: dict[str, Any] = anyio.run(read)
    return result


def test_reindex_and_migrate_keep_pins_edits_and_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("PWG_BACKEND", "PWG_CATALOG_URL", "PWG_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    data = tmp_path / "data"
    site = "kept-site"
    with running_gateway(data) as server:
        s3 = make_s3_client(server)
        s3.create_bucket(Bucket=site)
        for build in ("101", "102", "103"):
            upload(s3, site, build, status="success")
        with ApiClient(server, create_api_key(server)) as api:
            api.post(f"/sites/{site}/artifacts/101/pin")
            api.patch(f"/sites/{site}/artifacts/102", json={"status": "failed"})
            api.put(f"/sites/{site}/retention", json={"keep_last": 7})
        listed = s3.list_objects_v2(Bucket=site)
        assert [o["Key"] for o in listed["Contents"]] == [
            "builds/101.tar.gz",
            "builds/102.tar.gz",
            "builds/103.tar.gz",
        ]
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket=site, Key=SITE_STATE_KEY)
        assert caught.value.response["Error"]["Code"] == "InvalidObjectName"
    expected = {
        "rows": {
            "101": (True, "success", None),
            "102": (False, "failed", None),
            "103": (False, "success", None),
        },
        "overrides": {"retention_keep_last": 7},
    }
    assert _catalog_state(data / "catalog.sqlite3", site) == expected

    # Migrate the storage elsewhere and index it there: the state comes along.
    other = tmp_path / "other"
    storage_url = f"file://{data / 'storage'}"
    assert main(["migrate", "--no-progress", "--from", storage_url, "--to", f"file://{other}"]) == 0
    catalog = tmp_path / "other.sqlite3"
    args = ["reindex", "--backend", f"file://{other}", "--catalog-url", f"sqlite:///{catalog}"]
    assert main(args) == 0
    assert "restored the state of 2 artifact(s) and the policy of 1 site(s)" in (
        capsys.readouterr().out
    )
    assert _catalog_state(catalog, site) == expected

    # Lose the original catalog and reindex in place: the same state comes back.
    for file in data.glob("catalog.sqlite3*"):
        file.unlink()
    assert main(["reindex", "--data-dir", str(data)]) == 0
    assert _catalog_state(data / "catalog.sqlite3", site) == expected


def test_a_bucket_holding_only_its_record_can_be_deleted(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    upload(s3, bucket, "1")
    with ApiClient(gateway, create_api_key(gateway)) as api:
        api.post(f"/sites/{bucket}/artifacts/1/pin")
    s3.delete_object(Bucket=bucket, Key="builds/1.tar.gz")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
