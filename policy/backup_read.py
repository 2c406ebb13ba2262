"""Reading a catalog backup file back: every line checked, as values.

:func:`read_backup` yields the entries of :mod:`policy.backup_format` one line at a time and
raises :class:`~policy.backup_format.BackupError` naming the line at the first fault: a
foreign header or another version, a line that is not a JSON object, an unknown entry type,
a malformed field (times without a UTC offset, a negative size, an unknown compression,
invalid overrides or tags), lines after the end line, or an end line whose counts are not
those of the file (a file without one is truncated). :func:`check_backup` reads a whole
file so, before anything is restored from it. Nothing here touches a catalog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, cast

from core.object_lock import MODES, BucketLock, DefaultRetention, LockMode, ObjectLock
from core.times import parse_aware
from policy.backup_format import (
    COUNTED,
    FORMAT,
    LATER_COUNTS,
    VERSION,
    BackupCounts,
    BackupError,
    BucketTagsEntry,
    Entry,
    ObjectAclEntry,
    SiteAccessEntry,
    SiteCorsEntry,
    SiteLifecycleEntry,
    SiteObjectLockEntry,
    VersionLockEntry,
    VersionRowEntry,
)
from policy.backup_versions import TABLES as VERSION_TABLES
from policy.backup_versions import version_row
from policy.bucket_access import access_from_json, grants_from_json
from policy.catalog_api_keys import ApiKeyRecord
from policy.cors import rules_from_json
from policy.identity_model import AccessKeyInfo, AccessKeyRecord, SiteGrant, User, UserPolicy
from policy.identity_rules import STATUSES
from policy.lifecycle import rules_from_json as lifecycle_from_json
from policy.model import Compression, ObjectRecord
from policy.policies import PolicyError, validate_overrides
from policy.principals import Role
from policy.tags import valid_tags

_COMPRESSIONS: Final = ("gzip", "zstd", "none")


def read_backup(path: Path) -> Iterator[Entry]:
    """The entries of a backup file, checked line by line (:class:`BackupError`); the end
    line's counts are checked when the iteration finishes."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error}") from None
    with handle:
        _header(path, handle.readline())
        counts = dict.fromkeys(COUNTED, 0)
        for number, text in enumerate(handle, start=2):
            document = _json_line(text, number)
            kind = document.get("type")
            try:
                if kind == "end":
                    _check_end(document, counts)
                    if handle.readline():
                        raise BackupError("there are lines after the end line")
                    return
                if kind == "object":
                    yield _object(document)
                elif kind == "site_policy":
                    yield _site_policy(document)
                elif kind == "api_key":
                    yield _api_key(document)
                elif kind == "user":
                    yield _user(document)
                elif kind == "access_key":
                    yield _access_key(document)
                elif kind == "user_policy":
                    yield _user_policy(document)
                elif kind == "site_grant":
                    yield _site_grant(document)
                elif kind == "site_access":
                    yield SiteAccessEntry(
                        _text(document, "site"),
                        access_from_json(document),
                        _optional_text(document, "policy"),
                    )
                elif kind == "object_acl":
                    yield ObjectAclEntry(
                        _text(document, "site"),
                        _text(document, "key"),
                        grants_from_json(document["acl"]),
                    )
                elif kind == "site_cors":
                    yield SiteCorsEntry(_text(document, "site"), rules_from_json(document["rules"]))
                elif kind == "bucket_tags":
                    yield BucketTagsEntry(
                        _text(document, "site"), valid_tags(document["tags"], "bucket")
                    )
                elif kind == "site_lifecycle":
                    yield SiteLifecycleEntry(
                        _text(document, "site"), lifecycle_from_json(document["rules"])
                    )
                elif kind == "site_object_lock":
                    yield _site_object_lock(document)
                elif kind == "version_lock":
                    yield _version_lock(document)
                elif kind in VERSION_TABLES:
                    yield version_row(str(kind), document)
                else:
                    raise BackupError(f"unknown entry type {kind!r}")
            except BackupError as error:
                raise BackupError(f"line {number}: {error}") from None
            except (KeyError, TypeError, ValueError) as error:
                raise BackupError(f"line {number}: malformed {kind} entry: {error}") from None
            counts[str(kind)] += 1
    raise BackupError("the file ends without its end line (truncated?)")


def check_backup(path: Path) -> BackupCounts:
    """Read the whole file once, checking it; what it holds."""
    counts = dict.fromkeys(COUNTED.values(), 0)
    for entry in read_backup(path):
        counts[_kind(entry)] += 1
    return BackupCounts(**counts)


def _kind(entry: Entry) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (ObjectRecord, "objects"),
        (ApiKeyRecord, "api_keys"),
        (User, "users"),
        (AccessKeyRecord, "access_keys"),
        (UserPolicy, "user_policies"),
        (SiteGrant, "site_grants"),
        (SiteAccessEntry, "site_access"),
        (ObjectAclEntry, "object_acls"),
        (SiteCorsEntry, "site_cors"),
        (BucketTagsEntry, "bucket_tags"),
        (SiteLifecycleEntry, "site_lifecycle"),
        (SiteObjectLockEntry, "site_object_lock"),
        (VersionLockEntry, "version_locks"),
    )
    if isinstance(entry, VersionRowEntry):
        return COUNTED[entry.kind]
    for kind, name in kinds:
        if isinstance(entry, kind):
            return name
    return "site_policies"


def _header(path: Path, text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupError(f"{path} is not a PageWright catalog backup")
    if document.get("version") != VERSION:
        raise BackupError(
            f"{path} is a backup of format version {document.get('version')!r}; "
            f"this gateway reads version {VERSION} only"
        )


def _json_line(text: str, number: int) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        raise BackupError(f"line {number} is not JSON") from None
    if not isinstance(document, dict):
        raise BackupError(f"line {number} is not a JSON object")
    return document


def _check_end(document: dict[str, Any], counts: dict[str, int]) -> None:
    expected = {name: counts[kind] for kind, name in COUNTED.items()}
    found = {name: document.get(name, 0 if name in LATER_COUNTS else None) for name in expected}
    if found != expected:
        raise BackupError(f"the end line counts {found}, the file holds {expected}")


def _lock_mode(document: dict[str, Any]) -> LockMode | None:
    mode = _optional_text(document, "mode")
    if mode is not None and mode not in MODES:
        raise BackupError(f"unknown object lock mode {mode!r}")
    return mode


def _site_object_lock(document: dict[str, Any]) -> SiteObjectLockEntry:
    mode = _lock_mode(document)
    if mode is None:
        return SiteObjectLockEntry(_text(document, "site"), BucketLock())
    days, years = document.get("days"), document.get("years")
    if not all(v is None or (isinstance(v, int) and v > 0) for v in (days, years)):
        raise BackupError("a default retention's days and years are positive whole numbers")
    return SiteObjectLockEntry(
        _text(document, "site"), BucketLock(DefaultRetention(mode, days, years))
    )


def _version_lock(document: dict[str, Any]) -> VersionLockEntry:
    until = _optional_text(document, "retain_until")
    if not isinstance(document.get("legal_hold"), bool):
        raise BackupError("legal_hold is true or false")
    lock = ObjectLock(
        _lock_mode(document),
        None if until is None else parse_aware(until),
        document["legal_hold"],
    )
    return VersionLockEntry(
        _text(document, "site"), _text(document, "key"), _text(document, "version_id"), lock
    )


def _text(document: dict[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _optional_text(document: dict[str, Any], name: str) -> str | None:
    return None if document.get(name) is None else _text(document, name)


def _flag(document: dict[str, Any], name: str) -> bool:
    value = document[name]
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a boolean")
    return value


def _object(document: dict[str, Any]) -> ObjectRecord:
    size = document["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise TypeError("size must be a non-negative integer")
    compression = _optional_text(document, "compression")
    if compression is not None and compression not in _COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}")
    metadata = document["user_metadata"]
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError("user_metadata must map strings to strings")
    return ObjectRecord(
        site=_text(document, "site"),
        key=_text(document, "key"),
        size=size,
        etag=_text(document, "etag"),
        created_at=parse_aware(_text(document, "created_at")),
        creator=_text(document, "creator"),
        content_type=_text(document, "content_type"),
        build_id=_optional_text(document, "build_id"),
        compression=cast("Compression | None", compression),
        sha256=_optional_text(document, "sha256"),
        status=_optional_text(document, "status"),
        action=_optional_text(document, "action"),
        pinned=_flag(document, "pinned"),
        corrupt=_flag(document, "corrupt"),
        user_metadata=dict(metadata),
        tags=valid_tags(document.get("tags") or {}, "object"),
        version_id=_optional_text(document, "version_id"),
    )


def _site_policy(document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    overrides = document["overrides"]
    if not isinstance(overrides, dict):
        raise TypeError("overrides must be an object")
    try:
        return _text(document, "site"), validate_overrides(overrides)
    except PolicyError as error:
        raise BackupError(str(error)) from None


def _api_key(document: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=_text(document, "id"),
        principal=_text(document, "principal"),
        key_hash=_text(document, "key_hash"),
        created_at=parse_aware(_text(document, "created_at")),
        last_used_at=_optionalparse_aware(document, "last_used_at"),
        expires_at=_optionalparse_aware(document, "expires_at"),
    )


def _optionalparse_aware(document: dict[str, Any], name: str) -> datetime | None:
    value = _optional_text(document, name)
    return None if value is None else parse_aware(value)


def _user(document: dict[str, Any]) -> User:
    return User(
        name=_text(document, "name"),
        user_id=_text(document, "user_id"),
        path=_text(document, "path"),
        created_at=parse_aware(_text(document, "created_at")),
    )


def _access_key(document: dict[str, Any]) -> AccessKeyRecord:
    status = _text(document, "status")
    for known in STATUSES:
        if status == known:
            break
    else:
        raise ValueError(f"unknown access key status {status!r}")
    info = AccessKeyInfo(
        access_key_id=_text(document, "access_key_id"),
        user_name=_text(document, "user_name"),
        status=known,
        created_at=parse_aware(_text(document, "created_at")),
        expires_at=_optionalparse_aware(document, "expires_at"),
        last_used_at=_optionalparse_aware(document, "last_used_at"),
    )
    return AccessKeyRecord(info, _text(document, "secret_sealed"))


def _user_policy(document: dict[str, Any]) -> UserPolicy:
    return UserPolicy(
        _text(document, "user_name"), _text(document, "policy_name"), _text(document, "document")
    )


def _site_grant(document: dict[str, Any]) -> SiteGrant:
    return SiteGrant(
        _text(document, "site"), _text(document, "user_name"), Role(_text(document, "role"))
    )
