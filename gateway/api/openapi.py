"""The OpenAPI 3.1 document of the artifact API, written by hand.

Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect) and close every object
(``additionalProperties: false``) so that ``tests/test_api.py``, which validates each
response it receives against the schema of its operation and status, catches drift in
either direction. Paths are relative to the server URL ``/_pagewright/v1``; every
``operationId`` is the ``name`` of its route in ``gateway.api.app``.
"""

from __future__ import annotations

from typing import Any, Final


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


_SITE = _param("site", "path", "The site id (the bucket name).", {"type": "string"})
_BUILD = _param(
    "build_id", "path", "The build id: the artifact is builds/<build_id>.<ext>.", {"type": "string"}
)
_FILTERS = [
    _param(
        "created_from",
        "query",
        "Only artifacts created at or after this ISO 8601 time (UTC if no offset).",
        {"type": "string"},
    ),
    _param(
        "created_to",
        "query",
        "Only artifacts created before this ISO 8601 time (UTC if no offset).",
        {"type": "string"},
    ),
    _param("status", "query", "Only artifacts with this status.", {"type": "string"}),
    _param("action", "query", "Only artifacts with this action.", {"type": "string"}),
    _param("creator", "query", "Only artifacts uploaded by this creator.", {"type": "string"}),
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
        "limit", "query", "Page size (default 100).",
        {"type": "integer", "minimum": 1, "maximum": 1000},
    ),
    _param(
        "cursor", "query",
        "The next_cursor of the previous page, with the same sort and order.",
        {"type": "string"},
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
    _param("site", "query", "Only artifacts of this site.", {"type": "string"}),
    {
        "name": "meta",
        "in": "query",
        "required": False,
        "style": "deepObject",
        "explode": True,
        "description": "meta.<field>=<value>: user metadata (x-amz-meta-<field>) must equal "
        "the value; several fields must all match.",
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
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
_POLICY_PROPERTIES: dict[str, Any] = {
    "max_object_size": _nullable("integer", minimum=0),
    "quota_bytes": _nullable("integer", minimum=0),
    "quota_artifacts": _nullable("integer", minimum=0),
    "retention_keep_last": _nullable("integer", minimum=0),
    "retention_days": _nullable("integer", minimum=0),
    "validate_archives": {"type": "boolean"},
    "required_member": _nullable("string"),
    "max_members": _nullable("integer", minimum=0),
    "max_uncompressed_bytes": _nullable("integer", minimum=0),
    "max_compression_ratio": _nullable("number", minimum=0),
}
_RULES = {"keep_last": _nullable("integer", minimum=0), "days": _nullable("integer", minimum=0)}

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
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 1000,
            }
        }
    ),
    "DeleteRequest": _object(
        {
            "build_ids": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 1000,
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
                "status": {"type": "string", "minLength": 1},
                "action": {"type": "string", "minLength": 1},
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
        }
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
            "What a retention pass would keep (and why) and delete now; deletes nothing.",
            [_SITE],
            {"200": _json(_ref("RetentionPlan"), "The plan."), **_errors(*_STANDARD_ERRORS)},
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
        "1 KiB are gzip-compressed when the client accepts it (tars never are).",
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
