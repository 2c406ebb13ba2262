"""A statement's Condition block: parsed into :class:`Condition` values, decided per request.

Grammar (AWS's): ``{"<operator>": {"<key>": value or [values]}}``. Operators in one block,
and keys under one operator, are ANDed; the values of one key are ORed, and NORed for a
negated operator (``StringNotEquals: {"k": ["a", "b"]}`` holds when the request's ``k`` is
neither). Operator and key names are case-insensitive.

Operators: String(Not)Equals, String(Not)EqualsIgnoreCase, String(Not)Like; NumericEquals,
NumericNotEquals, NumericLessThan(Equals), NumericGreaterThan(Equals); the same six for Date;
Bool; IpAddress, NotIpAddress (IPv4 and IPv6, a bare address is a /32 or /128); Null;
ArnEquals, ArnLike, ArnNotEquals, ArnNotLike (ARN operators match each of the six
colon-separated parts separately, with wildcards). Every operator but Null takes the
``IfExists`` suffix and a ``ForAnyValue:`` or ``ForAllValues:`` prefix. Anything else
(BinaryEquals included) is refused when the policy is parsed.

When the request lacks the key:
- Null: ``true`` holds, ``false`` fails (Null tests presence and nothing else);
- ``...IfExists``: holds;
- ``ForAllValues:``: holds (no value fails it); ``ForAnyValue:``: fails;
- otherwise a negated operator (StringNotEquals, StringNotEqualsIgnoreCase, StringNotLike,
  NumericNotEquals, DateNotEquals, NotIpAddress, ArnNotEquals, ArnNotLike) holds and every
  other operator fails.

A key with several request values and no set qualifier holds for a positive operator when
any value matches, for a negated one when none does. A request value that does not parse
as the operator's type (a number, a date, an address, a boolean) matches no policy value.
Policy variables (``${aws:username}``) are substituted in String and Arn operators' values.
"""

from __future__ import annotations

import ipaddress
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from policy.access.keys import Context, canonical_key, is_known_key
from policy.access.malformed import malformed
from policy.access.patterns import Pattern, compile_pattern

Family = Literal["string", "numeric", "date", "bool", "ip", "null", "arn"]
SetQualifier = Literal["ForAnyValue", "ForAllValues"]
#: One request value, the request's context -> does it match any of the policy's values?
Matcher = Callable[[str, Context], bool]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class _Base:
    name: str
    family: Family
    negated: bool
    #: How a parsed request value compares with a policy value (string: how it matches).
    compare: str


def _bases() -> dict[str, _Base]:
    table = [
        _Base("StringEquals", "string", False, "exact"),
        _Base("StringNotEquals", "string", True, "exact"),
        _Base("StringEqualsIgnoreCase", "string", False, "ignore_case"),
        _Base("StringNotEqualsIgnoreCase", "string", True, "ignore_case"),
        _Base("StringLike", "string", False, "like"),
        _Base("StringNotLike", "string", True, "like"),
        _Base("Bool", "bool", False, "eq"),
        _Base("IpAddress", "ip", False, "in"),
        _Base("NotIpAddress", "ip", True, "in"),
        _Base("Null", "null", False, "eq"),
        _Base("ArnEquals", "arn", False, "like"),
        _Base("ArnLike", "arn", False, "like"),
        _Base("ArnNotEquals", "arn", True, "like"),
        _Base("ArnNotLike", "arn", True, "like"),
    ]
    for family, prefix in (("numeric", "Numeric"), ("date", "Date")):
        for suffix, compare, negated in (
            ("Equals", "eq", False),
            ("NotEquals", "eq", True),
            ("LessThan", "lt", False),
            ("LessThanEquals", "le", False),
            ("GreaterThan", "gt", False),
            ("GreaterThanEquals", "ge", False),
        ):
            table.append(_Base(prefix + suffix, family, negated, compare))  # type: ignore[arg-type]
    return {base.name.lower(): base for base in table}


#: Lower-case operator name (no prefix or suffix) -> what it is.
OPERATORS: Final = _bases()
_ORDER: Final[Mapping[str, Callable[[Decimal, Decimal], bool]]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One (operator, key) pair of a Condition block, with its compiled policy values."""

    operator: str
    key: str
    family: Family
    negated: bool
    if_exists: bool
    qualifier: SetQualifier | None
    #: Null's expected answers ("is the key absent?"); empty for other operators.
    null_expects: tuple[bool, ...]
    matcher: Matcher

    def holds(self, context: Context) -> bool:
        """Whether this condition holds for a request with ``context`` (see module doc)."""
        values = context.get(self.key, ())
        if self.family == "null":
            return (not values) in self.null_expects
        if not values:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.negated
        if self.qualifier is None:
            found = any(self.matcher(value, context) for value in values)
            return not found if self.negated else found
        each = (self.matcher(value, context) != self.negated for value in values)
        return all(each) if self.qualifier == "ForAllValues" else any(each)


def conditions_hold(conditions: tuple[Condition, ...], context: Context) -> bool:
    """Whether every condition of a statement holds (an empty block always does)."""
    return all(condition.holds(context) for condition in conditions)


def parse_decimal(text: str) -> Decimal | None:
    """A finite number written as an integer or decimal, or None."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def parse_date(text: str) -> Decimal | None:
    """Seconds since the epoch of an ISO 8601 date/time (UTC unless it says otherwise) or
    of an epoch-seconds number, or None."""
    stripped = text.strip()
    if stripped and stripped.lstrip("-").replace(".", "", 1).isdigit():
        return parse_decimal(stripped)
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Decimal(str(moment.timestamp()))


def parse_bool(text: str) -> bool | None:
    """``true``/``false`` in any case, or None."""
    return {"true": True, "false": False}.get(text.strip().lower())


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _scalar(raw: object, where: str) -> str:
    """A policy value as text: JSON strings, numbers and booleans are accepted."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | str):
        return str(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return repr(raw)
    raise malformed(f"{where}: a condition value must be a string, number or boolean")


def _split_operator(raw: str, where: str) -> tuple[_Base, SetQualifier | None, bool]:
    name = raw
    qualifier: SetQualifier | None = None
    candidates: tuple[SetQualifier, ...] = ("ForAnyValue", "ForAllValues")
    for candidate in candidates:
        if name.lower().startswith(candidate.lower() + ":"):
            qualifier = candidate
            name = name[len(candidate) + 1 :]
            break
    if_exists = name.lower().endswith("ifexists")
    if if_exists:
        name = name[: -len("IfExists")]
    base = OPERATORS.get(name.lower())
    if base is None:
        raise malformed(f"{where}: unknown condition operator {raw!r}")
    if base.family == "null" and (if_exists or qualifier):
        raise malformed(
            f"{where}: condition operator {raw!r} is not valid (Null takes no "
            "IfExists suffix and no set qualifier)"
        )
    return base, qualifier, if_exists


def _string_matcher(base: _Base, values: list[str], variables: bool, where: str) -> Matcher:
    patterns = [
        compile_pattern(
            v,
            wildcards=base.compare == "like",
            variables=variables,
            ignore_case=base.compare == "ignore_case",
            where=where,
        )
        for v in values
    ]
    return lambda value, context: any(p.matches(value, context) for p in patterns)


def _arn_matcher(values: list[str], variables: bool, where: str) -> Matcher:
    compiled: list[tuple[Pattern, ...]] = []
    for text in values:
        parts = text.split(":", 5)
        if text != "*" and (len(parts) != 6 or parts[0] != "arn"):
            raise malformed(
                f"{where}: {text!r} is not an ARN (arn:partition:service:region:account:resource)"
            )
        compiled.append(
            tuple(
                compile_pattern(p, wildcards=True, variables=variables, where=where)
                for p in ([text] if text == "*" else parts)
            )
        )

    def matches(value: str, context: Context) -> bool:
        pieces = value.split(":", 5)
        for patterns in compiled:
            if len(patterns) == 1:
                if patterns[0].matches(value, context):
                    return True
            elif len(pieces) == 6 and all(
                p.matches(piece, context) for p, piece in zip(patterns, pieces, strict=True)
            ):
                return True
        return False

    return matches


def _ordered_matcher(
    base: _Base, values: list[str], parse: Callable[[str], Decimal | None], where: str
) -> Matcher:
    targets = []
    for text in values:
        target = parse(text)
        if target is None:
            kind = "number" if base.family == "numeric" else "date (ISO 8601 or epoch seconds)"
            raise malformed(f"{where}: {text!r} is not a valid {kind} for {base.name}")
        targets.append(target)
    compare = _ORDER[base.compare]

    def matches(value: str, context: Context) -> bool:
        parsed = parse(value)
        return parsed is not None and any(compare(parsed, t) for t in targets)

    return matches


def _bool_values(base: _Base, values: list[str], where: str) -> tuple[bool, ...]:
    parsed = [parse_bool(v) for v in values]
    if any(p is None for p in parsed):
        raise malformed(f"{where}: {base.name} takes true or false, not {values!r}")
    return tuple(p for p in parsed if p is not None)


def _ip_matcher(values: list[str], where: str) -> Matcher:
    networks: list[IpNetwork] = []
    for text in values:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise malformed(f"{where}: {text!r} is not an IP address or CIDR block") from None

    def matches(value: str, context: Context) -> bool:
        address = _ip_address(value)
        return address is not None and any(address in n for n in networks)

    return matches


def _matcher(base: _Base, values: list[str], variables: bool, where: str) -> Matcher:
    if base.family == "string":
        return _string_matcher(base, values, variables, where)
    if base.family == "arn":
        return _arn_matcher(values, variables, where)
    if base.family == "numeric":
        return _ordered_matcher(base, values, parse_decimal, where)
    if base.family == "date":
        return _ordered_matcher(base, values, parse_date, where)
    if base.family == "ip":
        return _ip_matcher(values, where)
    expected = _bool_values(base, values, where)
    return lambda value, context: parse_bool(value) in expected


def parse_conditions(raw: object, *, variables: bool, where: str) -> tuple[Condition, ...]:
    """The Condition block ``raw`` (decoded JSON) as :class:`Condition` values.

    ``variables`` is whether ``${...}`` is a policy variable (Version 2012-10-17) or text.
    Raises MalformedPolicy for a block of the wrong shape, an unknown operator or key, no
    values, or a value of the wrong type for its operator.
    """
    if not isinstance(raw, dict):
        raise malformed(f"{where}: Condition must be an object of operators")
    conditions: list[Condition] = []
    for raw_operator, block in raw.items():
        base, qualifier, if_exists = _split_operator(raw_operator, where)
        if not isinstance(block, dict) or not block:
            raise malformed(f"{where}: {raw_operator} must be an object of condition keys")
        for key_name, raw_values in block.items():
            here = f"{where}: {raw_operator} {key_name}"
            if not is_known_key(key_name):
                raise malformed(f"{where}: unknown condition key {key_name!r}")
            items = raw_values if isinstance(raw_values, list) else [raw_values]
            if not items:
                raise malformed(f"{here}: a condition key needs at least one value")
            values = [_scalar(item, here) for item in items]
            null_expects: tuple[bool, ...] = ()
            if base.family == "null":
                null_expects = _bool_values(base, values, here)
                matcher: Matcher = _never
            else:
                matcher = _matcher(base, values, variables, here)
            conditions.append(
                Condition(
                    operator=raw_operator,
                    key=canonical_key(key_name),
                    family=base.family,
                    negated=base.negated,
                    if_exists=if_exists,
                    qualifier=qualifier,
                    null_expects=null_expects,
                    matcher=matcher,
                )
            )
    return tuple(conditions)


def _never(value: str, context: Context) -> bool:
    return False
