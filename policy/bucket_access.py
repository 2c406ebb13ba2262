"""A site's S3 access configuration besides its policy: owner, ACLs, public access block and
object ownership; what an ACL grants, and which canned ACLs exist.

Defaults follow AWS's for new buckets: object ownership ``BucketOwnerEnforced`` (ACLs are
disabled: only an owner-full-control ACL is accepted, and ACLs grant nothing), and every
public access block setting on. A site stored before these settings existed gets the same
defaults, so nothing becomes public by an upgrade.

An ACL is a tuple of :class:`Grant`. Grantees are canonical users (the id of a principal, see
:func:`canonical_id`) or the two groups S3 knows, everyone (``AllUsers``) and every
authenticated principal (``AuthenticatedUsers``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from core.errors import S3Error
from policy.principals import Principal

Permission = Literal["FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP"]
PERMISSIONS: Final[tuple[Permission, ...]] = (
    "FULL_CONTROL",
    "READ",
    "WRITE",
    "READ_ACP",
    "WRITE_ACP",
)
ALL_USERS: Final = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS: Final = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
GROUPS: Final = frozenset({ALL_USERS, AUTHENTICATED_USERS})

GranteeKind = Literal["CanonicalUser", "Group"]
Ownership = Literal["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"]
OWNERSHIPS: Final[tuple[Ownership, ...]] = (
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
)

BUCKET_CANNED: Final = frozenset(
    {"private", "public-read", "public-read-write", "authenticated-read"}
)
OBJECT_CANNED: Final = BUCKET_CANNED | {"bucket-owner-read", "bucket-owner-full-control"}


def canonical_id(principal_name: str) -> str:
    """The canonical user id S3 shows for a principal: 64 hex digits, stable per name."""
    return hashlib.sha256(f"pagewright:{principal_name}".encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    """One ACL entry: ``grantee`` is a canonical id (``kind`` CanonicalUser) or a group URI
    (``kind`` Group); ``display`` is the name shown for canonical users."""

    kind: GranteeKind
    grantee: str
    permission: Permission
    display: str = ""

    @property
    def public(self) -> bool:
        return self.kind == "Group"


@dataclass(frozen=True)
class PublicAccessBlock:
    """S3's four settings; the default (every one on) blocks all public access."""

    block_public_acls: bool = True
    ignore_public_acls: bool = True
    block_public_policy: bool = True
    restrict_public_buckets: bool = True


@dataclass(frozen=True)
class BucketAccess:
    """A site's owner (a principal name), bucket ACL, public access block (None: deleted, so
    nothing is blocked) and object ownership (None: deleted, which S3 treats as
    ``ObjectWriter``)."""

    owner: str
    acl: tuple[Grant, ...]
    public_access_block: PublicAccessBlock | None = field(default_factory=PublicAccessBlock)
    ownership: Ownership | None = "BucketOwnerEnforced"

    @property
    def acls_enabled(self) -> bool:
        return self.ownership != "BucketOwnerEnforced"

    def blocks(self, setting: str) -> bool:
        block = self.public_access_block
        return block is not None and bool(getattr(block, setting))


def grants_to_json(acl: tuple[Grant, ...]) -> list[dict[str, str]]:
    return [asdict(grant) for grant in acl]


def grants_from_json(rows: Any) -> tuple[Grant, ...]:
    """Grants stored or backed up as :func:`grants_to_json` wrote them (``ValueError``
    for anything else)."""
    if not isinstance(rows, list):
        raise ValueError("an ACL is a list of grants")
    grants = tuple(Grant(**row) for row in rows)
    for grant in grants:
        if grant.kind not in ("CanonicalUser", "Group") or grant.permission not in PERMISSIONS:
            raise ValueError(f"not a grant: {grant}")
    return grants


def access_to_json(access: BucketAccess) -> dict[str, Any]:
    """``access`` as plain JSON values (the catalog's columns and a backup line's fields)."""
    block = access.public_access_block
    return {
        "owner": access.owner,
        "acl": grants_to_json(access.acl),
        "public_access_block": None if block is None else asdict(block),
        "ownership": access.ownership,
    }


def access_from_json(document: Mapping[str, Any]) -> BucketAccess:
    """The inverse of :func:`access_to_json` (``ValueError``/``TypeError`` when malformed)."""
    block = document["public_access_block"]
    ownership = document["ownership"]
    if ownership is not None and ownership not in OWNERSHIPS:
        raise ValueError(f"{ownership!r} is not an object ownership")
    return BucketAccess(
        owner=str(document["owner"]),
        acl=grants_from_json(document["acl"]),
        public_access_block=None if block is None else PublicAccessBlock(**block),
        ownership=ownership,
    )


def default_access(owner: str) -> BucketAccess:
    """A new site's settings (AWS's defaults), owned by ``owner``."""
    return BucketAccess(owner, canned_acl("private", owner))


def canned_acl(name: str, owner: str, bucket_owner: str | None = None) -> tuple[Grant, ...]:
    """The grants of canned ACL ``name`` for a resource owned by ``owner``;
    ``bucket_owner`` is the site's owner (for ``bucket-owner-*`` on objects).
    ``InvalidArgument`` for a name S3 does not define."""
    full = Grant("CanonicalUser", canonical_id(owner), "FULL_CONTROL", owner)
    if name == "private":
        return (full,)
    if name == "public-read":
        return (full, Grant("Group", ALL_USERS, "READ"))
    if name == "public-read-write":
        return (full, Grant("Group", ALL_USERS, "READ"), Grant("Group", ALL_USERS, "WRITE"))
    if name == "authenticated-read":
        return (full, Grant("Group", AUTHENTICATED_USERS, "READ"))
    if name in ("bucket-owner-read", "bucket-owner-full-control"):
        site_owner = bucket_owner or owner
        if site_owner == owner:
            return (full,)
        permission: Permission = "READ" if name == "bucket-owner-read" else "FULL_CONTROL"
        return (full, Grant("CanonicalUser", canonical_id(site_owner), permission, site_owner))
    raise S3Error(
        "InvalidArgument",
        f"{name!r} is not a canned ACL.",
        ArgumentName="x-amz-acl",
        ArgumentValue=name,
    )


def is_public(acl: tuple[Grant, ...]) -> bool:
    return any(grant.public for grant in acl)


#: Which ACL permission allows an action, on a bucket's ACL and on an object's.
_BUCKET_ACTIONS: Final[dict[str, Permission]] = {
    "s3:ListBucket": "READ",
    "s3:ListBucketVersions": "READ",
    "s3:ListBucketMultipartUploads": "READ",
    "s3:PutObject": "WRITE",
    "s3:DeleteObject": "WRITE",
    "s3:GetBucketAcl": "READ_ACP",
    "s3:PutBucketAcl": "WRITE_ACP",
}
_OBJECT_ACTIONS: Final[dict[str, Permission]] = {
    "s3:GetObject": "READ",
    "s3:GetObjectAttributes": "READ",
    "s3:GetObjectAcl": "READ_ACP",
    "s3:PutObjectAcl": "WRITE_ACP",
}
#: Object writes are granted by the bucket's ACL (WRITE on the bucket), as in S3.
BUCKET_ACL_ACTIONS: Final = frozenset(_BUCKET_ACTIONS)
OBJECT_ACL_ACTIONS: Final = frozenset(_OBJECT_ACTIONS)


def acl_allows(
    acl: tuple[Grant, ...],
    action: str,
    principal: Principal,
    *,
    ignore_public: bool,
    on_object: bool,
) -> str | None:
    """The grant (described) by which ``acl`` allows ``action`` to ``principal``, else None.

    ``on_object`` selects the object table (GetObject, object ACL reads and writes) over the
    bucket table (listing, object writes, bucket ACL). ``ignore_public`` drops group grants
    (the public access block's IgnorePublicAcls)."""
    needed = (_OBJECT_ACTIONS if on_object else _BUCKET_ACTIONS).get(action)
    if needed is None:
        return None
    me = canonical_id(principal.name)
    for grant in acl:
        if grant.permission not in (needed, "FULL_CONTROL"):
            continue
        if grant.kind == "Group":
            if ignore_public:
                continue
            if grant.grantee == ALL_USERS or (
                grant.grantee == AUTHENTICATED_USERS and principal.kind != "anonymous"
            ):
                return f"{grant.grantee.rsplit('/', 1)[-1]}:{grant.permission}"
        elif principal.kind != "anonymous" and grant.grantee == me:
            return f"{principal.name}:{grant.permission}"
    return None
