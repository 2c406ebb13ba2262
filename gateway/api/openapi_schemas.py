"""The ``components.schemas`` of the artifact API's OpenAPI document: every request and reply
body, closed (``additionalProperties: false``) so the contract test catches drift."""

from __future__ import annotations

from typing import Any, Final

from gateway.api.openapi_builders import closed_object, nullable, ref
from gateway.api.params import (
    BUILD_ID_PATTERN,
    MAX_BUILD_IDS,
    MAX_TEXT_LENGTH,
    TEXT_PATTERN,
)
from policy.policies import MAXIMUM

BUILD_ID: Final = {"type": "string", "pattern": BUILD_ID_PATTERN}
#: Filter values, statuses and actions: no control characters, bounded.
TEXT: Final = {"type": "string", "pattern": TEXT_PATTERN, "maxLength": MAX_TEXT_LENGTH}

_ARTIFACT_PROPERTIES: dict[str, Any] = {
    "site": {"type": "string"},
    "build_id": {"type": "string"},
    "key": {"type": "string", "description": "builds/<build_id>.<ext>"},
    "size": {"type": "integer", "minimum": 0},
    "etag": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "creator": {"type": "string"},
    "content_type": {"type": "string"},
    "compression": nullable("string", enum=["gzip", "zstd", "none", None]),
    "sha256": nullable("string", description="hex SHA-256 of the artifact, when known"),
    "status": nullable("string"),
    "action": nullable("string"),
    "pinned": {"type": "boolean"},
    "corrupt": {"type": "boolean"},
    "metadata": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "User metadata (x-amz-meta-*) without the prefix.",
    },
    "tags": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "The artifact's S3 tags (PutObjectTagging, x-amz-tagging), by key.",
    },
}


def bounded(kind: str, field: str) -> dict[str, Any]:
    return nullable(kind, minimum=0, maximum=MAXIMUM[field])


_POLICY_PROPERTIES: dict[str, Any] = {
    "max_object_size": bounded("integer", "max_object_size"),
    "quota_bytes": bounded("integer", "quota_bytes"),
    "quota_artifacts": bounded("integer", "quota_artifacts"),
    "retention_keep_last": bounded("integer", "retention_keep_last"),
    "retention_days": bounded("integer", "retention_days"),
    "validate_archives": {"type": "boolean"},
    "required_member": nullable("string", pattern="^[^\\u0000]*$"),
    "max_members": bounded("integer", "max_members"),
    "max_uncompressed_bytes": bounded("integer", "max_uncompressed_bytes"),
    "max_compression_ratio": bounded("number", "max_compression_ratio"),
    "site_requests_per_second": bounded("number", "site_requests_per_second"),
    "site_request_burst": bounded("integer", "site_request_burst"),
    "site_bytes_per_second": bounded("integer", "site_bytes_per_second"),
    "site_byte_burst": bounded("integer", "site_byte_burst"),
    "default_encryption": {"type": ["string", "null"], "enum": ["AES256", "aws:kms", None]},
    "default_kms_key_id": nullable("string", pattern="^[A-Za-z0-9/_:.-]+$"),
}
_RULES = {
    "keep_last": bounded("integer", "retention_keep_last"),
    "days": bounded("integer", "retention_days"),
}

SCHEMAS: dict[str, Any] = {
    "Error": closed_object(
        {
            "error": closed_object(
                {
                    "code": {"type": "string", "description": "e.g. NoSuchArtifact"},
                    "message": {"type": "string"},
                    "request_id": {
                        "type": "string",
                        "description": "The request's id (also its x-amz-request-id header "
                        "and its access log line); absent on per-item errors of a bulk reply.",
                    },
                },
                ["code", "message"],
            )
        }
    ),
    "Artifact": closed_object(_ARTIFACT_PROPERTIES),
    "ArtifactPage": closed_object(
        {
            "items": {"type": "array", "items": ref("Artifact")},
            "next_cursor": nullable("string", description="null on the last page"),
        }
    ),
    "ArtifactVersion": closed_object(
        {
            "version_id": {"type": "string", "description": '"null" when unversioned'},
            "is_latest": {"type": "boolean"},
            "is_delete_marker": {"type": "boolean"},
            "size": {"type": "integer", "minimum": 0},
            "etag": nullable("string", description="null for a delete marker"),
            "created": {"type": "string", "format": "date-time"},
            "sha256": nullable("string", pattern="^[0-9a-f]{64}$"),
            "build_id": nullable("string"),
            "status": nullable("string"),
            "creator": nullable("string"),
        }
    ),
    "ArtifactVersionPage": closed_object(
        {
            "site": {"type": "string"},
            "key": {"type": "string", "description": "builds/<build_id>.<ext>"},
            "items": {"type": "array", "items": ref("ArtifactVersion")},
            "next_cursor": nullable("string", description="null on the last page"),
        }
    ),
    "BuildIds": closed_object(
        {
            "build_ids": {
                "type": "array",
                "items": BUILD_ID,
                "minItems": 1,
                "maxItems": MAX_BUILD_IDS,
            }
        }
    ),
    "DeleteRequest": closed_object(
        {
            "build_ids": {
                "type": "array",
                "items": BUILD_ID,
                "minItems": 1,
                "maxItems": MAX_BUILD_IDS,
            },
            "force": {"type": "boolean", "description": "delete pinned builds too"},
        },
        required=["build_ids"],
    ),
    "DeleteResult": closed_object(
        {
            "deleted": {"type": "array", "items": {"type": "string"}},
            "not_found": {"type": "array", "items": {"type": "string"}},
            "pinned": {
                "type": "array",
                "items": {"type": "string"},
                "description": "pinned builds left in place (no force)",
            },
            "failed": {
                "type": "array",
                "items": closed_object(
                    {"build_id": {"type": "string"}, "error": ref("Error/properties/error")}
                ),
            },
        }
    ),
    "ArtifactUpdate": {
        **closed_object(
            {
                "status": {**TEXT, "minLength": 1},
                "action": {**TEXT, "minLength": 1},
            },
            required=[],
        ),
        "minProperties": 1,
    },
    "Job": closed_object(
        {
            "name": {"type": "string"},
            "interval_seconds": {"type": "number", "minimum": 0},
            "enabled": {"type": "boolean", "description": "false: interval 0, never run."},
            "holder": nullable("string", description="The replica running it now, if any."),
            "lease_expires_at": nullable("string", format="date-time"),
            "last_started_at": nullable(
                "string",
                format="date-time",
                description="When the last run started: the current run's while one runs.",
            ),
            "last_finished_at": nullable(
                "string",
                format="date-time",
                description="When the last finished run ended (earlier than "
                "last_started_at while a run is in progress).",
            ),
            "last_duration_seconds": nullable("number", minimum=0),
            "last_outcome": nullable(
                "string", description='"ok" or "failed: <reason>"; null: never finished.'
            ),
            "runs": {"type": "integer", "minimum": 0},
            "failures": {"type": "integer", "minimum": 0},
            "next_due_at": nullable(
                "string", format="date-time", description="null: off, or due at once."
            ),
        }
    ),
    "JobList": closed_object({"jobs": {"type": "array", "items": ref("Job")}}),
    "Usage": closed_object(
        {
            "site": {"type": "string"},
            "usage": closed_object(
                {
                    "bytes": {"type": "integer", "minimum": 0},
                    "objects": {"type": "integer", "minimum": 0},
                    "artifacts": {"type": "integer", "minimum": 0},
                    "reserved_bytes": {"type": "integer", "minimum": 0},
                    "reserved_artifacts": {"type": "integer", "minimum": 0},
                    "noncurrent_bytes": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "The part of bytes held by noncurrent versions.",
                    },
                    "noncurrent_versions": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Noncurrent versions (delete markers not counted); "
                        "objects and artifacts count current ones only.",
                    },
                }
            ),
            "quota": closed_object(
                {
                    "bytes": nullable("integer", minimum=0),
                    "artifacts": nullable("integer", minimum=0),
                    "max_object_size": nullable("integer", minimum=0),
                }
            ),
            "remaining": closed_object(
                {
                    "bytes": nullable("integer", minimum=0),
                    "artifacts": nullable("integer", minimum=0),
                }
            ),
        }
    ),
    "RetentionRules": closed_object(_RULES),
    "RetentionUpdate": closed_object(_RULES, required=[]),
    "Retention": closed_object(
        {
            "site": {"type": "string"},
            "effective": ref("RetentionRules"),
            "overrides": ref("RetentionUpdate"),
            "defaults": ref("RetentionRules"),
        }
    ),
    "RetentionPlan": closed_object(
        {
            "site": {"type": "string"},
            "effective": ref("RetentionRules"),
            "keep": {
                "type": "array",
                "items": closed_object(
                    {
                        "artifact": ref("Artifact"),
                        "reasons": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
            "delete": {"type": "array", "items": ref("Artifact")},
            "proposed": {
                "type": "boolean",
                "description": "true when planned under the request's proposed rules",
            },
        }
    ),
    "RetentionDryRun": closed_object(
        {
            "proposed": {
                **ref("RetentionUpdate"),
                "description": "Rules to preview instead of the site's, read as a "
                "PutRetention body would be; they are not stored.",
            }
        },
        required=[],
    ),
    "SitePolicy": closed_object(_POLICY_PROPERTIES),
    "PolicyOverrides": closed_object(_POLICY_PROPERTIES, required=[]),
    "PolicyUpdate": closed_object({"overrides": ref("PolicyOverrides")}),
    "Policy": closed_object(
        {
            "site": {"type": "string"},
            "defaults": ref("SitePolicy"),
            "overrides": ref("PolicyOverrides"),
            "effective": ref("SitePolicy"),
        }
    ),
}
