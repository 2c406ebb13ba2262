"""Lifecycle rules (policy.lifecycle): filters, when expirations fall due, the retention
rule as the ``retention_days`` override, and the stored form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policy.lifecycle import (
    ARTIFACT_PREFIX,
    RETENTION_RULE_ID,
    Expiration,
    LifecycleFilter,
    LifecycleRule,
    NoncurrentExpiration,
    check_rules,
    expiry_of,
    is_expired,
    retention_rule,
    rules_from_json,
    rules_to_json,
    split_retention,
    with_retention,
)


@pytest.mark.parametrize(
    ("flt", "key", "size", "tags", "matches"),
    [
        (LifecycleFilter(), "anything", 0, {}, True),
        (LifecycleFilter("logs/"), "logs/a", 1, {}, True),
        (LifecycleFilter("logs/"), "log/a", 1, {}, False),
        (LifecycleFilter(tags=(("k", "v"),)), "a", 1, {"k": "v", "x": "y"}, True),
        (LifecycleFilter(tags=(("k", "v"),)), "a", 1, {"k": "w"}, False),
        (LifecycleFilter(tags=(("k", ""),)), "a", 1, {}, False),
        (LifecycleFilter(size_greater_than=10), "a", 10, {}, False),
        (LifecycleFilter(size_greater_than=10), "a", 11, {}, True),
        (LifecycleFilter(size_less_than=10), "a", 10, {}, False),
        (LifecycleFilter(size_less_than=10), "a", 9, {}, True),
        (LifecycleFilter("a", (("k", "v"),), 1, 5, "and"), "ab", 3, {"k": "v"}, True),
        (LifecycleFilter("a", (("k", "v"),), 1, 5, "and"), "ab", 5, {"k": "v"}, False),
    ],
)
def test_filter_matching(
    flt: LifecycleFilter, key: str, size: int, tags: dict[str, str], matches: bool
) -> None:
    assert flt.matches(key, size, tags) is matches


def test_days_expire_at_the_next_midnight_utc_after_creation_plus_days() -> None:
    created = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    assert expiry_of(created, 1) == datetime(2026, 1, 3, tzinfo=UTC)
    assert expiry_of(datetime(2026, 1, 1, tzinfo=UTC), 1) == datetime(2026, 1, 2, tzinfo=UTC)
    assert expiry_of(created, 2**31 - 1) is None
    rule = LifecycleRule("r", True, expiration=Expiration(days=1))
    assert not is_expired(rule, created, datetime(2026, 1, 2, 23, 59, tzinfo=UTC))
    assert is_expired(rule, created, datetime(2026, 1, 3, tzinfo=UTC))


def test_a_date_expires_everything_from_that_midnight() -> None:
    rule = LifecycleRule("r", True, expiration=Expiration(date=datetime(2026, 6, 1, tzinfo=UTC)))
    created = datetime(2026, 5, 31, 23, tzinfo=UTC)
    assert not is_expired(rule, created, datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    assert is_expired(rule, created, datetime(2026, 6, 1, tzinfo=UTC))
    marker = LifecycleRule("m", True, expiration=Expiration(expired_object_delete_marker=True))
    assert not marker.expires_current
    assert not is_expired(marker, created, datetime(2030, 1, 1, tzinfo=UTC))


def test_the_retention_rule_is_retention_days() -> None:
    other = LifecycleRule("logs", True, LifecycleFilter("logs/"), Expiration(days=3))
    assert split_retention((retention_rule(14), other)) == ((other,), 14)
    assert split_retention((other,)) == ((other,), None)
    assert with_retention((other,), 14) == (retention_rule(14), other)
    assert with_retention(None, 14) == (retention_rule(14),)
    assert with_retention((other,), None) == (other,)
    assert with_retention(None, None) is None
    assert with_retention((), None) is None
    rule = retention_rule(7)
    assert (rule.rule_id, rule.filter.prefix) == (RETENTION_RULE_ID, ARTIFACT_PREFIX)


RULES = check_rules(
    [
        LifecycleRule(
            "all",
            False,
            LifecycleFilter("p/", (("k", "v"),), 1, 9, "and"),
            Expiration(date=datetime(2031, 1, 1, tzinfo=UTC)),
            NoncurrentExpiration(3, 2),
        ),
        LifecycleRule(None, True, LifecycleFilter("x", form="legacy"), abort_after_days=4),
    ]
)


def test_stored_form_round_trips() -> None:
    assert RULES[1].rule_id is not None
    assert rules_from_json(rules_to_json(RULES)) == RULES


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: {"not": "a list"},
        lambda d: [*d, "not an object"],
        lambda d: [{**d[0], "id": None}],
        lambda d: [{**d[0], "enabled": "yes"}],
        lambda d: [{**d[0], "filter": {**d[0]["filter"], "form": "odd"}}],
        lambda d: [{**d[0], "filter": {**d[0]["filter"], "tags": [["k"]]}}],
        lambda d: [{**d[0], "abort_after_days": 0}],
        lambda d: [{**d[0], "expiration": {"days": None, "date": "2031-01-01T00:00:00"}}],
        lambda d: [d[0], d[0]],
    ],
)
def test_damaged_stored_rules_are_refused(damage: object) -> None:
    assert callable(damage)
    with pytest.raises((TypeError, ValueError, KeyError)):
        rules_from_json(damage(rules_to_json(RULES)))
