"""A site's S3 lifecycle configuration (PutBucketLifecycleConfiguration): its rules, the
checks S3 makes on them, their stored form and how a rule matches an object.

A configuration is an ordered tuple of :class:`LifecycleRule` (1 to :data:`MAX_RULES`).
``gateway.lifecycle_xml`` parses the XML (``MalformedXML`` for what does not fit S3's
schema); :func:`check_rules` then makes S3's semantic checks (``InvalidArgument`` naming the
fault, as S3 words it). Transitions are refused by the parser with ``InvalidStorageClass``:
this gateway has no storage classes.

**One state with artifact retention.** A site's artifact retention window (the
``retention_days`` policy override, which the artifact API also sets) *is* the rule with ID
:data:`RETENTION_RULE_ID`: Enabled, ``Expiration`` ``Days`` only, filter prefix
:data:`ARTIFACT_PREFIX` or empty, nothing else. That rule is never stored with the other
rules (``policy.catalog_lifecycle`` holds the others); it is ``retention_days``:

* a configuration holding it sets ``retention_days`` to its days; one without it clears
  ``retention_days`` (a Put replaces the whole configuration, as in S3);
* a ``retention_days`` set through the artifact API shows up as that rule in
  GetBucketLifecycleConfiguration (:func:`with_retention`);
* DeleteBucketLifecycle removes the other rules and clears ``retention_days``.

The retention job (``policy.retention``) applies that rule; the lifecycle job
(``policy.lifecycle_job``) applies the others. Artifacts (``builds/<id>.tar.gz``) stay
protected by retention's own rules against *every* expiration rule: a lifecycle pass never
deletes a pinned artifact, one of the ``retention_keep_last`` newest, or the newest
successful one (:func:`policy.retention.protected_artifacts`). The days window itself is an
expiration rule like the others: where several rules expire an object, the earliest wins,
as in S3.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final, Literal, TypeVar

from core.errors import S3Error
from core.times import parse_aware
from policy.policies import MAX_RETENTION_DAYS
from policy.tags import check_tags

#: S3's limit on the rules of one configuration.
MAX_RULES: Final = 1000
MAX_ID_LENGTH: Final = 255
#: The largest day count a rule takes (S3's days are 32-bit integers).
MAX_DAYS: Final = 2**31 - 1
#: S3's bound on NewerNoncurrentVersions.
MAX_NEWER_VERSIONS: Final = 100
#: The prefix under which build artifacts live.
ARTIFACT_PREFIX: Final = "builds/"
#: The rule that is the site's ``retention_days`` (see the module docstring).
RETENTION_RULE_ID: Final = "pagewright-retention"

#: How a rule's filter was written, so it is answered as it was given: the legacy
#: rule-level ``Prefix``, a ``Filter`` with one predicate (or none), or ``Filter/And``.
FilterForm = Literal["legacy", "filter", "and"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class LifecycleFilter:
    """Which objects a rule applies to: all of the given predicates must hold."""

    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None
    form: FilterForm = "filter"

    def matches(self, key: str, size: int, tags: Mapping[str, str]) -> bool:
        """Whether an object (``key``, ``size`` bytes, S3 ``tags``) is one of the rule's."""
        if not key.startswith(self.prefix):
            return False
        if any(tags.get(name) != value for name, value in self.tags):
            return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        return self.size_less_than is None or size < self.size_less_than

    @property
    def by_size(self) -> bool:
        return self.size_greater_than is not None or self.size_less_than is not None


@dataclass(frozen=True)
class Expiration:
    """Exactly one of ``days``, ``date`` (midnight UTC) or ``expired_object_delete_marker``."""

    days: int | None = None
    date: datetime | None = None
    expired_object_delete_marker: bool | None = None


@dataclass(frozen=True)
class NoncurrentExpiration:
    noncurrent_days: int
    newer_noncurrent_versions: int | None = None


@dataclass(frozen=True)
class LifecycleRule:
    """One rule. ``rule_id`` None only before :func:`check_rules` gives it one."""

    rule_id: str | None
    enabled: bool
    filter: LifecycleFilter = LifecycleFilter()
    expiration: Expiration | None = None
    noncurrent_expiration: NoncurrentExpiration | None = None
    abort_after_days: int | None = None

    @property
    def expires_current(self) -> bool:
        """Whether the rule expires current objects (by Days or Date)."""
        e = self.expiration
        return e is not None and (e.days is not None or e.date is not None)


LifecycleRules = tuple[LifecycleRule, ...]


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidArgument", message)


def _check_positive(value: int | None, what: str) -> None:
    if value is not None and not 1 <= value <= MAX_DAYS:
        raise _invalid(f"'{what}' action must be a positive integer")


def _check_rule(rule: LifecycleRule) -> None:
    if rule.rule_id is not None and len(rule.rule_id) > MAX_ID_LENGTH:
        raise _invalid(f"ID length should not exceed allowed limit of {MAX_ID_LENGTH}")
    flt = rule.filter
    if flt.tags:
        check_tags(dict(flt.tags), "bucket")
    if flt.size_greater_than is not None and flt.size_greater_than < 0:
        raise _invalid("'ObjectSizeGreaterThan' must be a non-negative integer")
    if flt.size_less_than is not None and flt.size_less_than < 1:
        raise _invalid("'ObjectSizeLessThan' must be a positive integer")
    if (
        flt.size_greater_than is not None
        and flt.size_less_than is not None
        and flt.size_greater_than >= flt.size_less_than
    ):
        raise _invalid("'ObjectSizeGreaterThan' must be less than 'ObjectSizeLessThan'")
    if (
        rule.expiration is None
        and rule.noncurrent_expiration is None
        and (rule.abort_after_days is None)
    ):
        raise _invalid("At least one action needs to be specified in a rule")
    expiration = rule.expiration
    if expiration is not None:
        given = [
            value is not None
            for value in (expiration.days, expiration.date, expiration.expired_object_delete_marker)
        ]
        if expiration.expired_object_delete_marker is not None and sum(given) > 1:
            raise _invalid(
                "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a "
                "Lifecycle Expiration Policy"
            )
        if sum(given) != 1:
            raise _invalid(
                "An Expiration action needs exactly one of Days, Date or ExpiredObjectDeleteMarker"
            )
        _check_positive(expiration.days, "Days' for Expiration")
        date = expiration.date
        if date is not None and (
            date.utcoffset() != timedelta(0)
            or (date.hour, date.minute, date.second, date.microsecond) != (0, 0, 0, 0)
        ):
            raise _invalid("'Date' must be at midnight GMT")
        if expiration.expired_object_delete_marker is not None and flt.tags:
            raise _invalid("ExpiredObjectDeleteMarker cannot be specified with tags")
    noncurrent = rule.noncurrent_expiration
    if noncurrent is not None:
        _check_positive(
            noncurrent.noncurrent_days, "NoncurrentDays' for NoncurrentVersionExpiration"
        )
        newer = noncurrent.newer_noncurrent_versions
        if newer is not None and not 1 <= newer <= MAX_NEWER_VERSIONS:
            raise _invalid(f"'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER_VERSIONS}")
    if rule.abort_after_days is not None:
        _check_positive(
            rule.abort_after_days, "DaysAfterInitiation' for AbortIncompleteMultipartUpload"
        )
        if flt.tags:
            raise _invalid("AbortIncompleteMultipartUpload cannot be specified with Tags")
        if flt.by_size:
            raise _invalid(
                "AbortIncompleteMultipartUpload cannot be specified with an object size filter"
            )
    if rule.rule_id == RETENTION_RULE_ID:
        _check_retention_rule(rule)


def _check_retention_rule(rule: LifecycleRule) -> None:
    """The rule :data:`RETENTION_RULE_ID` must have the one shape ``retention_days`` has."""
    flt = rule.filter
    plain = (
        rule.enabled
        and rule.expiration is not None
        and rule.expiration.days is not None
        and rule.noncurrent_expiration is None
        and rule.abort_after_days is None
        and not flt.tags
        and not flt.by_size
        and flt.prefix in ("", ARTIFACT_PREFIX)
    )
    if not plain:
        raise _invalid(
            f"The rule ID {RETENTION_RULE_ID!r} is the site's artifact retention window: it "
            f"must be Enabled, with Expiration Days only and a filter prefix "
            f"{ARTIFACT_PREFIX!r} or none (remove the rule to turn the window off)"
        )
    days = rule.expiration.days if rule.expiration is not None else None
    if days is not None and days > MAX_RETENTION_DAYS:
        raise _invalid(
            f"'Days' of the rule {RETENTION_RULE_ID!r} must be at most {MAX_RETENTION_DAYS}"
        )


def check_rules(rules: Sequence[LifecycleRule]) -> LifecycleRules:
    """``rules`` as a configuration S3 would store, each with an ID (a generated one where
    none was given); ``MalformedXML`` or ``InvalidArgument`` naming the first fault."""
    if not rules:
        raise S3Error("MalformedXML", "A lifecycle configuration needs at least one Rule.")
    if len(rules) > MAX_RULES:
        raise S3Error("MalformedXML", f"A lifecycle configuration holds at most {MAX_RULES} rules.")
    for rule in rules:
        _check_rule(rule)
    given = [rule.rule_id for rule in rules if rule.rule_id is not None]
    if len(set(given)) != len(given):
        raise _invalid("Rule ID must be unique. Found same ID for more than one rule")
    taken = set(given)
    checked = []
    for rule in rules:
        if rule.rule_id is None:
            rule = replace(rule, rule_id=_new_id(taken))
        checked.append(rule)
    return tuple(checked)


def _new_id(taken: set[str]) -> str:
    while True:
        candidate = uuid.uuid4().hex
        if candidate not in taken:
            taken.add(candidate)
            return candidate


# Artifact retention and the lifecycle configuration (see the module docstring)


def retention_rule(days: int) -> LifecycleRule:
    """The rule that is a ``retention_days`` of ``days``."""
    return LifecycleRule(
        RETENTION_RULE_ID,
        True,
        LifecycleFilter(prefix=ARTIFACT_PREFIX),
        Expiration(days=days),
    )


def split_retention(rules: Sequence[LifecycleRule]) -> tuple[LifecycleRules, int | None]:
    """(the rules stored as lifecycle rules, the ``retention_days`` the configuration sets)."""
    days = None
    others = []
    for rule in rules:
        if rule.rule_id == RETENTION_RULE_ID and rule.expiration is not None:
            days = rule.expiration.days
        else:
            others.append(rule)
    return tuple(others), days


def with_retention(rules: LifecycleRules | None, retention_days: Any) -> LifecycleRules | None:
    """The configuration S3 clients see: the stored rules and, first, the retention rule
    when ``retention_days`` is set (None: no configuration at all)."""
    stored = rules or ()
    if isinstance(retention_days, int) and not isinstance(retention_days, bool):
        return (retention_rule(retention_days), *stored)
    return stored or None


# When actions fall due


def expiry_of(created_at: datetime, days: int) -> datetime | None:
    """When an object created at ``created_at`` expires under ``Days`` ``days``: its creation
    plus the days, rounded up to the next midnight UTC, as S3 computes it (None: later than
    any date)."""
    try:
        moment = created_at.astimezone(UTC) + timedelta(days=days)
    except OverflowError:
        return None
    midnight = datetime.combine(moment.date(), time(0, 0), UTC)
    if midnight == moment:
        return midnight
    try:
        return midnight + timedelta(days=1)
    except OverflowError:
        return None


def is_expired(rule: LifecycleRule, created_at: datetime, now: datetime) -> bool:
    """Whether ``rule``'s Days or Date expiration has fallen due for an object created at
    ``created_at`` (its filter is checked separately)."""
    expiration = rule.expiration
    if expiration is None:
        return False
    if expiration.date is not None:
        return now >= expiration.date
    if expiration.days is not None:
        due = expiry_of(created_at, expiration.days)
        return due is not None and now >= due
    return False


# Stored form (catalog JSON, site state record, backups)


def rules_to_json(rules: Sequence[LifecycleRule]) -> list[dict[str, Any]]:
    return [_rule_to_json(rule) for rule in rules]


def _rule_to_json(rule: LifecycleRule) -> dict[str, Any]:
    flt, expiration, noncurrent = rule.filter, rule.expiration, rule.noncurrent_expiration
    return {
        "id": rule.rule_id,
        "enabled": rule.enabled,
        "filter": {
            "prefix": flt.prefix,
            "tags": [[name, value] for name, value in flt.tags],
            "size_greater_than": flt.size_greater_than,
            "size_less_than": flt.size_less_than,
            "form": flt.form,
        },
        "expiration": None
        if expiration is None
        else {
            "days": expiration.days,
            "date": None if expiration.date is None else expiration.date.isoformat(),
            "expired_object_delete_marker": expiration.expired_object_delete_marker,
        },
        "noncurrent_expiration": None
        if noncurrent is None
        else {
            "noncurrent_days": noncurrent.noncurrent_days,
            "newer_noncurrent_versions": noncurrent.newer_noncurrent_versions,
        },
        "abort_after_days": rule.abort_after_days,
    }


def rules_from_json(document: Any) -> LifecycleRules:
    """Rules as :func:`rules_to_json` wrote them; ``ValueError`` (or ``TypeError``) for
    anything else, and for rules :func:`check_rules` refuses or that lack an ID."""
    if not isinstance(document, list):
        raise TypeError("lifecycle rules must be a list")
    rules = [_rule_from_json(entry) for entry in document]
    if any(rule.rule_id is None for rule in rules):
        raise ValueError("a stored lifecycle rule has no ID")
    try:
        return check_rules(rules)
    except S3Error as error:
        raise ValueError(error.message) from None


def _rule_from_json(entry: Any) -> LifecycleRule:
    if not isinstance(entry, dict):
        raise TypeError("a lifecycle rule must be an object")
    flt = entry["filter"]
    if not isinstance(flt, dict):
        raise TypeError("filter must be an object")
    form = flt.get("form", "filter")
    if form not in ("legacy", "filter", "and"):
        raise ValueError(f"unknown filter form {form!r}")
    tags = flt.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(v, str) for v in t) for t in tags
    ):
        raise TypeError("filter tags must be [key, value] pairs of strings")
    expiration = entry.get("expiration")
    noncurrent = entry.get("noncurrent_expiration")
    return LifecycleRule(
        _optional(entry, "id", str),
        _required(entry, "enabled", bool),
        LifecycleFilter(
            _required(flt, "prefix", str),
            tuple((name, value) for name, value in tags),
            _optional(flt, "size_greater_than", int),
            _optional(flt, "size_less_than", int),
            form,
        ),
        None
        if expiration is None
        else Expiration(
            _optional(expiration, "days", int),
            _optional_date(expiration.get("date")),
            _optional(expiration, "expired_object_delete_marker", bool),
        ),
        None
        if noncurrent is None
        else NoncurrentExpiration(
            _required(noncurrent, "noncurrent_days", int),
            _optional(noncurrent, "newer_noncurrent_versions", int),
        ),
        _optional(entry, "abort_after_days", int),
    )


def _required(entry: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = entry[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be {kind.__name__}")
    return value


def _optional(entry: dict[str, Any], name: str, kind: type[_T]) -> _T | None:
    return None if entry.get(name) is None else _required(entry, name, kind)


def _optional_date(value: Any) -> datetime | None:
    return None if value is None else parse_aware(value)
