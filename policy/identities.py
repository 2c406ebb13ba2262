"""The identity store: IAM users, their access keys and inline policies, and site roles.

:class:`IdentityStore` keeps them in the catalog's database (tables of migration
``0003_identities``; SQL in :mod:`policy.catalog_identities`), each method one transaction
in the catalog's worker threads. The IAM API (``gateway.query.iam``) and the ``users``,
``keys`` and ``sites`` commands use it; S3 authentication asks it for credentials
(:meth:`IdentityStore.credential`).

Contracts:

* Input is checked against IAM's rules first (:mod:`policy.identity_rules`); every refusal
  is an :class:`~policy.identity_rules.IdentityError` carrying the IAM error code.
* A secret access key is returned once, by :meth:`IdentityStore.create_access_key`; the
  catalog holds it sealed under the master key (:class:`policy.secret_box.SecretBox`).
* A user is deleted only once it has no access keys, inline policies or API keys
  (``DeleteConflict``, as IAM); its site grants go with it.
* Policy documents are stored as given; only JSON well-formedness and IAM's aggregate size
  limit are checked here (their grammar is the policy engine's, ``policy.access``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from sqlalchemy import Connection

from core.errors import S3Error
from policy import catalog_identities as sql
from policy.catalog import SqlCatalog
from policy.credentials import Credential
from policy.identity_model import (
    AccessKeyInfo,
    AccessKeyRecord,
    NewAccessKey,
    Page,
    SiteGrant,
    User,
    UserPolicy,
)
from policy.identity_rules import (
    AccessKeyStatus,
    IdentityError,
    check_access_key_id,
    check_max_items,
    check_new_user_name,
    check_path,
    check_policy_document,
    check_policy_name,
    check_status,
    check_user_name,
    is_access_key_id,
    new_access_key_id,
    new_secret_access_key,
    new_user_id,
)
from policy.principals import Principal, Role
from policy.secret_box import SealedValueError, SecretBox

log = logging.getLogger("pagewright.identities")
_T = TypeVar("_T")

#: A key's ``last_used_at`` is written at most this often (per key and process), so a storm
#: of requests does not turn into a storm of catalog writes.
LAST_USED_INTERVAL_S = 60.0


class IdentityStore:
    """Identities in ``catalog``'s database (started by whoever owns the catalog), with
    secrets sealed by ``box``. ``clock`` (monotonic seconds) paces last-used writes."""

    def __init__(
        self,
        catalog: SqlCatalog,
        box: SecretBox,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = catalog.database
        self._box = box
        self._clock = clock
        self._last_recorded: dict[str, float] = {}

    # Users

    async def create_user(self, name: str, path: str = "/") -> User:
        """A new user (``EntityAlreadyExists`` if the name is taken, in any letter case;
        ``ValidationError`` for a malformed name or one of the gateway's own, ``root``)."""
        user = User(check_new_user_name(name), new_user_id(), check_path(path), _now())
        await self._database.run(True, partial(sql.insert_user, user=user))
        return user

    async def get_user(self, name: str) -> User:
        """The user ``name``; ``NoSuchEntity`` if there is none."""
        return await self._database.run(False, partial(sql.require_user, name=name))

    async def find_user(self, name: str) -> User | None:
        """The user ``name``, or None."""
        return await self._database.run(False, partial(sql.find_user, name=name))

    async def list_users(
        self, *, marker: str | None = None, max_items: int = 100, path_prefix: str = "/"
    ) -> Page[User]:
        """Users whose path starts with ``path_prefix``, by name, ``max_items`` (1..1000) a
        page; ``marker`` is the previous page's."""
        limit = check_max_items(max_items)
        found = await self._database.run(
            False,
            partial(sql.users_after, path_prefix=path_prefix, after=marker, limit=limit + 1),
        )
        return _page(found, limit, lambda user: user.name)

    async def delete_user(self, name: str) -> None:
        """Delete the user ``name`` (see the module docstring: ``DeleteConflict``)."""
        await self._database.run(True, partial(sql.delete_user, name=name))

    # Access keys

    async def create_access_key(
        self, user: str, expires_at: datetime | None = None
    ) -> NewAccessKey:
        """A new active key for ``user``, valid until ``expires_at`` (None: until deleted).
        Its secret is in the result and nowhere else in the clear. ``LimitExceeded`` past
        two keys per user, ``NoSuchEntity`` for an unknown user."""
        secret = new_secret_access_key()
        info = AccessKeyInfo(new_access_key_id(), user, "Active", _now(), _aware(expires_at), None)
        record = AccessKeyRecord(info, self._box.seal(secret.encode()))
        await self._database.run(True, partial(sql.insert_key, record=record))
        return NewAccessKey(info, secret)

    async def list_access_keys(self, user: str) -> list[AccessKeyInfo]:
        """``user``'s keys (never their secrets), oldest first."""
        return await self._database.run(False, partial(sql.keys_of, user=user))

    async def update_access_key(self, user: str, key_id: str, status: str) -> None:
        """Make ``user``'s key ``Active`` or ``Inactive`` (an inactive key authenticates no
        one; every replica stops accepting it within its credential cache's TTL)."""
        checked: AccessKeyStatus = check_status(status)
        await self._database.run(
            True,
            partial(
                sql.set_key_status, user=user, key_id=check_access_key_id(key_id), status=checked
            ),
        )

    async def delete_access_key(self, user: str, key_id: str) -> None:
        work = partial(sql.delete_key, user=user, key_id=check_access_key_id(key_id))
        await self._database.run(True, work)

    async def credential(self, key_id: str) -> Credential | None:
        """The credential of the access key ``key_id`` for S3 authentication, or None when
        the key is unknown, inactive, expired, its user is gone or its secret does not open
        under this master key. Records the key's use at most once a minute per key (a
        failure to record, on a full disk say, does not refuse the key). An id this gateway
        could not have issued is refused without a database read."""
        if not is_access_key_id(key_id):
            return None
        found = await self._database.run(False, partial(sql.key_for_use, key_id=key_id))
        if found is None:
            return None
        record, user = found
        info = record.info
        now = _now()
        if info.status != "Active" or (info.expires_at is not None and info.expires_at <= now):
            return None
        try:
            secret = self._box.open(record.secret_sealed).decode()
        except SealedValueError:
            log.error("access key %s does not open under this master key", key_id)
            return None
        await self._record_use(key_id, now)
        return Credential(
            key_id,
            secret,
            user.name,
            Principal(user.name, "user"),
            expires_at=info.expires_at,
        )

    async def _record_use(self, key_id: str, now: datetime) -> None:
        tick = self._clock()
        last = self._last_recorded.get(key_id)
        if last is not None and tick - last < LAST_USED_INTERVAL_S:
            return
        self._last_recorded[key_id] = tick
        # A database that refuses writes (full, read-only) refuses no key.
        with suppress(S3Error):
            await self._database.run(True, partial(sql.record_key_use, key_id=key_id, when=now))

    # Inline policies

    async def put_user_policy(self, user: str, name: str, document: str) -> None:
        """Create or replace ``user``'s inline policy ``name`` (``MalformedPolicyDocument``
        unless JSON; ``LimitExceeded`` past 2,048 characters, whitespace aside, for all of
        the user's inline policies together)."""
        policy = UserPolicy(
            check_user_name(user), check_policy_name(name), check_policy_document(document)
        )
        await self._database.run(True, partial(sql.put_policy, policy=policy))

    async def get_user_policy(self, user: str, name: str) -> UserPolicy:
        return await self._database.run(False, partial(sql.get_policy, user=user, name=name))

    async def list_user_policies(
        self, user: str, *, marker: str | None = None, max_items: int = 100
    ) -> Page[str]:
        """``user``'s inline policy names, by name, ``max_items`` (1..1000) a page."""
        limit = check_max_items(max_items)
        found = await self._database.run(
            False, partial(sql.policy_names, user=user, after=marker, limit=limit + 1)
        )
        return _page(found, limit, lambda name: name)

    async def delete_user_policy(self, user: str, name: str) -> None:
        await self._database.run(True, partial(sql.delete_policy, user=user, name=name))

    # What the access decision reads (policy.access_control.IdentitySource)

    async def user_policy_documents(self, user: str) -> list[tuple[str, str]]:
        """(policy name, JSON document) of each inline policy of ``user`` ([] for an
        unknown user)."""
        found = await self._database.run(False, partial(sql.policies_of, user=user))
        return [(policy.policy_name, policy.document) for policy in found]

    async def user_grants(self, user: str) -> list[tuple[str, Role]]:
        """(site, role) of each role granted to ``user``."""
        return [(grant.site, grant.role) for grant in await self.grants(user=user)]

    # Site grants

    async def grant(self, site: str, user: str, role: Role | str) -> SiteGrant:
        """Give ``user`` ``role`` on ``site``, replacing any role it had there
        (``ValidationError`` for an unknown role, ``NoSuchEntity`` for an unknown user)."""
        grant = SiteGrant(site, user, _role(role))
        await self._database.run(True, partial(sql.put_grant, grant=grant))
        return grant

    async def revoke(self, site: str, user: str) -> bool:
        """Take ``user``'s role on ``site`` away; False if it had none."""
        return await self._database.run(True, partial(sql.delete_grant, site=site, user=user))

    async def grants(self, site: str | None = None, user: str | None = None) -> list[SiteGrant]:
        """Grants of ``site`` and/or ``user`` (every grant when both are None)."""
        return await self._database.run(False, partial(sql.grants, site=site, user=user))


Identities = tuple[list[User], list[AccessKeyRecord], list[UserPolicy], list[SiteGrant]]


async def export_identities(catalog: SqlCatalog) -> Identities:
    """Every identity row of ``catalog`` as stored (secrets sealed), read in one transaction
    (for ``policy.backup``: no master key is needed, none is opened)."""

    def work(conn: Connection) -> Identities:
        return (
            sql.all_users(conn),
            sql.all_keys(conn),
            sql.all_policies(conn),
            sql.grants(conn, None, None),
        )

    return await catalog.database.run(False, work)


async def restore_identities(catalog: SqlCatalog, identities: Identities) -> None:
    """Insert (or replace) identity rows as stored, users first, in one transaction. Keys
    open only under the master key they were sealed with."""
    users, keys, policies, grants = identities

    def work(conn: Connection) -> None:
        sql.restore_users(conn, users)
        sql.restore_keys(conn, keys)
        sql.restore_policies(conn, policies)
        sql.restore_grants(conn, grants)

    await catalog.database.run(True, work)


async def find_user(catalog: SqlCatalog, name: str) -> User | None:
    """The user ``name`` in ``catalog``, or None; needs no master key (API keys' owners are
    checked with it)."""
    return await catalog.database.run(False, partial(sql.find_user, name=name))


def _page(found: list[_T], limit: int, name: Callable[[_T], str]) -> Page[_T]:
    if len(found) > limit:
        return Page(found[:limit], name(found[limit - 1]))
    return Page(found, None)


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise IdentityError("ValidationError", f"unknown role {role!r}; one of {roles}") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
