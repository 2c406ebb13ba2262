"""The OpenAPI 3.1 document of the artifact API, written by hand.

Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect) and close every object
(``additionalProperties: false``) so that ``tests/test_api.py``, which validates each
response it receives against the schema of its operation and status, catches drift in
either direction. Paths are relative to the server URL ``/_pagewright/v1``; every
``operationId`` is the ``name`` of its route in ``gateway.api.app``.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.api.openapi_builders import (
    NOT_MODIFIED,
    STANDARD_ERRORS,
    WRITE_ERRORS,
    error_responses,
    json_body,
    json_response,
    listing_operation,
    operation,
    parameter,
    ref,
)
from gateway.api.openapi_schemas import BUILD_ID, SCHEMAS, TEXT
from gateway.api.params import (
    CURSOR_PATTERN,
    DATE_PATTERN,
    MAX_JSON_DEPTH,
    MAX_LIMIT,
    META_FIELD_PATTERN,
    SITE_PATTERN,
)
from policy.catalog_records import MAX_CURSOR_LENGTH
from policy.tags import MAX_KEY_LENGTH, MAX_VALUE_LENGTH

_SITE_ID = {"type": "string", "pattern": SITE_PATTERN}
_DATE = {"type": "string", "pattern": DATE_PATTERN}
_DATE_RANGE = (
    " A real calendar date between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z once in UTC."
)
_SITE = parameter("site", "path", "The site id (the bucket name).", _SITE_ID)
_BUILD = parameter(
    "build_id", "path", "The build id: the artifact is builds/<build_id>.<ext>.", BUILD_ID
)
_FILTERS = [
    parameter(
        "created_from",
        "query",
        "Only artifacts created at or after this ISO 8601 date or time (UTC if no offset)."
        + _DATE_RANGE,
        _DATE,
    ),
    parameter(
        "created_to",
        "query",
        "Only artifacts created before this ISO 8601 date or time (UTC if no offset); "
        "after created_from." + _DATE_RANGE,
        _DATE,
    ),
    parameter("status", "query", "Only artifacts with this status.", TEXT),
    parameter("action", "query", "Only artifacts with this action.", TEXT),
    parameter("creator", "query", "Only artifacts uploaded by this creator.", TEXT),
    parameter(
        "pinned", "query", "Only pinned (true) or unpinned (false) artifacts.",
        {"type": "string", "enum": ["true", "false"]},
    ),
    parameter(
        "sort", "query", "Sort field (default created_at); ties are broken by site and key.",
        {"type": "string", "enum": ["created_at", "size", "build_id", "key"]},
    ),
    parameter(
        "order", "query", "Sort direction (default desc).",
        {"type": "string", "enum": ["asc", "desc"]},
    ),
    parameter(
        "limit", "query", "Page size (default 100), ASCII digits.",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    ),
    parameter(
        "cursor", "query",
        "The next_cursor of the previous page, with the same sort and order; opaque: a "
        "cursor that is malformed, or carries values no artifact could have, is 400 "
        "InvalidCursor.",
        {"type": "string", "maxLength": MAX_CURSOR_LENGTH, "pattern": CURSOR_PATTERN},
    ),
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "An ETag of an earlier answer: 304 when the answer is unchanged.",
        "schema": {"type": "string"},
    },
]  # fmt: skip
_VERSION_PAGING = [
    _SITE,
    _BUILD,
    parameter(
        "limit", "query", "Page size (default 100), ASCII digits.",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    ),
    parameter(
        "cursor", "query",
        "The next_cursor of the previous page; opaque: a malformed cursor is 400 "
        "InvalidCursor.",
        {"type": "string", "maxLength": MAX_CURSOR_LENGTH, "pattern": CURSOR_PATTERN},
    ),
    _FILTERS[-1],
]  # fmt: skip
_SEARCH = [
    parameter("site", "query", "Only artifacts of this site.", _SITE_ID),
    {
        "name": "meta",
        "in": "query",
        "required": False,
        "style": "deepObject",
        "explode": True,
        "description": "meta.<field>=<value>: user metadata (x-amz-meta-<field>) must equal "
        "the value; several fields must all match. A field name is an HTTP header token, "
        "matched case-insensitively.",
        "schema": {
            "type": "object",
            "propertyNames": {"pattern": META_FIELD_PATTERN},
            "additionalProperties": TEXT,
        },
    },
    {
        "name": "tag",
        "in": "query",
        "required": False,
        "style": "deepObject",
        "explode": True,
        "description": "tag.<key>=<value>: the artifact's S3 tag <key> (PutObjectTagging, "
        "x-amz-tagging) must equal the value; several tags must all match. Keys and values "
        "are matched exactly and hold what an S3 tag holds: letters, digits and spaces of "
        f"any script and _ . : / = + - @; a key 1 to {MAX_KEY_LENGTH} characters, a value at "
        f"most {MAX_VALUE_LENGTH}. Anything else is 400 InvalidArgument.",
        "schema": {
            "type": "object",
            "propertyNames": {"minLength": 1, "maxLength": MAX_KEY_LENGTH},
            "additionalProperties": {"type": "string", "maxLength": MAX_VALUE_LENGTH},
        },
    },
]


_PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            **operation(
                "GetOpenApi",
                "This document.",
                [],
                {"200": json_response({"type": "object"}, "The OpenAPI 3.1 document.")},
                tags=("meta",),
            ),
            "security": [],
        }
    },
    "/artifacts/search": {
        "get": listing_operation(
            "SearchArtifacts",
            "Search artifacts across sites by metadata fields, S3 tags and filters.",
            [*_SEARCH, *_FILTERS],
        )
    },
    "/sites/{site}/artifacts": {
        "get": listing_operation(
            "ListArtifacts",
            "List a site's artifacts: filters, sort and cursor pagination.",
            [_SITE, *_FILTERS],
        )
    },
    "/sites/{site}/artifacts:delete": {
        "post": operation(
            "DeleteArtifacts",
            "Delete builds through the storage backend; pinned ones only with force.",
            [_SITE],
            {
                "200": json_response(ref("DeleteResult"), "What happened to each build id."),
                **error_responses(*WRITE_ERRORS),
            },
            body=json_body(ref("DeleteRequest"), "The builds to delete."),
        )
    },
    "/sites/{site}/artifacts:download": {
        "post": operation(
            "DownloadArtifacts",
            "Download builds as one streamed tar of builds/<build_id>.<ext> members.",
            [_SITE],
            {
                "200": {
                    "description": "A tar archive, streamed; Content-Length is exact.",
                    "content": {
                        "application/x-tar": {
                            "schema": {"type": "string", "contentMediaType": "application/x-tar"}
                        }
                    },
                },
                **error_responses(*STANDARD_ERRORS, "404"),
            },
            body=json_body(ref("BuildIds"), "The builds to download, in archive order."),
        )
    },
    "/sites/{site}/artifacts/{build_id}": {
        "get": operation(
            "GetArtifact",
            "One artifact's metadata (no download).",
            [_SITE, _BUILD],
            {
                "200": {
                    **json_response(ref("Artifact"), "The artifact."),
                    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
                },
                "304": NOT_MODIFIED,
                **error_responses(*STANDARD_ERRORS, "404"),
            },
        ),
        "patch": operation(
            "UpdateArtifact",
            "Set an artifact's status and/or action.",
            [_SITE, _BUILD],
            {
                "200": json_response(ref("Artifact"), "The updated artifact."),
                **error_responses(*WRITE_ERRORS, "404"),
            },
            body=json_body(ref("ArtifactUpdate"), "The fields to set."),
        ),
    },
    "/sites/{site}/artifacts/{build_id}/versions": {
        "get": operation(
            "ListArtifactVersions",
            "An artifact's versions, newest first (the current one first): noncurrent "
            "versions and delete markers on a versioned site, with what the catalog knew of "
            "each while it was current (null: unknown); a site never versioned lists its "
            "one current version, version id null.",
            _VERSION_PAGING,
            {
                "200": {
                    **json_response(ref("ArtifactVersionPage"), "One page of versions."),
                    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
                },
                "304": NOT_MODIFIED,
                **error_responses(*STANDARD_ERRORS, "404"),
            },
        )
    },
    "/sites/{site}/artifacts/{build_id}/pin": {
        "post": operation(
            "PinArtifact",
            "Pin an artifact: retention never deletes it.",
            [_SITE, _BUILD],
            {
                "200": json_response(ref("Artifact"), "The pinned artifact."),
                **error_responses(*WRITE_ERRORS, "404"),
            },
        )
    },
    "/sites/{site}/artifacts/{build_id}/unpin": {
        "post": operation(
            "UnpinArtifact",
            "Unpin an artifact.",
            [_SITE, _BUILD],
            {
                "200": json_response(ref("Artifact"), "The unpinned artifact."),
                **error_responses(*WRITE_ERRORS, "404"),
            },
        )
    },
    "/sites/{site}/usage": {
        "get": operation(
            "GetUsage",
            "A site's usage, its quotas and what remains.",
            [_SITE],
            {
                "200": json_response(ref("Usage"), "Usage and quota."),
                **error_responses(*STANDARD_ERRORS),
            },
            tags=("sites",),
        )
    },
    "/sites/{site}/retention": {
        "get": operation(
            "GetRetention",
            "A site's retention rules: effective, overridden, defaults.",
            [_SITE],
            {
                "200": json_response(ref("Retention"), "Retention rules."),
                **error_responses(*STANDARD_ERRORS),
            },
            tags=("sites",),
        ),
        "put": operation(
            "PutRetention",
            "Set a site's retention rules: a field present overrides the default (null: "
            "no such rule), a field absent falls back to it.",
            [_SITE],
            {
                "200": json_response(ref("Retention"), "Retention rules."),
                **error_responses(*WRITE_ERRORS),
            },
            body=json_body(ref("RetentionUpdate"), "The site's retention rules."),
            tags=("sites",),
        ),
    },
    "/sites/{site}/retention:dry-run": {
        "post": operation(
            "DryRunRetention",
            "What a retention pass would keep (and why) and delete now, under the site's "
            "rules or proposed ones; deletes nothing and stores nothing.",
            [_SITE],
            {
                "200": json_response(ref("RetentionPlan"), "The plan."),
                **error_responses(*STANDARD_ERRORS),
            },
            body={
                **json_body(ref("RetentionDryRun"), "Optional: proposed rules to preview."),
                "required": False,
            },
            tags=("sites",),
        )
    },
    "/sites/{site}/policy": {
        "get": operation(
            "GetPolicy",
            "A site's policy: config defaults, the site's overrides, the effective policy.",
            [_SITE],
            {
                "200": json_response(ref("Policy"), "The policy."),
                **error_responses(*STANDARD_ERRORS),
            },
            tags=("sites",),
        ),
        "put": operation(
            "PutPolicy",
            "Replace every override of a site ({} removes them).",
            [_SITE],
            {
                "200": json_response(ref("Policy"), "The policy."),
                **error_responses(*WRITE_ERRORS),
            },
            body=json_body(ref("PolicyUpdate"), "The site's overrides."),
            tags=("sites",),
        ),
    },
    "/jobs": {
        "get": operation(
            "ListJobs",
            "The background jobs (retention, scrub, reclaim-reservations, sweep-staging, "
            "abort-abandoned-uploads): schedule, current holder, last run, duration, "
            "outcome, runs and failures. Decided on resource *: root, or a policy allowing "
            "pagewright:ListJobs.",
            [],
            {
                "200": json_response(ref("JobList"), "Every job, by name."),
                **error_responses(*STANDARD_ERRORS),
            },
            tags=("admin",),
        )
    },
}

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "PageWright Gateway artifact API",
        "version": "1.0.0",
        "description": "Build artifacts (builds/<build_id>.<ext> in a site's bucket): list, "
        "search, inspect, pin, delete and download them; per-site usage, retention and "
        'policy overrides. Errors are {"error": {"code", "message"}}. Responses over '
        "1 KiB are gzip-compressed when the client accepts it (tars never are). Request "
        "bodies are I-JSON (RFC 7493): UTF-8, no lone surrogates, no U+0000, no NaN or "
        f"Infinity, at most {MAX_JSON_DEPTH} levels deep, at most 1 MiB; anything else is "
        "400 MalformedJSON.",
    },
    "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "servers": [{"url": "/_pagewright/v1"}],
    "security": [{"apiKey": []}],
    "tags": [
        {"name": "artifacts", "description": "Build artifacts."},
        {"name": "sites", "description": "Per-site usage, retention and policy."},
        {"name": "admin", "description": "The gateway's background jobs."},
        {"name": "meta", "description": "This description."},
    ],
    "paths": _PATHS,
    "components": {
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (pagewright-gateway api-key create), as "
                "Authorization: Bearer <key>. Keys belong to the principals of the S3 "
                "credentials; only the root principal is authorized for now.",
            }
        },
        "headers": {
            "ETag": {
                "description": "A strong ETag of the body, for If-None-Match.",
                "schema": {"type": "string"},
            }
        },
        "responses": {
            name: json_response(ref("Error"), description)
            for name, description in (
                ("BadRequest", "Invalid parameters or body."),
                ("Unauthorized", "No valid API key."),
                ("Forbidden", "The principal may not do this."),
                ("NotFound", "No such artifact."),
                ("InternalError", "An unexpected error; the message names the request id."),
                (
                    "ServiceUnavailable",
                    "The catalog or the storage is unavailable for now, or a rate limit "
                    "is reached (code SlowDown, with a Retry-After header in seconds); "
                    "retry later.",
                ),
                ("InsufficientStorage", "The storage is full; retrying will not help."),
            )
        },
        "schemas": SCHEMAS,
    },
}
