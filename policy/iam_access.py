"""Who may call the IAM API: every IAM action is decided by the one policy engine.

The action is ``iam:<Action>`` (``iam:CreateUser``), the resource the ARN of the user it
names (``arn:aws:iam::000000000000:user/<UserName>``; the caller's own for GetUser without
a name, ``...:user/*`` for ListUsers). Root may do everything; a user only what its inline
policies allow (site roles grant nothing in IAM); anonymous callers nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from policy.access import Decision
from policy.access_control import AccessControl
from policy.principals import ACCOUNT_ID, Principal


def iam_resource(principal: Principal, user_name: str | None) -> str:
    """The ARN an IAM call on ``user_name`` (None: no name given) acts on."""
    target = user_name or (principal.name if principal.kind == "user" else "*")
    return f"arn:aws:iam::{ACCOUNT_ID}:user/{target}"


async def may_call_iam(
    access: AccessControl,
    principal: Principal,
    action: str,
    user_name: str | None,
    source: str,
    now: datetime | None = None,
) -> Decision:
    """The decision on ``principal`` performing IAM ``action`` (``CreateUser``...) on
    ``user_name``'s ARN, from ``source`` (its ``aws:SourceIp``)."""
    moment = now or datetime.now(UTC)
    context: Mapping[str, str] = {
        "aws:SourceIp": source,
        "aws:CurrentTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(moment.timestamp())),
    }
    resource = iam_resource(principal, user_name)
    return await access.decide_on(principal, f"iam:{action}", resource, context)
