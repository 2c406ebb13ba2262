"""Object lock values shared by every layer: a version's lock and a bucket's default rule.

A locked version cannot be deleted by id (``policy.object_lock`` enforces it): a legal hold
until it is taken off; a retention until its date, where ``GOVERNANCE`` gives way to a
principal allowed ``s3:BypassGovernanceRetention`` who asks with
``x-amz-bypass-governance-retention: true`` and ``COMPLIANCE`` to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

LockMode = Literal["GOVERNANCE", "COMPLIANCE"]
MODES: tuple[LockMode, ...] = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True)
class ObjectLock:
    """A version's lock, or what a write asks for: a retention (``mode`` and
    ``retain_until`` together, or neither) and a legal hold (None: not said)."""

    mode: LockMode | None = None
    retain_until: datetime | None = None
    legal_hold: bool | None = None

    def retained(self, now: datetime) -> bool:
        return self.retain_until is not None and self.retain_until > now


@dataclass(frozen=True)
class DefaultRetention:
    """A bucket's default retention: ``days`` or ``years`` (exactly one) in ``mode``."""

    mode: LockMode
    days: int | None = None
    years: int | None = None

    def lock_from(self, moment: datetime) -> ObjectLock:
        """The retention a version written at ``moment`` gets."""
        days = self.days if self.days is not None else 365 * (self.years or 0)
        return ObjectLock(self.mode, moment.astimezone(UTC) + timedelta(days=days))


@dataclass(frozen=True)
class BucketLock:
    """A bucket with object lock enabled, and its default rule (None: no default)."""

    default: DefaultRetention | None = None
