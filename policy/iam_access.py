"""Who may call the IAM API: the one decision every IAM action goes through.

Today only root may (root is the break-glass administrator, its keys from configuration).
The access decision (``policy.access``) is to take this over, evaluating ``iam:<Action>``
against the caller's policies; :func:`may_call_iam` is the single place to change.
"""

from __future__ import annotations

from policy.principals import Principal


def may_call_iam(principal: Principal, action: str) -> bool:
    """Whether ``principal`` may perform the IAM ``action`` (``CreateUser``, ...)."""
    del action  # every action alike, until the policy engine decides per ``iam:<Action>``
    return principal.is_root
