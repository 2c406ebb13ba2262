"""Who a request acts as: :class:`Principal`, and the site roles a principal can hold.

Every authenticated request carries one Principal, made by authentication (an S3 key pair, a
session's temporary keys, an API key, an OIDC token) and read by the access decision
(``policy.access``). Anonymous requests carry :data:`ANONYMOUS`.

A role is a named policy template over one site (``policy.roles``): ``reader`` reads,
``deployer`` reads and changes an artifact's pin and status, ``writer`` reads and writes
objects, ``owner`` does everything on the site, its policy and ACLs included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

#: The account id in the ARNs the gateway shows (one account per gateway, like a fresh AWS
#: account seen by its own users).
ACCOUNT_ID = "000000000000"

PrincipalKind = Literal["root", "user", "session", "anonymous"]


class Role(StrEnum):
    """A named policy template over one site (see ``policy.roles``)."""

    reader = "reader"
    deployer = "deployer"
    writer = "writer"
    owner = "owner"


def _no_roles() -> Mapping[str, Role]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Principal:
    """An identity the access decision reasons about.

    ``name`` is the user name (``root`` for root; the session name of a session).
    ``site_roles`` are roles the credential itself carries (an OIDC token's or a session's
    sites); a user's granted roles live in the catalog and are not repeated here.
    ``session_policy`` caps a session: what it may do is the intersection of its roles and
    this policy (a JSON policy document), never more.
    """

    name: str
    kind: PrincipalKind
    site_roles: Mapping[str, Role] = field(default_factory=_no_roles)
    session_policy: str | None = None

    @property
    def is_root(self) -> bool:
        return self.kind == "root"

    @property
    def arn(self) -> str:
        """The ARN policies name this principal by (``Principal: {"AWS": ...}``)."""
        if self.kind == "root":
            return f"arn:aws:iam::{ACCOUNT_ID}:root"
        if self.kind == "anonymous":
            return "*"
        if self.kind == "session":
            return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/web-identity/{self.name}"
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.name}"


ROOT = Principal("root", "root")
ANONYMOUS = Principal("anonymous", "anonymous")
