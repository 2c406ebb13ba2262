"""The POST policy of a browser upload form: parsed, and checked against the form's fields.

The policy is base64 of a UTF-8 JSON document ``{"expiration": ISO 8601, "conditions":
[...]}`` (AWS, "Creating a POST policy"). A condition is one of:

* ``{"field": "value"}`` or ``["eq", "$field", "value"]``: the field equals the value;
* ``["starts-with", "$field", "prefix"]``: the field starts with the prefix (``""``: any
  value); for ``Content-Type`` every comma-separated value must;
* ``["content-length-range", min, max]``: the file's size in bytes, both inclusive (checked
  while the file streams: ``gateway.post_form.FormFilePayload``).

Field names are case-insensitive; ``$bucket`` is the bucket the form is posted to. A policy
that cannot be read is ``InvalidPolicyDocument``; a form that does not satisfy it is
``AccessDenied`` with S3's "Invalid according to Policy: ..." messages: an expired policy, a
failed condition, or a form field no condition names (``Extra input fields``: every field
but the signature's own, ``file``, ``policy`` and ``x-ignore-*`` ones must be named).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from core.errors import S3Error

#: Form fields a policy need not name: the signature's, the file, the policy itself.
EXEMPT_FIELDS: Final = frozenset(
    {"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"}
)
_IGNORED_PREFIX: Final = "x-ignore-"


@dataclass(frozen=True)
class Condition:
    """``operator`` (``eq``, ``starts-with``) on the field ``name`` (lower-case, no ``$``)."""

    operator: str
    name: str
    value: str

    def text(self) -> str:
        """The condition as S3 quotes it in its refusal."""
        return json.dumps([self.operator, f"${self.name}", self.value])


@dataclass(frozen=True)
class PostPolicy:
    """A parsed policy; ``length_range`` is (min, max) from content-length-range, if any."""

    expiration: datetime
    conditions: tuple[Condition, ...]
    length_range: tuple[int, int] | None


def invalid(detail: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {detail}")


def parse_post_policy(encoded: str) -> PostPolicy:
    """The policy of the form's ``policy`` field; ``InvalidPolicyDocument`` naming what is
    wrong with it."""
    try:
        document = json.loads(base64.b64decode(encoded.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise invalid("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise invalid("Invalid JSON.")
    expiration = _expiration(document.get("expiration"))
    raw_conditions = document.get("conditions")
    if not isinstance(raw_conditions, list):
        raise invalid("Policy missing conditions.")
    conditions: list[Condition] = []
    length_range: tuple[int, int] | None = None
    for raw in raw_conditions:
        if isinstance(raw, dict):
            if len(raw) != 1:
                raise invalid(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one "
                    "property specified."
                )
            ((name, value),) = raw.items()
            conditions.append(Condition("eq", str(name).lower(), _value(value)))
        elif isinstance(raw, list) and len(raw) == 3 and isinstance(raw[0], str):
            operator = raw[0].lower()
            if operator == "content-length-range":
                length_range = (_bound(raw[1]), _bound(raw[2]))
            elif operator in ("eq", "starts-with"):
                if not isinstance(raw[1], str) or not raw[1].startswith("$"):
                    raise invalid(f"Invalid condition: {json.dumps(raw)}")
                conditions.append(Condition(operator, raw[1][1:].lower(), _value(raw[2])))
            else:
                raise invalid(f"Unknown condition operator: {raw[0]}")
        else:
            raise invalid(f"Invalid condition: {json.dumps(raw)}")
    return PostPolicy(expiration, tuple(conditions), length_range)


def _expiration(value: Any) -> datetime:
    if not isinstance(value, str):
        raise invalid("Policy missing expiration.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"Invalid 'expiration' value: '{value}'") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(f"Invalid condition value: {json.dumps(value)}")
    return str(value)


def _bound(value: Any) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise invalid("Invalid content-length-range: the bounds must be non-negative integers.")
    return number


def check_form(policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: datetime) -> None:
    """``AccessDenied`` ("Invalid according to Policy: ...") unless the form's ``fields``
    (lower-case names) posted to ``bucket`` at ``now`` satisfy ``policy``."""
    if now >= policy.expiration:
        raise _denied("Policy expired.")
    values = {**fields, "bucket": bucket}
    for condition in policy.conditions:
        if not _holds(condition, values.get(condition.name, "")):
            raise _denied(f"Policy Condition failed: {condition.text()}")
    named = {condition.name for condition in policy.conditions}
    extra = [
        name
        for name in fields
        if name not in named and name not in EXEMPT_FIELDS and not name.startswith(_IGNORED_PREFIX)
    ]
    if extra:
        raise _denied(f"Extra input fields: {', '.join(sorted(extra))}")


def _holds(condition: Condition, value: str) -> bool:
    if condition.operator == "eq":
        return value == condition.value
    if condition.name == "content-type":
        return all(part.strip().startswith(condition.value) for part in value.split(","))
    return value.startswith(condition.value)


def _denied(reason: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {reason}")
