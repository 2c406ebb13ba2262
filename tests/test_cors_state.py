"""Sites' CORS rules as catalog state: kept in the site's state record (so reindex brings
them back), carried by backups, and cached for the request path with stale-if-error."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from commands.cli import main
from core.context import RequestContext
from core.errors import S3Error
from policy.catalog import SqlCatalog
from policy.catalog_contents import CatalogContents
from policy.cors import CorsRule, CorsRules
from policy.cors_settings import CorsSettings
from policy.model import SitePolicy
from policy.reindex import reindex
from policy.site_state import SiteState, load_site_state
from policy.stack import build_stack
from translators.filesystem.backend import FilesystemBackend

CTX = RequestContext(request_id="test-cors-state", principal="root")
RULES: CorsRules = (
    CorsRule(("https://*.example.com",), ("GET", "POST"), ("*",), ("ETag",), 60, "web"),
    CorsRule(("*",), ("HEAD",)),
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_site_record_keeps_cors_rules_and_reindex_restores_them(
    tmp_path: Path,
) -> None:
    storage = FilesystemBackend(tmp_path / "storage", fsync=False)
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(storage, url, SitePolicy(validate_archives=False), 1024**3)
    await stack.backend.start()
    try:
        await stack.backend.create_bucket(CTX, "site-a")
        await stack.catalog.set_bucket_cors("site-a", RULES)
        record = await load_site_state(storage, "site-a")
        assert record is not None
        assert record.cors == RULES
        await stack.catalog.set_bucket_cors("site-a", None)
        cleared = await load_site_state(storage, "site-a")
        assert cleared is not None
        assert cleared.cors is None
        await stack.catalog.set_bucket_cors("site-a", RULES)
    finally:
        await stack.close()

    fresh = SqlCatalog(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    await fresh.start()
    try:
        await reindex(storage, fresh)
        assert await fresh.bucket_cors("site-a") == RULES
    finally:
        await fresh.close()
        await storage.close()


def test_a_record_without_cors_reads_as_none() -> None:
    old = b'{"format":"pagewright-site-state","version":1,"site":"s","overrides":{},"artifacts":{}}'
    assert SiteState.from_json(old).cors is None
    assert SiteState.from_json(SiteState("s", cors=RULES).to_json()).cors == RULES


async def _with_cors(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        await catalog.set_bucket_cors("site-a", RULES)
        await catalog.set_bucket_cors("site-b", RULES[1:])
    finally:
        await catalog.close()


async def _cors_of(url: str) -> dict[str, CorsRules]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        return await CatalogContents(catalog).all_bucket_cors()
    finally:
        await catalog.close()


def test_cors_rules_survive_backup_and_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    anyio.run(_with_cors, source)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    assert "2 CORS configuration(s)" in capsys.readouterr().out
    assert main(["restore", str(file), "--catalog-url", target]) == 0
    assert anyio.run(_cors_of, target) == {"site-a": RULES, "site-b": RULES[1:]}
    # A damaged CORS line is refused before anything is written.
    file.write_text(file.read_text().replace('"HEAD"', '"TRACE"'))
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert main(["restore", str(file), "--catalog-url", empty]) == 1
    assert "TRACE" in capsys.readouterr().err


class _Catalog:
    def __init__(self) -> None:
        self.down = False
        self.reads = 0
        self.rules: CorsRules | None = RULES

    async def bucket_cors(self, site: str) -> CorsRules | None:
        self.reads += 1
        if self.down:
            raise S3Error("ServiceUnavailable", "The catalog database cannot be used.")
        return self.rules

    async def set_bucket_cors(self, site: str, rules: CorsRules | None) -> None:
        self.rules = rules


@pytest.mark.anyio
async def test_rules_are_cached_briefly_and_served_stale_while_the_catalog_is_down() -> None:
    now = [0.0]
    catalog = _Catalog()
    settings = CorsSettings(catalog, cache_seconds=2, stale_seconds=60, clock=lambda: now[0])
    assert await settings.rules("site") == RULES
    assert await settings.rules("site") == RULES
    assert catalog.reads == 1  # a preflight storm reads the catalog once per period
    await settings.store("site", None)  # a change made here is seen at once
    assert await settings.rules("site") is None
    await settings.store("site", RULES)
    assert await settings.rules("site") == RULES
    catalog.down = True
    now[0] = 30.0
    assert await settings.rules("site") == RULES
    with pytest.raises(S3Error):
        await settings.rules("never-loaded")
    now[0] = 70.0
    with pytest.raises(S3Error):
        await settings.rules("site")
