"""The catalog's identities: the SQL of users, access keys, inline policies and site grants.

Functions on one open connection, run inside the transactions of
:class:`policy.identities.IdentityStore` (through :class:`policy.catalog_database.
CatalogDatabase`). They take values already checked by :mod:`policy.identity_rules` and
raise :class:`policy.identity_rules.IdentityError` for what only the database can tell
(a name taken, a user missing, a user still holding keys). Secrets arrive sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from policy.catalog_database import dialect_insert
from policy.catalog_schema import access_keys, api_keys, site_grants, user_policies, users
from policy.identity_model import (
    AccessKeyInfo,
    AccessKeyRecord,
    SiteGrant,
    User,
    UserPolicy,
)
from policy.identity_rules import (
    MAX_ACCESS_KEYS_PER_USER,
    AccessKeyStatus,
    IdentityError,
    check_inline_policy_size,
)
from policy.principals import Role

# Users


def no_such_user(name: str) -> IdentityError:
    return IdentityError("NoSuchEntity", f"The user with name {name} cannot be found.")


def insert_user(conn: Connection, user: User) -> None:
    """Add ``user``; ``EntityAlreadyExists`` when its name is taken in any letter case."""
    taken = conn.execute(
        select(users.c.name).where(func.lower(users.c.name) == user.name.lower())
    ).first()
    if taken is not None:
        raise IdentityError("EntityAlreadyExists", f"User with name {user.name} already exists.")
    conn.execute(insert(users).values(_user_row(user)))


def find_user(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return None if row is None else _user(row)


def require_user(conn: Connection, name: str) -> User:
    """The user ``name``, else ``NoSuchEntity``."""
    user = find_user(conn, name)
    if user is None:
        raise no_such_user(name)
    return user


def users_after(conn: Connection, path_prefix: str, after: str | None, limit: int) -> list[User]:
    """Up to ``limit`` users under ``path_prefix``, by name, after the name ``after``."""
    query = (
        select(users)
        .where(users.c.path.startswith(path_prefix, autoescape=True))
        .order_by(users.c.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(users.c.name > after)
    return [_user(row) for row in conn.execute(query)]


def delete_user(conn: Connection, name: str) -> None:
    """Delete the user ``name`` and its site grants. ``DeleteConflict`` while it still has
    access keys, inline policies or API keys (as IAM refuses while subordinate entities
    exist), ``NoSuchEntity`` when there is no such user."""
    require_user(conn, name)
    holds = (
        (access_keys, access_keys.c.user_name, "access keys"),
        (user_policies, user_policies.c.user_name, "policies"),
        (api_keys, api_keys.c.principal, "API keys"),
    )
    for table, column, what in holds:
        if conn.execute(select(column).select_from(table).where(column == name)).first():
            raise IdentityError(
                "DeleteConflict", f"Cannot delete entity, must delete {what} first."
            )
    conn.execute(delete(site_grants).where(site_grants.c.user_name == name))
    conn.execute(delete(users).where(users.c.name == name))


def all_users(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(select(users).order_by(users.c.name))]


def restore_users(conn: Connection, records: Sequence[User]) -> None:
    """Insert (or replace, by name) users as stored."""
    for user in records:
        _upsert(conn, users, _user_row(user), ["name"])


def _user_row(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "user_id": user.user_id,
        "path": user.path,
        "created_at": user.created_at,
    }


def _user(row: Row[Any]) -> User:
    return User(row.name, row.user_id, row.path, row.created_at)


# Access keys


def insert_key(conn: Connection, record: AccessKeyRecord) -> None:
    """Add a key to its (existing) user; ``LimitExceeded`` past IAM's keys per user."""
    user = record.info.user_name
    require_user(conn, user)
    held = conn.execute(
        select(func.count()).select_from(access_keys).where(access_keys.c.user_name == user)
    ).scalar_one()
    if held >= MAX_ACCESS_KEYS_PER_USER:
        raise IdentityError(
            "LimitExceeded",
            f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}",
        )
    conn.execute(insert(access_keys).values(_key_row(record)))


def keys_of(conn: Connection, user: str) -> list[AccessKeyInfo]:
    """The keys of the user ``user`` (``NoSuchEntity`` if none), oldest first."""
    require_user(conn, user)
    query = (
        select(access_keys)
        .where(access_keys.c.user_name == user)
        .order_by(access_keys.c.created_at, access_keys.c.access_key_id)
    )
    return [_key_info(row) for row in conn.execute(query)]


def set_key_status(conn: Connection, user: str, key_id: str, status: AccessKeyStatus) -> None:
    """Set the status of ``user``'s key ``key_id``; ``NoSuchEntity`` if either is missing."""
    require_user(conn, user)
    changed = conn.execute(
        update(access_keys)
        .where(access_keys.c.user_name == user, access_keys.c.access_key_id == key_id)
        .values(status=status)
    ).rowcount
    if not changed:
        raise _no_such_key(key_id)


def delete_key(conn: Connection, user: str, key_id: str) -> None:
    """Delete ``user``'s key ``key_id``; ``NoSuchEntity`` if either is missing."""
    require_user(conn, user)
    deleted = conn.execute(
        delete(access_keys).where(
            access_keys.c.user_name == user, access_keys.c.access_key_id == key_id
        )
    ).rowcount
    if not deleted:
        raise _no_such_key(key_id)


def key_for_use(conn: Connection, key_id: str) -> tuple[AccessKeyRecord, User] | None:
    """The key ``key_id`` and its user, as stored (any status), or None when the key or its
    user is gone."""
    row = conn.execute(
        select(access_keys, users.c.user_id, users.c.path, users.c.created_at.label("born"))
        .join(users, users.c.name == access_keys.c.user_name)
        .where(access_keys.c.access_key_id == key_id)
    ).first()
    if row is None:
        return None
    user = User(row.user_name, row.user_id, row.path, row.born)
    return AccessKeyRecord(_key_info(row), row.secret_sealed), user


def record_key_use(conn: Connection, key_id: str, when: datetime) -> None:
    conn.execute(
        update(access_keys).where(access_keys.c.access_key_id == key_id).values(last_used_at=when)
    )


def all_keys(conn: Connection) -> list[AccessKeyRecord]:
    query = select(access_keys).order_by(access_keys.c.user_name, access_keys.c.access_key_id)
    return [AccessKeyRecord(_key_info(row), row.secret_sealed) for row in conn.execute(query)]


def restore_keys(conn: Connection, records: Sequence[AccessKeyRecord]) -> None:
    """Insert (or replace, by id) keys as stored (their users restored first)."""
    for record in records:
        _upsert(conn, access_keys, _key_row(record), ["access_key_id"])


def _no_such_key(key_id: str) -> IdentityError:
    return IdentityError("NoSuchEntity", f"The Access Key with id {key_id} cannot be found.")


def _key_row(record: AccessKeyRecord) -> dict[str, Any]:
    info = record.info
    return {
        "access_key_id": info.access_key_id,
        "user_name": info.user_name,
        "secret_sealed": record.secret_sealed,
        "status": info.status,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_used_at": info.last_used_at,
    }


def _key_info(row: Row[Any]) -> AccessKeyInfo:
    return AccessKeyInfo(
        row.access_key_id,
        row.user_name,
        cast("AccessKeyStatus", row.status),
        row.created_at,
        row.expires_at,
        row.last_used_at,
    )


# Inline policies


def put_policy(conn: Connection, policy: UserPolicy) -> None:
    """Create or replace an inline policy of an existing user; ``LimitExceeded`` when the
    user's policies together would pass IAM's size limit."""
    require_user(conn, policy.user_name)
    others = conn.execute(
        select(user_policies.c.document).where(
            user_policies.c.user_name == policy.user_name,
            user_policies.c.policy_name != policy.policy_name,
        )
    ).scalars()
    check_inline_policy_size([*others, policy.document])
    _upsert(conn, user_policies, _policy_row(policy), ["user_name", "policy_name"])


def get_policy(conn: Connection, user: str, name: str) -> UserPolicy:
    """The inline policy ``name`` of ``user``; ``NoSuchEntity`` if either is missing."""
    require_user(conn, user)
    document = conn.execute(
        select(user_policies.c.document).where(
            user_policies.c.user_name == user, user_policies.c.policy_name == name
        )
    ).scalar()
    if document is None:
        raise _no_such_policy(name)
    return UserPolicy(user, name, document)


def policy_names(conn: Connection, user: str, after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` policy names of ``user`` (``NoSuchEntity`` if none), after ``after``."""
    require_user(conn, user)
    query = (
        select(user_policies.c.policy_name)
        .where(user_policies.c.user_name == user)
        .order_by(user_policies.c.policy_name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(user_policies.c.policy_name > after)
    return list(conn.execute(query).scalars())


def policies_of(conn: Connection, user: str) -> list[UserPolicy]:
    """Every inline policy of ``user`` by name (none for an unknown user)."""
    query = (
        select(user_policies)
        .where(user_policies.c.user_name == user)
        .order_by(user_policies.c.policy_name)
    )
    return [UserPolicy(row.user_name, row.policy_name, row.document) for row in conn.execute(query)]


def delete_policy(conn: Connection, user: str, name: str) -> None:
    require_user(conn, user)
    deleted = conn.execute(
        delete(user_policies).where(
            user_policies.c.user_name == user, user_policies.c.policy_name == name
        )
    ).rowcount
    if not deleted:
        raise _no_such_policy(name)


def all_policies(conn: Connection) -> list[UserPolicy]:
    query = select(user_policies).order_by(user_policies.c.user_name, user_policies.c.policy_name)
    return [UserPolicy(row.user_name, row.policy_name, row.document) for row in conn.execute(query)]


def restore_policies(conn: Connection, records: Sequence[UserPolicy]) -> None:
    for policy in records:
        _upsert(conn, user_policies, _policy_row(policy), ["user_name", "policy_name"])


def _no_such_policy(name: str) -> IdentityError:
    return IdentityError("NoSuchEntity", f"The user policy with name {name} cannot be found.")


def _policy_row(policy: UserPolicy) -> dict[str, Any]:
    return {
        "user_name": policy.user_name,
        "policy_name": policy.policy_name,
        "document": policy.document,
    }


# Site grants


def put_grant(conn: Connection, grant: SiteGrant) -> None:
    """Give an existing user ``grant.role`` on ``grant.site`` (replacing its role there)."""
    require_user(conn, grant.user_name)
    restore_grants(conn, [grant])


def delete_grant(conn: Connection, site: str, user: str) -> bool:
    """Take ``user``'s role on ``site`` away; False if it had none."""
    statement = delete(site_grants).where(
        site_grants.c.site == site, site_grants.c.user_name == user
    )
    return conn.execute(statement).rowcount > 0


def grants(conn: Connection, site: str | None, user: str | None) -> list[SiteGrant]:
    """Grants, of one site and/or one user or all, by site then user."""
    query = select(site_grants).order_by(site_grants.c.site, site_grants.c.user_name)
    if site is not None:
        query = query.where(site_grants.c.site == site)
    if user is not None:
        query = query.where(site_grants.c.user_name == user)
    return [SiteGrant(row.site, row.user_name, Role(row.role)) for row in conn.execute(query)]


def restore_grants(conn: Connection, records: Sequence[SiteGrant]) -> None:
    for grant in records:
        row = {"site": grant.site, "user_name": grant.user_name, "role": grant.role.value}
        _upsert(conn, site_grants, row, ["site", "user_name"])


def clear(conn: Connection) -> None:
    """Delete every identity row (dependants first)."""
    for table in (site_grants, user_policies, access_keys, users):
        conn.execute(delete(table))


def _upsert(conn: Connection, table: Any, row: dict[str, Any], keys: list[str]) -> None:
    statement = dialect_insert(conn)(table).values(row)
    changed = {name: statement.excluded[name] for name in row if name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changed))
