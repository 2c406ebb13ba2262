"""The site roles as policy templates: each role is an identity policy over one site.

A grant ``(site, user, role)`` (``pagewright-gateway sites grant``) or a role carried by a
token gives the principal :func:`role_policy` of that site and role, evaluated with every other
policy by the one engine (``policy.access``), so an explicit Deny in a bucket or user policy
still wins over a role.

* ``reader``: read objects (and their tags) and list the site; read its bucket tags, its
  artifacts, usage, retention and policy.
* ``deployer``: a reader that also pins, unpins and sets an artifact's status and action.
* ``writer``: a reader that also writes and deletes objects (uploads, multipart, deletes,
  object tags) and deletes artifacts.
* ``owner``: every S3 and artifact API action on the site: its bucket policy, ACLs, lifecycle
  and retention, deleting the site itself.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Final

from policy.access import PolicyDocument, parse_policy
from policy.principals import Role

_READ_S3: Final = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAttributes",
    "s3:GetObjectTagging",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",
    "s3:GetBucketTagging",
)
_READ_API: Final = (
    "pagewright:ListArtifacts",
    "pagewright:GetArtifact",
    "pagewright:ListArtifactVersions",
    "pagewright:DownloadArtifacts",
    "pagewright:GetUsage",
    "pagewright:GetRetention",
    "pagewright:DryRunRetention",
    "pagewright:GetPolicy",
)
_DEPLOY: Final = ("pagewright:PinArtifact", "pagewright:UnpinArtifact", "pagewright:UpdateArtifact")
_WRITE: Final = (
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:AbortMultipartUpload",
    "pagewright:DeleteArtifacts",
)

ROLE_ACTIONS: Final[dict[Role, tuple[str, ...]]] = {
    Role.reader: _READ_S3 + _READ_API,
    Role.deployer: _READ_S3 + _READ_API + _DEPLOY,
    Role.writer: _READ_S3 + _READ_API + _WRITE,
    Role.owner: ("s3:*", "pagewright:*"),
}


#: A site name as a role may name it: a bucket name, so never a pattern (``*``, ``?``) or a
#: policy variable (``${...}``) that would reach other sites.
SITE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_site_name(site: str) -> str:
    """``site`` if it can be granted a role, else ``ValueError`` saying why."""
    if not SITE_NAME.fullmatch(site):
        raise ValueError(
            f"{site!r} is not a site name (3-63 lowercase letters, digits, dots and hyphens)"
        )
    return site


def role_document(site: str, role: Role) -> str:
    """The JSON identity policy of ``role`` over ``site`` (``ValueError`` for a name that is
    not a site's, see :func:`check_site_name`)."""
    check_site_name(site)
    statement = {
        "Sid": f"Role{role.value.capitalize()}",
        "Effect": "Allow",
        "Action": list(ROLE_ACTIONS[role]),
        "Resource": [f"arn:aws:s3:::{site}", f"arn:aws:s3:::{site}/*"],
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@lru_cache(maxsize=4096)
def role_policy(site: str, role: Role) -> PolicyDocument:
    """``role`` over ``site`` as a parsed policy (cached: roles are fixed templates)."""
    return parse_policy(role_document(site, role), kind="identity")
