"""Policy documents: JSON text parsed and validated into frozen, precompiled values.

:func:`parse_policy` is the only way in. It accepts exactly AWS's grammar and refuses
anything else with ``S3Error("MalformedPolicy", <what is wrong, and where>)``: bad JSON, a
duplicated JSON key, unknown elements, a Version other than ``2012-10-17`` or ``2008-10-17``
(absent means ``2008-10-17``, where ``${...}`` is plain text), an Effect other than
Allow/Deny, a statement without Action/NotAction or Resource/NotResource (or with both), an
action not ``<service>:<name>`` for a known service, an unknown condition operator or key, a
condition value of the wrong type, a Principal in an identity policy or none in a resource
policy, duplicated Sids, and for a bucket policy (``kind="resource"``) a resource outside the
bucket or a document over 20 KiB. Wherever AWS takes a string or a list of strings, both are
accepted.

Actions match case-insensitively (action patterns are stored case-folded: match them against
``action.casefold()``), resources case-sensitively; both take ``*``/``?``
wildcards, and resources take policy variables (Version 2012-10-17).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final, Literal

from policy.access.conditions import Condition, parse_conditions
from policy.access.malformed import malformed
from policy.access.patterns import Pattern, compile_pattern

PolicyKind = Literal["identity", "resource"]
Effect = Literal["Allow", "Deny"]

VERSIONS: Final = ("2012-10-17", "2008-10-17")
SERVICES: Final = frozenset({"s3", "pagewright", "iam", "sts"})
#: AWS's limit on a bucket policy's size.
MAX_RESOURCE_POLICY_BYTES: Final = 20 * 1024

_TOP_KEYS: Final = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS: Final = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)
_PRINCIPAL_TYPES: Final = frozenset({"AWS", "CanonicalUser", "Service"})
_ACTION = re.compile(r"([A-Za-z0-9-]+):([A-Za-z0-9*?]+)")
_ACCOUNT = re.compile(r"\d{12}")
_PRINCIPAL_ARN = re.compile(
    r"arn:aws:iam::\d{12}:(root|user/.+|role/.+)|arn:aws:sts::\d{12}:assumed-role/[^/]+/.+"
)


@dataclass(frozen=True, slots=True)
class PrincipalSet:
    """A Principal or NotPrincipal element: ``*``, or a set of ARNs (an account id becomes the
    account's root ARN). CanonicalUser and Service entries are kept out: they match nobody."""

    wildcard: bool
    arns: frozenset[str]


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement. Exactly one of ``actions``/``not_actions`` and one of
    ``resources``/``not_resources`` is set; in a resource policy exactly one of
    ``principals``/``not_principals``, in an identity policy neither. ``label`` is the Sid,
    or ``#<index>`` (from 0) when the statement has none."""

    sid: str | None
    label: str
    effect: Effect
    actions: tuple[Pattern, ...] | None
    not_actions: tuple[Pattern, ...] | None
    resources: tuple[Pattern, ...] | None
    not_resources: tuple[Pattern, ...] | None
    principals: PrincipalSet | None
    not_principals: PrincipalSet | None
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A parsed policy: its Version and its statements, in document order."""

    version: str
    statements: tuple[Statement, ...]


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise malformed(f"the policy names {key!r} twice in one JSON object")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise malformed(f"the policy is not valid JSON: {name} is not a JSON value")


def _strings(raw: object, where: str) -> list[str]:
    """A string or a non-empty list of strings, as a list."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise malformed(f"{where} must not be empty")
    if not all(isinstance(item, str) and item for item in items):
        raise malformed(f"{where} must be a non-empty string or a list of them")
    return [item for item in items if isinstance(item, str)]


def _actions(raw: object, where: str) -> tuple[Pattern, ...]:
    patterns = []
    for action in _strings(raw, where):
        if action != "*":
            found = _ACTION.fullmatch(action)
            if found is None:
                raise malformed(f"{where}: {action!r} is not an action (<service>:<action>)")
            if found.group(1).lower() not in SERVICES:
                raise malformed(f"{where}: {action!r} names an unknown service {found.group(1)!r}")
        # Case-folded here and in the request (evaluate), so matching stays case-sensitive
        # and keeps its fast literal-prefix check.
        patterns.append(
            compile_pattern(action.casefold(), wildcards=True, variables=False, where=where)
        )
    return tuple(patterns)


def _resources(
    raw: object, where: str, kind: PolicyKind, bucket: str | None, variables: bool
) -> tuple[Pattern, ...]:
    patterns = []
    for resource in _strings(raw, where):
        if kind == "resource":
            if bucket is None:
                raise ValueError("parse_policy(kind='resource') needs the bucket name")
            own = f"arn:aws:s3:::{bucket}"
            if resource != own and not resource.startswith(own + "/"):
                raise malformed(
                    f"Policy has invalid resource: {where}: {resource!r} is "
                    f"not {own} or under {own}/"
                )
        elif resource != "*" and (not resource.startswith("arn:") or resource.count(":") < 5):
            raise malformed(f"{where}: {resource!r} must be an ARN or '*'")
        patterns.append(compile_pattern(resource, wildcards=True, variables=variables, where=where))
    return tuple(patterns)


def _principal_arn(value: str, where: str) -> str:
    if _ACCOUNT.fullmatch(value):
        return f"arn:aws:iam::{value}:root"
    if "*" in value or "?" in value:
        raise malformed(
            f"Invalid principal in policy: {where}: {value!r} has a wildcard; principals take "
            "'*' alone (use ArnLike on aws:PrincipalArn to match a pattern)"
        )
    if _PRINCIPAL_ARN.fullmatch(value):
        return value
    raise malformed(
        f"Invalid principal in policy: {where}: {value!r} is not '*', an "
        "account id or a user, role or assumed-role ARN"
    )


def _principals(raw: object, where: str) -> PrincipalSet:
    if raw == "*":
        return PrincipalSet(True, frozenset())
    if not isinstance(raw, dict) or not raw:
        raise malformed(f'{where} must be "*" or an object such as {{"AWS": [...]}}')
    wildcard = False
    arns: set[str] = set()
    for kind, values in raw.items():
        if kind not in _PRINCIPAL_TYPES:
            raise malformed(
                f"Invalid principal in policy: {where}: unknown principal type "
                f"{kind!r} (AWS, CanonicalUser or Service)"
            )
        items = _strings(values, f"{where}.{kind}")
        if kind != "AWS":
            continue
        for value in items:
            if value == "*":
                wildcard = True
            else:
                arns.add(_principal_arn(value, where))
    return PrincipalSet(wildcard, frozenset(arns))


def _one_of(item: dict[str, object], first: str, second: str, where: str) -> str | None:
    if first in item and second in item:
        raise malformed(f"{where} has both {first} and {second}")
    if first in item:
        return first
    return second if second in item else None


def _statement(
    raw: object, index: int, kind: PolicyKind, bucket: str | None, variables: bool
) -> Statement:
    where = f"Statement #{index}"
    if not isinstance(raw, dict):
        raise malformed(f"{where} must be an object")
    sid = raw.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise malformed(f"{where}: Sid must be a string")
        where = f"Statement {sid!r}"
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise malformed(f"{where}: unknown element {unknown[0]!r}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise malformed(f"{where}: Effect must be Allow or Deny, not {effect!r}")
    action_key = _one_of(raw, "Action", "NotAction", where)
    if action_key is None:
        raise malformed(f"{where}: missing Action or NotAction")
    resource_key = _one_of(raw, "Resource", "NotResource", where)
    if resource_key is None:
        raise malformed(f"{where}: missing Resource or NotResource")
    principal_key = _one_of(raw, "Principal", "NotPrincipal", where)
    if kind == "identity" and principal_key is not None:
        raise malformed(f"{where}: an identity policy must not have {principal_key}")
    if kind == "resource" and principal_key is None:
        raise malformed(f"{where}: a bucket policy needs Principal or NotPrincipal")
    actions = _actions(raw[action_key], f"{where}.{action_key}")
    resources = _resources(raw[resource_key], f"{where}.{resource_key}", kind, bucket, variables)
    principals = (
        None
        if principal_key is None
        else _principals(raw[principal_key], f"{where}.{principal_key}")
    )
    conditions = (
        parse_conditions(raw["Condition"], variables=variables, where=f"{where}.Condition")
        if "Condition" in raw
        else ()
    )
    return Statement(
        sid=sid,
        label=sid if sid is not None else f"#{index}",
        effect=effect,
        actions=actions if action_key == "Action" else None,
        not_actions=actions if action_key == "NotAction" else None,
        resources=resources if resource_key == "Resource" else None,
        not_resources=resources if resource_key == "NotResource" else None,
        principals=principals if principal_key == "Principal" else None,
        not_principals=principals if principal_key == "NotPrincipal" else None,
        conditions=conditions,
    )


def parse_policy(text: str, *, kind: PolicyKind, bucket: str | None = None) -> PolicyDocument:
    """Parse and validate the policy ``text``.

    ``kind="identity"``: a user's, role's or session's policy (no Principal).
    ``kind="resource"``: the bucket policy of ``bucket`` (required): every statement names a
    Principal and only that bucket's ARNs. Raises MalformedPolicy, naming the statement and
    element at fault, for any document AWS would refuse (see the module docstring).
    """
    if kind == "resource" and len(text.encode("utf-8")) > MAX_RESOURCE_POLICY_BYTES:
        raise malformed(
            f"Policy exceeds the maximum allowed document size ({MAX_RESOURCE_POLICY_BYTES} bytes)"
        )
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise malformed(f"the policy is not valid JSON: {error}") from None
    except RecursionError:
        raise malformed("the policy is not valid JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise malformed("the policy must be a JSON object")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise malformed(f"unknown top-level element {unknown[0]!r}")
    version = raw.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise malformed(f"Version must be 2012-10-17 or 2008-10-17, not {version!r}")
    if "Id" in raw and not isinstance(raw["Id"], str):
        raise malformed("Id must be a string")
    if "Statement" not in raw:
        raise malformed("missing Statement")
    items = raw["Statement"]
    items = items if isinstance(items, list) else [items]
    if not items:
        raise malformed("Statement must not be empty")
    variables = version == "2012-10-17"
    statements = tuple(
        _statement(item, index, kind, bucket, variables) for index, item in enumerate(items)
    )
    sids = [s.sid for s in statements if s.sid is not None]
    if len(sids) != len(set(sids)):
        duplicate = next(sid for sid in sids if sids.count(sid) > 1)
        raise malformed(f"Statement ids (Sid) must be unique; {duplicate!r} is repeated")
    return PolicyDocument(version=version, statements=statements)


__all__ = [
    "PolicyDocument",
    "PolicyKind",
    "PrincipalSet",
    "Statement",
    "parse_policy",
]
