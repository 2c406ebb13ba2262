"""IAM's API (query protocol, version 2010-05-08) over the identity store.

Actions: users (Create, Get, List, Delete), their access keys (Create, List, Update,
Delete) and inline policies (Put, Get, List, Delete). Every action first asks
:func:`policy.iam_access.may_call_iam` (the policy engine, ``iam:<Action>``); refusals are
IAM's errors (``NoSuchEntity`` 404, ``EntityAlreadyExists``/``DeleteConflict``/
``LimitExceeded`` 409, ``MalformedPolicyDocument``/``ValidationError`` 400,
``AccessDenied`` 403).
:func:`register_iam` adds them to a dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import quote

from lxml import etree

from gateway.audit import AuditEntry, audit
from gateway.credentials import CredentialResolver
from gateway.query.dispatch import QueryAction, QueryCall, QueryDispatcher
from gateway.query.errors import QueryError
from gateway.query.xml import child, result
from policy.access_control import AccessControl
from policy.iam_access import iam_resource, may_call_iam
from policy.identities import IdentityStore
from policy.identity_model import AccessKeyInfo, User
from policy.principals import ACCOUNT_ID

VERSION: Final = "2010-05-08"
NAMESPACE: Final = "https://iam.amazonaws.com/doc/2010-05-08/"
SERVICE: Final = "iam"

Handler = Callable[[QueryCall], Awaitable[etree._Element | None]]


class IamActions:
    """The IAM handlers over ``store``. Key changes are told to ``credentials``, so this
    replica stops accepting a deactivated or deleted key at once; a change of a user's
    policies (or the user) to ``user_changed``, so the access decision's cache forgets it."""

    def __init__(
        self,
        store: IdentityStore,
        credentials: CredentialResolver,
        user_changed: Callable[[str], None] = lambda _user: None,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._user_changed = user_changed

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateUser": self.create_user,
            "GetUser": self.get_user,
            "ListUsers": self.list_users,
            "DeleteUser": self.delete_user,
            "CreateAccessKey": self.create_access_key,
            "ListAccessKeys": self.list_access_keys,
            "UpdateAccessKey": self.update_access_key,
            "DeleteAccessKey": self.delete_access_key,
            "PutUserPolicy": self.put_user_policy,
            "GetUserPolicy": self.get_user_policy,
            "ListUserPolicies": self.list_user_policies,
            "DeleteUserPolicy": self.delete_user_policy,
        }

    # Users

    async def create_user(self, call: QueryCall) -> etree._Element:
        user = await self._store.create_user(call.required("UserName"), call.param("Path") or "/")
        body = result(call.action)
        _user(child(body, "User"), user)
        return body

    async def get_user(self, call: QueryCall) -> etree._Element:
        body = result(call.action)
        name = call.param("UserName")
        if name is None and call.principal.is_root:
            root = child(body, "User")
            child(root, "UserId", ACCOUNT_ID)
            child(root, "Arn", call.principal.arn)
            return body
        user = await self._store.get_user(name or call.principal.name)
        _user(child(body, "User"), user)
        return body

    async def list_users(self, call: QueryCall) -> etree._Element:
        page = await self._store.list_users(
            marker=call.param("Marker"),
            max_items=call.integer("MaxItems", 100),
            path_prefix=call.param("PathPrefix") or "/",
        )
        body = result(call.action)
        members = child(body, "Users")
        for user in page.items:
            _user(child(members, "member"), user)
        _paging(body, page.marker)
        return body

    async def delete_user(self, call: QueryCall) -> None:
        name = call.required("UserName")
        await self._store.delete_user(name)
        self._user_changed(name)

    # Access keys

    async def create_access_key(self, call: QueryCall) -> etree._Element:
        key = await self._store.create_access_key(self._user_named(call))
        body = result(call.action)
        element = child(body, "AccessKey")
        child(element, "UserName", key.info.user_name)
        child(element, "AccessKeyId", key.access_key_id)
        child(element, "Status", key.info.status)
        child(element, "SecretAccessKey", key.secret_access_key)
        child(element, "CreateDate", key.info.created_at)
        return body

    async def list_access_keys(self, call: QueryCall) -> etree._Element:
        call.integer("MaxItems", 100)  # checked; a user has at most two keys: one page
        keys = await self._store.list_access_keys(self._user_named(call))
        body = result(call.action)
        members = child(body, "AccessKeyMetadata")
        for key in keys:
            _key(child(members, "member"), key)
        _paging(body, None)
        return body

    async def update_access_key(self, call: QueryCall) -> None:
        key_id = call.required("AccessKeyId")
        status = call.required("Status")
        await self._store.update_access_key(self._user_named(call), key_id, status)
        self._credentials.forget(key_id)

    async def delete_access_key(self, call: QueryCall) -> None:
        key_id = call.required("AccessKeyId")
        await self._store.delete_access_key(self._user_named(call), key_id)
        self._credentials.forget(key_id)

    # Inline policies

    async def put_user_policy(self, call: QueryCall) -> None:
        user = call.required("UserName")
        await self._store.put_user_policy(
            user, call.required("PolicyName"), call.required("PolicyDocument")
        )
        self._user_changed(user)

    async def get_user_policy(self, call: QueryCall) -> etree._Element:
        policy = await self._store.get_user_policy(
            call.required("UserName"), call.required("PolicyName")
        )
        body = result(call.action)
        child(body, "UserName", policy.user_name)
        child(body, "PolicyName", policy.policy_name)
        # URL-encoded, as IAM returns policy documents (SDKs decode them).
        child(body, "PolicyDocument", quote(policy.document, safe=""))
        return body

    async def list_user_policies(self, call: QueryCall) -> etree._Element:
        page = await self._store.list_user_policies(
            call.required("UserName"),
            marker=call.param("Marker"),
            max_items=call.integer("MaxItems", 100),
        )
        body = result(call.action)
        names = child(body, "PolicyNames")
        for name in page.items:
            child(names, "member", name)
        _paging(body, page.marker)
        return body

    async def delete_user_policy(self, call: QueryCall) -> None:
        user = call.required("UserName")
        await self._store.delete_user_policy(user, call.required("PolicyName"))
        self._user_changed(user)

    def _user_named(self, call: QueryCall) -> str:
        """``UserName``, else the caller's own name; root's keys are not IAM's to manage."""
        name = call.param("UserName")
        if name is not None:
            return name
        if call.principal.is_root:
            raise QueryError(
                "ValidationError",
                "UserName is required: root's access keys come from the gateway's configuration.",
            )
        return call.principal.name


def register_iam(
    dispatcher: QueryDispatcher,
    store: IdentityStore,
    credentials: CredentialResolver,
    access: AccessControl,
    user_changed: Callable[[str], None] = lambda _user: None,
) -> None:
    """Register every IAM action, each decided by :func:`policy.iam_access.may_call_iam`
    and audited (``user_changed``: see :class:`IamActions`)."""
    for name, handler in IamActions(store, credentials, user_changed).handlers().items():
        guarded = _guarded(name, handler, access)
        dispatcher.register(QueryAction(name, SERVICE, VERSION, NAMESPACE, guarded))


def _guarded(action: str, handler: Handler, access: AccessControl) -> Handler:
    async def guarded(call: QueryCall) -> etree._Element | None:
        user_name = call.param("UserName")
        decision = await may_call_iam(access, call.principal, action, user_name, call.source)
        entry = AuditEntry(
            principal=call.principal.name,
            principal_arn=call.principal.arn,
            source=call.source,
            site=None,
            key=None,
            operation=action,
            action=f"iam:{action}",
            allowed=decision.allowed,
            policy=decision.policy,
            statement=decision.statement,
        )
        if not decision.allowed:
            audit(call.request_id, entry, 403)
            raise QueryError(
                "AccessDenied",
                f"User: {call.principal.arn} is not authorized to perform: iam:{action} "
                f"on resource: {iam_resource(call.principal, user_name)}",
            )
        answer = await handler(call)
        if not action.startswith(("Get", "List")):
            audit(call.request_id, entry, 200)
        return answer

    return guarded


def _user(element: etree._Element, user: User) -> None:
    child(element, "Path", user.path)
    child(element, "UserName", user.name)
    child(element, "UserId", user.user_id)
    child(element, "Arn", user.arn)
    child(element, "CreateDate", user.created_at)


def _key(element: etree._Element, key: AccessKeyInfo) -> None:
    child(element, "UserName", key.user_name)
    child(element, "AccessKeyId", key.access_key_id)
    child(element, "Status", key.status)
    child(element, "CreateDate", key.created_at)


def _paging(body: etree._Element, marker: str | None) -> None:
    child(body, "IsTruncated", marker is not None)
    if marker is not None:
        child(body, "Marker", marker)
