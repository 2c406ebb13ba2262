"""The OpenAPI 3.1 document of the artifact API, written by hand.

Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect) and close every object
(``additionalProperties: false``) so that ``tests/test_api.py``, which validates each
response it receives against the schema of its operation and status, catches drift in
either direction. Paths are relative to the server URL ``/_pagewright/v1``; every
``operationId`` is the ``name`` of its route in ``gateway.api.app``.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.api.params import (
    BUILD_ID_PATTERN,
    CURSOR_PATTERN,
    DATE_PATTERN,
    MAX_BUILD_IDS,
    MAX_JSON_DEPTH,
    MAX_LIMIT,
    MAX_TEXT_LENGTH,
    META_FIELD_PATTERN,
    SITE_PATTERN,
    TEXT_PATTERN,
)
from policy.catalog_records import MAX_CURSOR_LENGTH
from policy.policies import MAXIMUM


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A closed object; every property required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {
        status: {"$ref": f"#/components/responses/{_ERROR_NAMES[status]}"} for status in statuses
    }


_ERROR_NAMES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "500": "InternalError",
}
_STANDARD_ERRORS = ("400", "401", "403", "500")
_NOT_MODIFIED = {
    "description": "Not modified: the If-None-Match header matched the current ETag.",
    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
}


def _param(name: str, where: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_SITE_ID = {"type": "string", "pattern": SITE_PATTERN}
_BUILD_ID = {"type": "string", "pattern": BUILD_ID_PATTERN}
#: Filter values, statuses and actions: no control characters, bounded.
_TEXT = {"type": "string", "pattern": TEXT_PATTERN, "maxLength": MAX_TEXT_LENGTH}
_DATE = {"type": "string", "pattern": DATE_PATTERN}
_DATE_RANGE = (
    " A real calendar date between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z once in UTC."
)
_SITE = _param("site", "path", "The site id (the bucket name).", _SITE_ID)
_BUILD = _param(
    "build_id", "path", "The build id: the artifact is builds/<build_id>.<ext>.", _BUILD_ID
)
_FILTERS = [
    _param(
        "created_from",
        "query",
        "Only artifacts created at or after this ISO 8601 date or time (UTC if no offset)."
        + _DATE_RANGE,
        _DATE,
    ),
    _param(
        "created_to",
        "query",
        "Only artifacts created before this ISO 8601 date or time (UTC if no offset); "
        "after created_from." + _DATE_RANGE,
        _DATE,
    ),
    _param("status", "query", "Only artifacts with this status.", _TEXT),
    _param("action", "query", "Only artifacts with this action.", _TEXT),
    _param("creator", "query", "Only artifacts uploaded by this creator.", _TEXT),
    _param(
        "pinned", "query", "Only pinned (true) or unpinned (false) artifacts.",
        {"type": "string", "enum": ["true", "false"]},
    ),
    _param(
        "sort", "query", "Sort field (default created_at); ties are broken by site and key.",
        {"type": "string", "enum": ["created_at", "size", "build_id", "key"]},
    ),
    _param(
        "order", "query", "Sort direction (default desc).",
        {"type": "string", "enum": ["asc", "desc"]},
    ),
    _param(
        "limit", "query", "Page size (default 100), ASCII digits.",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    ),
    _param(
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
_SEARCH = [
    _param("site", "query", "Only artifacts of this site.", _SITE_ID),
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
            "additionalProperties": _TEXT,
        },
    },
]


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _operation(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    tags: tuple[str, ...] = ("artifacts",),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": list(tags),
        "parameters": parameters,
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def _listing(operation_id: str, summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return _operation(
        operation_id,
        summary,
        parameters,
        {
            "200": {
                **_json(_ref("ArtifactPage"), "One page of artifacts."),
                "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
            },
            "304": _NOT_MODIFIED,
            **_errors(*_STANDARD_ERRORS),
        },
    )


_ARTIFACT_PROPERTIES: dict[str, Any] = {
    "site": {"type": "string"},
    "build_id": {"type": "string"},
    "key": {"type": "string", "description": "builds/<build_id>.<ext>"},
    "size": {"type": "integer", "minimum": 0},
    "etag": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"},
    "creator": {"type": "string"},
    "content_type": {"type": "string"},
    "compression": _nullable("string", enum=["gzip", "zstd", "none", None]),
    "sha256": _nullable("string", description="hex SHA-256 of the artifact, when known"),
    "status": _nullable("string"),
    "action": _nullable("string"),
    "pinned": {"type": "boolean"},
    "corrupt": {"type": "boolean"},
    "metadata": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "User metadata (x-amz-meta-*) without the prefix.",
    },
}


def _bounded(kind: str, field: str) -> dict[str, Any]:
    return _nullable(kind, minimum=0, maximum=MAXIMUM[field])


_POLICY_PROPERTIES: dict[str, Any] = {
    "max_object_size": _bounded("integer", "max_object_size"),
    "quota_bytes": _bounded("integer", "quota_bytes"),
    "quota_artifacts": _bounded("integer", "quota_artifacts"),
    "retention_keep_last": _bounded("integer", "retention_keep_last"),
    "retention_days": _bounded("integer", "retention_days"),
    "validate_archives": {"type": "boolean"},
    "required_member": _nullable("string", pattern="^[^\\u0000]*$"),
    "max_members": _bounded("integer", "max_members"),
    "max_uncompressed_bytes": _bounded("integer", "max_uncompressed_bytes"),
    "max_compression_ratio": _bounded("number", "max_compression_ratio"),
}
_RULES = {
    "keep_last": _bounded("integer", "retention_keep_last"),
    "days": _bounded("integer", "retention_days"),
}

_SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": _object(
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
    "Artifact": _object(_ARTIFACT_PROPERTIES),
    "ArtifactPage": _object(
        {
            "items": {"type": "array", "items": _ref("Artifact")},
            "next_cursor": _nullable("string", description="null on the last page"),
        }
    ),
    "BuildIds": _object(
        {
            "build_ids": {
                "type": "array",
                "items": _BUILD_ID,
                "minItems": 1,
                "maxItems": MAX_BUILD_IDS,
            }
        }
    ),
    "DeleteRequest": _object(
        {
            "build_ids": {
                "type": "array",
                "items": _BUILD_ID,
                "minItems": 1,
                "maxItems": MAX_BUILD_IDS,
            },
            "force": {"type": "boolean", "description": "delete pinned builds too"},
        },
        required=["build_ids"],
    ),
    "DeleteResult": _object(
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
                "items": _object(
                    {"build_id": {"type": "string"}, "error": _ref("Error/properties/error")}
                ),
            },
        }
    ),
    "ArtifactUpdate": {
        **_object(
            {
                "status": {**_TEXT, "minLength": 1},
                "action": {**_TEXT, "minLength": 1},
            },
            required=[],
        ),
        "minProperties": 1,
    },
    "Usage": _object(
        {
            "site": {"type": "string"},
            "usage": _object(
                {
                    "bytes": {"type": "integer", "minimum": 0},
                    "objects": {"type": "integer", "minimum": 0},
                    "artifacts": {"type": "integer", "minimum": 0},
                    "reserved_bytes": {"type": "integer", "minimum": 0},
                    "reserved_artifacts": {"type": "integer", "minimum": 0},
                }
            ),
            "quota": _object(
                {
                    "bytes": _nullable("integer", minimum=0),
                    "artifacts": _nullable("integer", minimum=0),
                    "max_object_size": _nullable("integer", minimum=0),
                }
            ),
            "remaining": _object(
                {
                    "bytes": _nullable("integer", minimum=0),
                    "artifacts": _nullable("integer", minimum=0),
                }
            ),
        }
    ),
    "RetentionRules": _object(_RULES),
    "RetentionUpdate": _object(_RULES, required=[]),
    "Retention": _object(
        {
            "site": {"type": "string"},
            "effective": _ref("RetentionRules"),
            "overrides": _ref("RetentionUpdate"),
            "defaults": _ref("RetentionRules"),
        }
    ),
    "RetentionPlan": _object(
        {
            "site": {"type": "string"},
            "effective": _ref("RetentionRules"),
            "keep": {
                "type": "array",
                "items": _object(
                    {
                        "artifact": _ref("Artifact"),
                        "reasons": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
            "delete": {"type": "array", "items": _ref("Artifact")},
            "proposed": {
                "type": "boolean",
                "description": "true when planned under the request's proposed rules",
            },
        }
    ),
    "RetentionDryRun": _object(
        {
            "proposed": {
                **_ref("RetentionUpdate"),
                "description": "Rules to preview instead of the site's, read as a "
                "PutRetention body would be; they are not stored.",
            }
        },
        required=[],
    ),
    "SitePolicy": _object(_POLICY_PROPERTIES),
    "PolicyOverrides": _object(_POLICY_PROPERTIES, required=[]),
    "PolicyUpdate": _object({"overrides": _ref("PolicyOverrides")}),
    "Policy": _object(
        {
            "site": {"type": "string"},
            "defaults": _ref("SitePolicy"),
            "overrides": _ref("PolicyOverrides"),
            "effective": _ref("SitePolicy"),
        }
    ),
}

_PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            **_operation(
                "GetOpenApi",
                "This document.",
                [],
                {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
                tags=("meta",),
            ),
            "security": [],
        }
    },
    "/artifacts/search": {
        "get": _listing(
            "SearchArtifacts",
            "Search artifacts across sites by metadata fields and filters.",
            [*_SEARCH, *_FILTERS],
        )
    },
    "/sites/{site}/artifacts": {
        "get": _listing(
            "ListArtifacts",
            "List a site's artifacts: filters, sort and cursor pagination.",
            [_SITE, *_FILTERS],
        )
    },
    "/sites/{site}/artifacts:delete": {
        "post": _operation(
            "DeleteArtifacts",
            "Delete builds through the storage backend; pinned ones only with force.",
            [_SITE],
            {
                "200": _json(_ref("DeleteResult"), "What happened to each build id."),
                **_errors(*_STANDARD_ERRORS),
            },
            body=_body(_ref("DeleteRequest"), "The builds to delete."),
        )
    },
    "/sites/{site}/artifacts:download": {
        "post": _operation(
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
                **_errors(*_STANDARD_ERRORS, "404"),
            },
            body=_body(_ref("BuildIds"), "The builds to download, in archive order."),
        )
    },
    "/sites/{site}/artifacts/{build_id}": {
        "get": _operation(
            "GetArtifact",
            "One artifact's metadata (no download).",
            [_SITE, _BUILD],
            {
                "200": {
                    **_json(_ref("Artifact"), "The artifact."),
                    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
                },
                "304": _NOT_MODIFIED,
                **_errors(*_STANDARD_ERRORS, "404"),
            },
        ),
        "patch": _operation(
            "UpdateArtifact",
            "Set an artifact's status and/or action.",
            [_SITE, _BUILD],
            {
                "200": _json(_ref("Artifact"), "The updated artifact."),
                **_errors(*_STANDARD_ERRORS, "404"),
            },
            body=_body(_ref("ArtifactUpdate"), "The fields to set."),
        ),
    },
    "/sites/{site}/artifacts/{build_id}/pin": {
        "post": _operation(
            "PinArtifact",
            "Pin an artifact: retention never deletes it.",
            [_SITE, _BUILD],
            {
                "200": _json(_ref("Artifact"), "The pinned artifact."),
                **_errors(*_STANDARD_ERRORS, "404"),
            },
        )
    },
    "/sites/{site}/artifacts/{build_id}/unpin": {
        "post": _operation(
            "UnpinArtifact",
            "Unpin an artifact.",
            [_SITE, _BUILD],
            {
                "200": _json(_ref("Artifact"), "The unpinned artifact."),
                **_errors(*_STANDARD_ERRORS, "404"),
            },
        )
    },
    "/sites/{site}/usage": {
        "get": _operation(
            "GetUsage",
            "A site's usage, its quotas and what remains.",
            [_SITE],
            {"200": _json(_ref("Usage"), "Usage and quota."), **_errors(*_STANDARD_ERRORS)},
            tags=("sites",),
        )
    },
    "/sites/{site}/retention": {
        "get": _operation(
            "GetRetention",
            "A site's retention rules: effective, overridden, defaults.",
            [_SITE],
            {"200": _json(_ref("Retention"), "Retention rules."), **_errors(*_STANDARD_ERRORS)},
            tags=("sites",),
        ),
        "put": _operation(
            "PutRetention",
            "Set a site's retention rules: a field present overrides the default (null: "
            "no such rule), a field absent falls back to it.",
            [_SITE],
            {"200": _json(_ref("Retention"), "Retention rules."), **_errors(*_STANDARD_ERRORS)},
            body=_body(_ref("RetentionUpdate"), "The site's retention rules."),
            tags=("sites",),
        ),
    },
    "/sites/{site}/retention:dry-run": {
        "post": _operation(
            "DryRunRetention",
            "What a retention pass would keep (and why) and delete now, under the site's "
            "rules or proposed ones; deletes nothing and stores nothing.",
            [_SITE],
            {"200": _json(_ref("RetentionPlan"), "The plan."), **_errors(*_STANDARD_ERRORS)},
            body={
                **_body(_ref("RetentionDryRun"), "Optional: proposed rules to preview."),
                "required": False,
            },
            tags=("sites",),
        )
    },
    "/sites/{site}/policy": {
        "get": _operation(
            "GetPolicy",
            "A site's policy: config defaults, the site's overrides, the effective policy.",
            [_SITE],
            {"200": _json(_ref("Policy"), "The policy."), **_errors(*_STANDARD_ERRORS)},
            tags=("sites",),
        ),
        "put": _operation(
            "PutPolicy",
            "Replace every override of a site ({} removes them).",
            [_SITE],
            {"200": _json(_ref("Policy"), "The policy."), **_errors(*_STANDARD_ERRORS)},
            body=_body(_ref("PolicyUpdate"), "The site's overrides."),
            tags=("sites",),
        ),
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
            name: _json(_ref("Error"), description)
            for name, description in (
                ("BadRequest", "Invalid parameters or body."),
                ("Unauthorized", "No valid API key."),
                ("Forbidden", "The principal may not do this."),
                ("NotFound", "No such artifact."),
                ("InternalError", "An unexpected error; the message names the request id."),
            )
        },
        "schemas": _SCHEMAS,
    },
}
