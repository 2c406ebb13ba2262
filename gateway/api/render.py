"""Values -> JSON documents, and JSON responses with an ETag honouring If-None-Match.

The shapes here are the ones ``openapi.py`` documents (the contract test checks both).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from policy.model import ObjectRecord, Page, SitePolicy, Usage, VersionPage, VersionRecord
from policy.retention import RetentionPlan

JSON = "application/json"


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def artifact(record: ObjectRecord) -> dict[str, Any]:
    """An artifact's metadata (the ``Artifact`` schema)."""
    return {
        "site": record.site,
        "build_id": record.build_id,
        "key": record.key,
        "size": record.size,
        "etag": record.etag,
        "created_at": timestamp(record.created_at),
        "creator": record.creator,
        "content_type": record.content_type,
        "compression": record.compression,
        "sha256": record.sha256,
        "status": record.status,
        "action": record.action,
        "pinned": record.pinned,
        "corrupt": record.corrupt,
        "metadata": dict(record.user_metadata),
        "tags": dict(sorted(record.tags.items())),
    }


def page(result: Page) -> dict[str, Any]:
    return {"items": [artifact(r) for r in result.items], "next_cursor": result.next_cursor}


def version(record: VersionRecord) -> dict[str, Any]:
    """One version of an artifact (the ``ArtifactVersion`` schema)."""
    return {
        "version_id": record.version_id,
        "is_latest": record.is_latest,
        "is_delete_marker": record.is_delete_marker,
        "size": record.size,
        "etag": record.etag,
        "created": timestamp(record.created_at),
        "sha256": record.sha256,
        "build_id": record.build_id,
        "status": record.status,
        "creator": record.creator,
    }


def version_page(site: str, key: str, result: VersionPage) -> dict[str, Any]:
    return {
        "site": site,
        "key": key,
        "items": [version(v) for v in result.items],
        "next_cursor": result.next_cursor,
    }


def usage(site: str, current: Usage, policy: SitePolicy) -> dict[str, Any]:
    def remaining(limit: int | None, used: int) -> int | None:
        return None if limit is None else max(0, limit - used)

    used_bytes = current.bytes + current.reserved_bytes
    used_artifacts = current.artifacts + current.reserved_artifacts
    return {
        "site": site,
        "usage": asdict(current),
        "quota": {
            "bytes": policy.quota_bytes,
            "artifacts": policy.quota_artifacts,
            "max_object_size": policy.max_object_size,
        },
        "remaining": {
            "bytes": remaining(policy.quota_bytes, used_bytes),
            "artifacts": remaining(policy.quota_artifacts, used_artifacts),
        },
    }


def retention_rules(policy: SitePolicy) -> dict[str, Any]:
    return {"keep_last": policy.retention_keep_last, "days": policy.retention_days}


def retention_plan(site: str, policy: SitePolicy, plan: RetentionPlan) -> dict[str, Any]:
    return {
        "site": site,
        "effective": retention_rules(policy),
        "keep": [
            {"artifact": artifact(r), "reasons": plan.reasons.get(r.key, [])} for r in plan.keep
        ],
        "delete": [artifact(r) for r in plan.delete],
    }


def policy(value: SitePolicy) -> dict[str, Any]:
    return asdict(value)


def json_response(
    request: Request, document: Any, *, status: int = 200, etag: bool = False
) -> Response:
    """``document`` as JSON. With ``etag``, a strong ETag over the body is sent and a
    matching ``If-None-Match`` (or ``*``) answers 304 without a body."""
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    if not etag:
        return Response(body, status, media_type=JSON)
    tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, status, headers=headers, media_type=JSON)


def _matches(if_none_match: str | None, tag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2)."""
    if if_none_match is None:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == tag for c in candidates)
