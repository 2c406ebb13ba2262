"""Object lock at the S3 surface: the bucket's configuration (at creation, or
Put/GetObjectLockConfiguration), versions' retention and legal holds, the
``x-amz-object-lock-*`` headers of writes and reads, and the governance bypass. The rules
and their enforcement are :mod:`policy.object_lock`'s.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from core.errors import S3Error
from core.numbers import NumberError, decimal
from core.object_lock import MODES, BucketLock, DefaultRetention, LockMode, ObjectLock
from gateway import s3xml
from gateway.handlers.versions import requested_version
from gateway.request import S3Request
from gateway.responses import Reply, empty_reply, xml_reply
from policy.object_lock import ObjectLocks, missing_configuration
from translators.base import ObjectInfo
from translators.versioning import NULL_VERSION, marker_read

E, T, G = s3xml.element, s3xml.text, s3xml.group
MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
HOLD_HEADER = "x-amz-object-lock-legal-hold"
BYPASS_HEADER = "x-amz-bypass-governance-retention"
#: S3's limits on a default retention.
MAX_DAYS, MAX_YEARS = 36_500, 100


def _locks(req: S3Request) -> ObjectLocks:
    if req.services is None or req.services.locks is None:
        raise S3Error("NotImplemented", f"{req.operation.value} needs the object lock store.")
    return req.services.locks


def _date(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise S3Error(
            "InvalidArgument", f"{name} is not an ISO 8601 date.", ArgumentName=name
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _mode(value: str, name: str) -> LockMode:
    if value not in MODES:
        raise S3Error(
            "InvalidArgument", "Unknown wormMode directive.", ArgumentName=name, ArgumentValue=value
        )
    return value


def _future(until: datetime) -> None:
    if until <= datetime.now(UTC):
        raise S3Error("InvalidArgument", "The retain until date must be in the future!")


def requested_lock(req: S3Request) -> ObjectLock | None:
    """The lock a write's ``x-amz-object-lock-*`` headers ask for (None: none); a mode and
    a date go together, and the date is in the future."""
    mode, until, hold = (req.headers.get(h) for h in (MODE_HEADER, UNTIL_HEADER, HOLD_HEADER))
    if mode is None and until is None and hold is None:
        return None
    if (mode is None) != (until is None):
        raise S3Error(
            "InvalidArgument",
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
        )
    lock = ObjectLock()
    if mode is not None and until is not None:
        moment = _date(until, UNTIL_HEADER)
        _future(moment)
        lock = ObjectLock(_mode(mode.strip(), MODE_HEADER), moment)
    if hold is not None:
        if hold.strip() not in ("ON", "OFF"):
            raise S3Error("InvalidArgument", "Legal Hold must be either of 'ON' or 'OFF'")
        lock = replace(lock, legal_hold=hold.strip() == "ON")
    return lock


async def with_bypass(req: S3Request) -> S3Request:
    """``x-amz-bypass-governance-retention: true`` from a principal allowed
    ``s3:BypassGovernanceRetention`` lets the request's deletes pass GOVERNANCE retention."""
    if req.headers.get(BYPASS_HEADER, "").strip().lower() != "true":
        return req
    await req.require("s3:BypassGovernanceRetention", req.bucket, req.address.key)
    return replace(req, ctx=replace(req.ctx, bypass_governance=True))


async def lock_headers(req: S3Request, info: ObjectInfo) -> list[tuple[str, str]]:
    """A GET/HEAD reply's ``x-amz-object-lock-*`` headers (a site with object lock only)."""
    locks = req.services.locks if req.services is not None else None
    if locks is None or await locks.bucket(req.bucket) is None:
        return []
    version = info.version_id or NULL_VERSION
    # A read without a version id read the latest version: no need to ask again.
    latest = True if requested_version(req) is None else None
    lock = await locks.lock_of(req.backend, req.ctx, req.bucket, info.key, version, latest=latest)
    headers: list[tuple[str, str]] = []
    if lock.mode is not None and lock.retain_until is not None:
        headers.append((MODE_HEADER, lock.mode))
        headers.append((UNTIL_HEADER, s3xml.iso8601(lock.retain_until)))
    headers.append((HOLD_HEADER, "ON" if lock.legal_hold else "OFF"))
    return headers


async def enable_at_creation(req: S3Request) -> None:
    """CreateBucket's ``x-amz-bucket-object-lock-enabled: true``: versioning on, lock on."""
    if req.headers.get("x-amz-bucket-object-lock-enabled", "").strip().lower() != "true":
        return
    locks = _locks(req)
    await req.backend.put_bucket_versioning(req.ctx, req.bucket, "Enabled")
    await locks.set_bucket(req.bucket, BucketLock())


# The bucket's configuration


async def get_object_lock_configuration(req: S3Request) -> Reply:
    await req.backend.head_bucket(req.ctx, req.bucket)
    config = await _locks(req).bucket(req.bucket)
    if config is None:
        raise S3Error("ObjectLockConfigurationNotFoundError", BucketName=req.bucket)
    root = E("ObjectLockConfiguration", T("ObjectLockEnabled", "Enabled"))
    rule = config.default
    if rule is not None:
        root.append(
            G(
                "Rule",
                [
                    G(
                        "DefaultRetention",
                        [T("Mode", rule.mode), T("Days", rule.days), T("Years", rule.years)],
                    )
                ],
            )
        )
    return xml_reply(root)


def _positive(text: str | None, name: str, high: int) -> int | None:
    if text is None:
        return None
    try:
        value = decimal(text.strip())
    except NumberError:
        raise S3Error("MalformedXML") from None
    if not 0 < value <= high:
        raise S3Error(
            "InvalidArgument",
            f"Default retention period must be a positive integer value for {name}.",
        )
    return value


def parse_lock_configuration(body: bytes) -> BucketLock:
    root = s3xml.parse(body)
    if s3xml.local_name(root) != "ObjectLockConfiguration":
        raise S3Error("MalformedXML")
    if (s3xml.child_text(root, "ObjectLockEnabled") or "").strip() != "Enabled":
        raise S3Error("MalformedXML")
    rules = s3xml.children(root, "Rule")
    if not rules:
        return BucketLock()
    retention = s3xml.children(rules[0], "DefaultRetention")
    if len(rules) > 1 or len(retention) != 1:
        raise S3Error("MalformedXML")
    node = retention[0]
    mode = (s3xml.child_text(node, "Mode") or "").strip()
    if mode not in MODES:
        raise S3Error("MalformedXML")
    days = _positive(s3xml.child_text(node, "Days"), "Days", MAX_DAYS)
    years = _positive(s3xml.child_text(node, "Years"), "Years", MAX_YEARS)
    if (days is None) == (years is None):
        raise S3Error("MalformedXML")
    return BucketLock(DefaultRetention(mode, days, years))


async def put_object_lock_configuration(req: S3Request) -> Reply:
    """Enable object lock on a versioned bucket (it cannot be disabled) and set or change
    its default retention."""
    locks = _locks(req)
    config = parse_lock_configuration(await req.read_body())
    if await req.backend.get_bucket_versioning(req.ctx, req.bucket) != "Enabled":
        raise S3Error(
            "InvalidBucketState",
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        )
    await locks.set_bucket(req.bucket, config)
    return empty_reply(200)


# A version's retention and legal hold


async def _target(req: S3Request) -> tuple[ObjectLocks, str]:
    """The lock store and the version a retention / legal hold request names (the latest
    when it names none); ``InvalidRequest`` on a site without object lock."""
    locks = _locks(req)
    if await locks.bucket(req.bucket) is None:
        await req.backend.head_bucket(req.ctx, req.bucket)
        raise missing_configuration()
    version = requested_version(req)
    if version is None:
        info = await req.backend.head_object(req.ctx, req.bucket, req.key)
        return locks, info.version_id or NULL_VERSION
    found = await req.backend.head_version(req.ctx, req.bucket, req.key, version)
    if found.info is None:
        raise marker_read(found, req.method)
    return locks, version


async def get_object_retention(req: S3Request) -> Reply:
    locks, version = await _target(req)
    lock = await locks.stored(req.bucket, req.key, version)
    if lock.mode is None or lock.retain_until is None:
        raise S3Error("NoSuchObjectLockConfiguration")
    root = E(
        "Retention",
        T("Mode", lock.mode),
        T("RetainUntilDate", s3xml.iso8601(lock.retain_until)),
    )
    return xml_reply(root)


async def put_object_retention(req: S3Request) -> Reply:
    """Set a version's retention. COMPLIANCE can only be extended; GOVERNANCE can be
    shortened, removed or changed only with the governance bypass."""
    req = await with_bypass(req)
    locks, version = await _target(req)
    root = s3xml.parse(await req.read_body())
    if s3xml.local_name(root) != "Retention":
        raise S3Error("MalformedXML")
    mode_text = s3xml.child_text(root, "Mode")
    until_text = s3xml.child_text(root, "RetainUntilDate")
    new = ObjectLock()
    if mode_text is not None or until_text is not None:
        if mode_text is None or until_text is None:
            raise S3Error("MalformedXML")
        until = _date(until_text, "RetainUntilDate")
        _future(until)
        new = ObjectLock(_mode(mode_text.strip(), "Mode"), until)
    current = await locks.stored(req.bucket, req.key, version)
    now = datetime.now(UTC)
    if current.retained(now) and current.retain_until is not None:
        weaker = (
            new.retain_until is None
            or new.retain_until < current.retain_until
            or new.mode != current.mode
        )
        if weaker and (current.mode == "COMPLIANCE" or not req.ctx.bypass_governance):
            raise S3Error(
                "AccessDenied",
                "Access Denied because object protected by object lock: its retention can "
                "only be extended"
                + ("" if current.mode == "COMPLIANCE" else " without the governance bypass")
                + ".",
            )
    await locks.set_retention(req.backend, req.ctx, req.bucket, req.key, version, new)
    return empty_reply(200)


async def get_object_legal_hold(req: S3Request) -> Reply:
    locks, version = await _target(req)
    lock = await locks.lock_of(req.backend, req.ctx, req.bucket, req.key, version)
    return xml_reply(E("LegalHold", T("Status", "ON" if lock.legal_hold else "OFF")))


async def put_object_legal_hold(req: S3Request) -> Reply:
    """Put a legal hold on or off (the latest version's is its artifact pin)."""
    locks, version = await _target(req)
    root = s3xml.parse(await req.read_body())
    status = (s3xml.child_text(root, "Status") or "").strip()
    if s3xml.local_name(root) != "LegalHold" or status not in ("ON", "OFF"):
        raise S3Error("MalformedXML")
    await locks.set_legal_hold(req.backend, req.ctx, req.bucket, req.key, version, status == "ON")
    return empty_reply(200)
