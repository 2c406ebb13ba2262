"""IdentityStore on SQLite and PostgreSQL: users, access keys (sealed at rest), inline
policies, site grants, and the credentials S3 authentication reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect, text

import policy
from policy.api_keys import ApiKeyStore
from policy.catalog import SqlCatalog
from policy.catalog_api_keys import api_key_id, new_key
from policy.catalog_database import normalize_url
from policy.catalog_schema import api_keys, metadata
from policy.identities import LAST_USED_INTERVAL_S, IdentityStore
from policy.identity_rules import IdentityError
from policy.principals import Principal, Role
from policy.secret_box import SecretBox
from tests.support.clock import Clock
from tests.support.postgres import catalog_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with catalog_url(request.param, tmp_path) as value:
        yield value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_key(Fernet.generate_key())


@pytest.fixture
async def catalog(url: str) -> AsyncIterator[SqlCatalog]:
    catalog = SqlCatalog(url)
    await catalog.start()
    yield catalog
    await catalog.close()


@pytest.fixture
def store(catalog: SqlCatalog, box: SecretBox, clock: Clock) -> IdentityStore:
    return IdentityStore(catalog, box, clock=clock)


async def refused(code: str, awaitable: object) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.code == code, caught.value.message
    return caught.value


async def test_users_are_created_listed_in_pages_and_deleted(store: IdentityStore) -> None:
    created = await store.create_user("alice")
    assert created.name == "alice"
    assert created.path == "/"
    assert created.user_id.startswith("AIDA")
    assert len(created.user_id) == 21
    assert created.arn == "arn:aws:iam::000000000000:user/alice"
    assert await store.get_user("alice") == created
    for name in ("bob", "carol", "dave"):
        await store.create_user(name, path="/team/")
    first = await store.list_users(max_items=3)
    assert [u.name for u in first.items] == ["alice", "bob", "carol"]
    assert first.truncated
    assert first.marker == "carol"
    rest = await store.list_users(marker=first.marker, max_items=3)
    assert [u.name for u in rest.items] == ["dave"]
    assert not rest.truncated
    team = await store.list_users(path_prefix="/team/")
    assert [u.name for u in team.items] == ["bob", "carol", "dave"]
    await store.delete_user("bob")
    await refused("NoSuchEntity", store.get_user("bob"))
    await refused("NoSuchEntity", store.delete_user("bob"))


async def test_user_names_follow_iam_rules(store: IdentityStore) -> None:
    await store.create_user("a+b=c,d.e@f-g_h")
    await refused("EntityAlreadyExists", store.create_user("a+b=c,d.e@f-g_h"))
    await store.create_user("Alice")
    await refused("EntityAlreadyExists", store.create_user("ALICE"))
    for bad in ("", "x" * 65, "has space", "slash/name", "é"):
        await refused("ValidationError", store.create_user(bad))
    await refused("ValidationError", store.create_user("ok", path="no-slashes"))
    for reserved in ("root", "Root", "anonymous"):
        await refused("ValidationError", store.create_user(reserved))
    await refused("ValidationError", store.list_users(max_items=0))


async def test_access_keys_are_sealed_at_rest(
    store: IdentityStore, url: str, box: SecretBox
) -> None:
    await store.create_user("alice")
    key = await store.create_access_key("alice")
    assert key.access_key_id.startswith("AKIA")
    assert len(key.access_key_id) == 20
    assert len(key.secret_access_key) == 40
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM access_keys")).all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert key.secret_access_key not in stored
    sealed = rows[0]._mapping["secret_sealed"]
    assert box.open(sealed).decode() == key.secret_access_key


async def test_two_keys_per_user_then_limit_exceeded(store: IdentityStore) -> None:
    await store.create_user("alice")
    first = await store.create_access_key("alice")
    second = await store.create_access_key("alice")
    await refused("LimitExceeded", store.create_access_key("alice"))
    listed = await store.list_access_keys("alice")
    assert {k.access_key_id for k in listed} == {first.access_key_id, second.access_key_id}
    assert all(k.status == "Active" for k in listed)
    await store.delete_access_key("alice", first.access_key_id)
    await store.create_access_key("alice")
    await refused("NoSuchEntity", store.create_access_key("nobody"))
    await refused("NoSuchEntity", store.list_access_keys("nobody"))
    await refused("NoSuchEntity", store.delete_access_key("alice", first.access_key_id))


async def test_credential_follows_status_expiry_and_user(store: IdentityStore) -> None:
    await store.create_user("alice")
    key = await store.create_access_key("alice")
    credential = await store.credential(key.access_key_id)
    assert credential is not None
    assert credential.secret_key == key.secret_access_key
    assert credential.principal == "alice"
    assert credential.identity == Principal("alice", "user")
    await store.update_access_key("alice", key.access_key_id, "Inactive")
    assert await store.credential(key.access_key_id) is None
    await store.update_access_key("alice", key.access_key_id, "Active")
    assert await store.credential(key.access_key_id) is not None
    await refused("ValidationError", store.update_access_key("alice", key.access_key_id, "Off"))
    await refused("NoSuchEntity", store.update_access_key("bob", key.access_key_id, "Active"))
    assert await store.credential("AKIAUNKNOWNUNKNOWN00") is None
    assert await store.credential("not-a-key-id") is None
    await refused("ValidationError", store.delete_access_key("alice", "not-a-key-id"))

    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = await store.create_access_key("alice", expires_at=past)
    assert await store.credential(expired.access_key_id) is None
    future = datetime.now(UTC) + timedelta(days=1)
    await store.delete_access_key("alice", expired.access_key_id)
    later = await store.create_access_key("alice", expires_at=future)
    found = await store.credential(later.access_key_id)
    assert found is not None
    assert found.expires_at is not None
    assert abs(found.expires_at - future) < timedelta(seconds=1)


async def test_a_key_of_another_master_key_does_not_authenticate(
    catalog: SqlCatalog, store: IdentityStore
) -> None:
    await store.create_user("alice")
    key = await store.create_access_key("alice")
    other = IdentityStore(catalog, SecretBox.from_key(Fernet.generate_key()))
    assert await other.credential(key.access_key_id) is None


async def test_last_used_is_recorded_at_most_once_a_minute(
    store: IdentityStore, clock: Clock
) -> None:
    await store.create_user("alice")
    key = await store.create_access_key("alice")
    assert (await store.list_access_keys("alice"))[0].last_used_at is None
    await store.credential(key.access_key_id)
    first = (await store.list_access_keys("alice"))[0].last_used_at
    assert first is not None
    clock.now += 1
    await store.credential(key.access_key_id)
    assert (await store.list_access_keys("alice"))[0].last_used_at == first
    clock.now += LAST_USED_INTERVAL_S
    await store.credential(key.access_key_id)
    later = (await store.list_access_keys("alice"))[0].last_used_at
    assert later is not None
    assert later > first


async def test_delete_user_conflicts_while_it_holds_keys_or_policies(
    store: IdentityStore, catalog: SqlCatalog
) -> None:
    await store.create_user("alice")
    key = await store.create_access_key("alice")
    await refused("DeleteConflict", store.delete_user("alice"))
    await store.delete_access_key("alice", key.access_key_id)
    await store.put_user_policy("alice", "read", '{"Version": "2012-10-17", "Statement": []}')
    await refused("DeleteConflict", store.delete_user("alice"))
    await store.delete_user_policy("alice", "read")
    api_key = await ApiKeyStore(catalog).create_api_key("alice")
    await refused("DeleteConflict", store.delete_user("alice"))
    assert await ApiKeyStore(catalog).revoke_api_key(api_key_id(api_key) or "")
    await store.grant("site-a", "alice", Role.writer)
    await store.delete_user("alice")
    assert await store.grants() == []
    await store.create_user("alice")
    assert await store.grants(user="alice") == []


async def test_inline_policies(store: IdentityStore) -> None:
    await store.create_user("alice")
    document = json.dumps({"Version": "2012-10-17", "Statement": []})
    await store.put_user_policy("alice", "b-policy", document)
    await store.put_user_policy("alice", "a-policy", document)
    got = await store.get_user_policy("alice", "b-policy")
    assert got.document == document
    page = await store.list_user_policies("alice", max_items=1)
    assert page.items == ["a-policy"]
    assert page.marker == "a-policy"
    assert (await store.list_user_policies("alice", marker=page.marker)).items == ["b-policy"]
    await refused("MalformedPolicyDocument", store.put_user_policy("alice", "x", "{nope"))
    await refused("MalformedPolicyDocument", store.put_user_policy("alice", "x", "[]"))
    await refused("ValidationError", store.put_user_policy("alice", "bad name", document))
    await refused("NoSuchEntity", store.get_user_policy("alice", "missing"))
    await refused("NoSuchEntity", store.put_user_policy("bob", "x", document))
    await refused("NoSuchEntity", store.delete_user_policy("alice", "missing"))


async def test_inline_policies_share_a_size_limit(store: IdentityStore) -> None:
    await store.create_user("alice")

    def sized(chars: int) -> str:
        padding = chars - len('{"Sid":""}')
        return json.dumps({"Sid": "x" * padding}, separators=(",", ":"))

    await store.put_user_policy("alice", "one", sized(1500))
    await refused("LimitExceeded", store.put_user_policy("alice", "two", sized(600)))
    await store.put_user_policy("alice", "two", sized(548))
    # Replacing a policy counts its new size, not old + new; whitespace does not count.
    await store.put_user_policy("alice", "one", sized(1500).replace(",", ", \n"))


async def test_site_grants(store: IdentityStore) -> None:
    await store.create_user("alice")
    await store.create_user("bob")
    await store.grant("site-a", "alice", "reader")
    await store.grant("site-a", "alice", Role.owner)
    await store.grant("site-b", "alice", Role.deployer)
    await store.grant("site-a", "bob", Role.writer)
    assert [(g.site, g.user_name, g.role) for g in await store.grants(site="site-a")] == [
        ("site-a", "alice", Role.owner),
        ("site-a", "bob", Role.writer),
    ]
    assert [g.site for g in await store.grants(user="alice")] == ["site-a", "site-b"]
    await refused("ValidationError", store.grant("site-a", "bob", "admin"))
    await refused("NoSuchEntity", store.grant("site-a", "carol", Role.reader))
    assert await store.revoke("site-a", "bob")
    assert not await store.revoke("site-a", "bob")
    assert len(await store.grants()) == 2


async def test_api_keys_can_expire(catalog: SqlCatalog) -> None:
    keys = ApiKeyStore(catalog)
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = await keys.create_api_key("root", expires_at=past)
    live = await keys.create_api_key("root", expires_at=datetime.now(UTC) + timedelta(1))
    forever = await keys.create_api_key("root")
    assert await keys.principal_for_api_key(expired) is None
    assert await keys.principal_for_api_key(live) == "root"
    assert await keys.principal_for_api_key(forever) == "root"
    infos = await keys.list_api_keys()
    assert sum(info.expires_at is not None for info in infos) == 2


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(policy.__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    return config


async def test_the_schema_is_what_the_migrations_build(url: str) -> None:
    catalog = SqlCatalog(url)
    await catalog.start()
    await catalog.close()
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


async def test_upgrade_keeps_api_keys_and_downgrade_removes_identities(url: str) -> None:
    config = _alembic_config()
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0002_leases")
    finally:
        engine.dispose()
    old_secret, old_record = new_key("root")
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            row = {k: v for k, v in asdict(old_record).items() if k != "expires_at"}
            conn.execute(api_keys.insert().values(row))
    finally:
        engine.dispose()
    catalog = SqlCatalog(url)
    await catalog.start()
    keys = ApiKeyStore(catalog)
    try:
        assert await keys.principal_for_api_key(old_secret) == "root"
        assert (await keys.list_api_keys())[0].expires_at is None
    finally:
        await catalog.close()
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0002_leases")
        tables = set(inspect(engine).get_table_names())
        assert "users" not in tables
        assert "access_keys" not in tables
        assert "api_keys" in tables
    finally:
        engine.dispose()
