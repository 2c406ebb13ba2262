"""Interim: what an STS session may do at the S3 endpoint, until the access decision lands.

The S3 endpoint authorizes nothing yet (every credential was root's). Temporary credentials
must not be worth more than the token they came from, so :func:`check_session_scope` keeps
a session to its sites and its roles there: ``reader`` and ``deployer`` read (``s3:Get*``,
``s3:List*``), ``writer`` also writes and deletes objects, ``owner`` does everything on its
site. Anything else, service-level requests included, is ``AccessDenied``. A copy's source
must be one of the session's sites too. The session policy (``sts_role_policy``) is not
evaluated here: that is the policy engine's; the access decision replaces this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote

from core.errors import S3Error
from gateway.routing import Operation
from policy.credentials import Credential
from policy.principals import Role

_READ_PREFIXES: Final = ("s3:Get", "s3:List")
_WRITE_ACTIONS: Final = frozenset({"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"})


def check_session_scope(
    credential: Credential, operation: Operation, bucket: str | None, headers: Mapping[str, str]
) -> None:
    """``AccessDenied`` unless a session ``credential`` may do ``operation`` on ``bucket``;
    credentials of other kinds pass unchecked."""
    identity = credential.identity
    if identity is None or identity.kind != "session":
        return
    role = identity.site_roles.get(bucket) if bucket is not None else None
    if role is None or not _allows(role, operation.action):
        raise S3Error("AccessDenied")
    source = headers.get("x-amz-copy-source")
    if source is not None:
        source_bucket = unquote(source).lstrip("/").partition("/")[0]
        if source_bucket not in identity.site_roles:
            raise S3Error("AccessDenied")


def _allows(role: Role, action: str) -> bool:
    if role is Role.owner or action.startswith(_READ_PREFIXES):
        return True
    return role is Role.writer and action in _WRITE_ACTIONS
