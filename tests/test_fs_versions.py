"""The filesystem translator's versioning rows (translators/filesystem/versions.py): a store
written before versioning existed opens, keeps its objects and can then be versioned."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conformance.conftest import CTX
from tests.conformance.helpers import put, read
from translators.base import GetOptions
from translators.filesystem.backend import FilesystemBackend

pytestmark = pytest.mark.anyio


async def test_a_store_from_before_versioning_opens_and_versions(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    backend = FilesystemBackend(root, fsync=False)
    await backend.start()
    await backend.create_bucket(CTX, "b")
    await put(backend, "b", "k", b"old")
    await backend.close()
    # Turn the catalogue back into the schema of before versioning.
    with sqlite3.connect(root / "catalogue.sqlite3") as conn:
        conn.execute("DROP TABLE versions")
        conn.execute("DROP TABLE versioning")
        conn.execute("ALTER TABLE objects DROP COLUMN version_id")

    reopened = FilesystemBackend(root, fsync=False)
    await reopened.start()
    try:
        assert await read(reopened, "b", "k") == b"old"
        assert (await reopened.head_object(CTX, "b", "k")).version_id is None
        await reopened.put_bucket_versioning(CTX, "b", "Enabled")
        assert (await reopened.head_object(CTX, "b", "k")).version_id == "null"
        new = await put(reopened, "b", "k", b"new")
        assert new.version_id not in (None, "null")
        version = await reopened.get_version(CTX, "b", "k", "null", GetOptions())
        assert b"".join([c async for c in version.body]) == b"old"
    finally:
        await reopened.close()
