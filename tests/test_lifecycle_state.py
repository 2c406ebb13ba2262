"""Lifecycle configurations as catalog state, on SQLite and PostgreSQL: stored and read
back (migration 0008_lifecycle), one state with the ``retention_days`` override both ways,
kept in the site's state record (reindex restores them) and carried by backups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect

import policy
from commands.cli import main
from core.context import RequestContext
from policy.access_store import AccessStore
from policy.catalog import SqlCatalog
from policy.catalog_contents import CatalogContents
from policy.catalog_database import normalize_url
from policy.lifecycle import (
    Expiration,
    LifecycleFilter,
    LifecycleRule,
    LifecycleRules,
    NoncurrentExpiration,
    check_rules,
    retention_rule,
)
from policy.lifecycle_store import LifecycleStore
from policy.model import SitePolicy
from policy.policies import PolicyResolver
from policy.reindex import reindex
from policy.site_state import SiteState, load_site_state
from policy.stack import build_stack
from tests.support.postgres import catalog_url
from translators.filesystem.backend import FilesystemBackend

CTX = RequestContext(request_id="test-lifecycle-state", principal="root")
SITE = "site-a"
RULES: LifecycleRules = check_rules(
    [
        LifecycleRule(
            "logs",
            True,
            LifecycleFilter("logs/", (("kind", "débug"),), 1, 10**12, "and"),
            Expiration(days=3),
        ),
        LifecycleRule(
            "old",
            False,
            LifecycleFilter("tmp/", form="legacy"),
            Expiration(date=datetime(2031, 1, 1, tzinfo=UTC)),
            NoncurrentExpiration(5, 2),
            abort_after_days=1,
        ),
    ]
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path / "catalog") as value:
        yield value


@pytest.mark.anyio
async def test_rules_and_the_retention_window_are_stored_together(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        await catalog.set_site_overrides(SITE, {"quota_artifacts": 5})
        await catalog.replace_lifecycle(SITE, RULES, 14)
        assert await catalog.bucket_lifecycle(SITE) == RULES
        assert await catalog.all_bucket_lifecycle() == {SITE: RULES}
        assert await catalog.site_overrides(SITE) == {"quota_artifacts": 5, "retention_days": 14}
        await catalog.replace_lifecycle(SITE, RULES[1:], None)
        assert await catalog.bucket_lifecycle(SITE) == RULES[1:]
        assert await catalog.site_overrides(SITE) == {"quota_artifacts": 5}
        await catalog.replace_lifecycle(SITE, None, None)
        assert await catalog.bucket_lifecycle(SITE) is None
        assert await catalog.all_bucket_lifecycle() == {}
        await catalog.set_bucket_lifecycle(SITE, RULES)
        assert not await CatalogContents(catalog).is_empty()
        await AccessStore(catalog).remove_bucket_access(SITE)  # the site was deleted
        assert await catalog.bucket_lifecycle(SITE) is None
    finally:
        await catalog.close()


def test_the_migration_goes_down_and_up_again(url: str) -> None:
    anyio.run(_started, url)
    config = Config()
    config.set_main_option("script_location", str(Path(policy.__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0007_tagging")
        with engine.connect() as conn:
            assert "bucket_lifecycle" not in inspect(conn).get_table_names()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0008_lifecycle")
        with engine.connect() as conn:
            assert "bucket_lifecycle" in inspect(conn).get_table_names()
    finally:
        engine.dispose()


async def _started(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    await catalog.close()


@pytest.mark.anyio
async def test_retention_days_and_the_retention_rule_are_one_state(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    policies = PolicyResolver(SitePolicy(), catalog, ttl_s=60.0)
    store = LifecycleStore(catalog, policies)
    try:
        assert await store.configuration(SITE) is None
        # The artifact API sets the window: S3 clients see it as the retention rule.
        await policies.set_overrides(SITE, {"retention_days": 10, "retention_keep_last": 3})
        assert await store.configuration(SITE) == (retention_rule(10),)
        # A Put with the retention rule sets the window (the cached policy follows at once).
        assert (await policies.for_site(SITE)).retention_days == 10
        await store.store(SITE, (*RULES, retention_rule(5)))
        assert (await policies.for_site(SITE)).retention_days == 5
        assert await store.configuration(SITE) == (retention_rule(5), *RULES)
        # A Put without it clears the window; other overrides stay.
        await store.store(SITE, RULES)
        assert (await policies.for_site(SITE)).retention_days is None
        assert (await policies.for_site(SITE)).retention_keep_last == 3
        assert await store.configuration(SITE) == RULES
        # Delete clears both.
        await store.store(SITE, (retention_rule(7), RULES[0]))
        await store.store(SITE, None)
        assert await store.configuration(SITE) is None
        assert (await policies.for_site(SITE)).retention_days is None
        assert await catalog.site_overrides(SITE) == {"retention_keep_last": 3}
    finally:
        await catalog.close()


@pytest.mark.anyio
async def test_the_site_record_keeps_the_rules_and_reindex_restores_them(tmp_path: Path) -> None:
    storage = FilesystemBackend(tmp_path / "storage", fsync=False)
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    stack = build_stack(storage, url, SitePolicy(validate_archives=False), 1024**3)
    await stack.backend.start()
    try:
        await stack.backend.create_bucket(CTX, SITE)
        await LifecycleStore(stack.catalog, stack.policies).store(SITE, (retention_rule(9), *RULES))
        record = await load_site_state(storage, SITE)
        assert record is not None
        assert record.lifecycle == RULES
        assert record.overrides == {"retention_days": 9}
    finally:
        await stack.close()

    fresh = SqlCatalog(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    await fresh.start()
    try:
        await reindex(storage, fresh)
        store = LifecycleStore(fresh, PolicyResolver(SitePolicy(), fresh))
        assert await store.configuration(SITE) == (retention_rule(9), *RULES)
    finally:
        await fresh.close()
        await storage.close()


def test_a_record_without_lifecycle_reads_as_none() -> None:
    old = b'{"format":"pagewright-site-state","version":1,"site":"s","overrides":{},"artifacts":{}}'
    assert SiteState.from_json(old).lifecycle is None
    assert SiteState.from_json(SiteState("s", lifecycle=RULES).to_json()).lifecycle == RULES


async def _with_lifecycle(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        await catalog.replace_lifecycle("site-a", RULES, 4)
        await catalog.replace_lifecycle("site-b", RULES[:1], None)
    finally:
        await catalog.close()


async def _lifecycle_of(url: str) -> tuple[dict[str, LifecycleRules], dict[str, object]]:
    catalog = SqlCatalog(url)
    await catalog.start()
    try:
        return await catalog.all_bucket_lifecycle(), await catalog.site_overrides("site-a")
    finally:
        await catalog.close()


def test_rules_survive_backup_and_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    anyio.run(_with_lifecycle, source)
    file = tmp_path / "catalog.backup"
    assert main(["backup", str(file), "--catalog-url", source]) == 0
    assert "2 lifecycle configuration(s)" in capsys.readouterr().out
    assert main(["restore", str(file), "--catalog-url", target]) == 0
    rules, overrides = anyio.run(_lifecycle_of, target)
    assert rules == {"site-a": RULES, "site-b": RULES[:1]}
    assert overrides == {"retention_days": 4}
    # A damaged lifecycle line is refused before anything is written.
    file.write_text(file.read_text().replace('"abort_after_days":1', '"abort_after_days":0'))
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert main(["restore", str(file), "--catalog-url", empty]) == 1
    assert "DaysAfterInitiation" in capsys.readouterr().err
