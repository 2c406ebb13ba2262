"""The values the identity store (:mod:`policy.identities`) takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from policy.identity_rules import AccessKeyStatus
from policy.principals import ACCOUNT_ID, Role

_T = TypeVar("_T")


@dataclass(frozen=True)
class User:
    """An IAM user: its name (unique, compared case-insensitively as IAM does), its
    unique id (``AIDA...``, never reused), its path and when it was created."""

    name: str
    user_id: str
    path: str
    created_at: datetime

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user{self.path}{self.name}"


@dataclass(frozen=True)
class AccessKeyInfo:
    """An access key without its secret."""

    access_key_id: str
    user_name: str
    status: AccessKeyStatus
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class NewAccessKey:
    """A key just created: the only time its secret is shown."""

    info: AccessKeyInfo
    secret_access_key: str = field(repr=False)

    @property
    def access_key_id(self) -> str:
        return self.info.access_key_id


@dataclass(frozen=True)
class AccessKeyRecord:
    """An access key as stored: its secret sealed under the master key (what a catalog
    backup carries; restoring it needs the same master key)."""

    info: AccessKeyInfo
    secret_sealed: str = field(repr=False)


@dataclass(frozen=True)
class UserPolicy:
    """An inline policy of a user: its name and JSON document (text, as given)."""

    user_name: str
    policy_name: str
    document: str


@dataclass(frozen=True)
class SiteGrant:
    """``user_name`` holds ``role`` on ``site``."""

    site: str
    user_name: str
    role: Role


@dataclass(frozen=True)
class Page(Generic[_T]):
    """One page of a listing: ``marker`` continues it (None: this was the last page)."""

    items: list[_T]
    marker: str | None

    @property
    def truncated(self) -> bool:
        return self.marker is not None
