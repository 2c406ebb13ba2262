"""The one access decision: IAM-style policy documents, parsed once and evaluated per request.

Contract:
- :func:`parse_policy` turns policy JSON into a frozen :class:`PolicyDocument`, or raises
  ``S3Error("MalformedPolicy", ...)`` saying precisely what is wrong; nothing is silently
  ignored (an unknown element, operator or condition key is an error). Patterns are compiled
  here, so evaluation does no parsing.
- :func:`evaluate` decides one :class:`AccessRequest` against the principal's identity
  policies, the bucket's resource policies, the ACL's answer and a session cap, with AWS's
  same-account logic (explicit deny wins; root allowed unless denied; otherwise any allow;
  sessions capped by their session policy; anonymous only via ``Principal: "*"`` or ACLs),
  and returns a :class:`Decision` naming the policy and statement that decided.
- Pure: no I/O, no clock (``aws:CurrentTime``/``aws:EpochTime`` come in the request's
  context), no global state. Safe to call from any thread or task.
"""

from __future__ import annotations

from policy.access.conditions import Condition
from policy.access.document import PolicyDocument, PolicyKind, PrincipalSet, Statement, parse_policy
from policy.access.evaluate import SESSION_POLICY, AccessRequest, Decision, NamedPolicy, evaluate
from policy.access.keys import KNOWN_KEYS

__all__ = [
    "KNOWN_KEYS",
    "SESSION_POLICY",
    "AccessRequest",
    "Condition",
    "Decision",
    "NamedPolicy",
    "PolicyDocument",
    "PolicyKind",
    "PrincipalSet",
    "Statement",
    "evaluate",
    "parse_policy",
]
