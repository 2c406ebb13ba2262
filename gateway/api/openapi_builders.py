"""Builders of OpenAPI 3.1 fragments for the artifact API's document (``gateway.api.openapi``):
references, closed objects, parameters, bodies, operations and their error replies."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def closed_object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A closed object; every property required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(*statuses: str) -> dict[str, Any]:
    return {
        status: {"$ref": f"#/components/responses/{ERROR_NAMES[status]}"} for status in statuses
    }


ERROR_NAMES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "500": "InternalError",
    "503": "ServiceUnavailable",
    "507": "InsufficientStorage",
}
#: What any operation may answer; a catalog or storage outage is a 503.
STANDARD_ERRORS = ("400", "401", "403", "500", "503")
#: What an operation that changes state may answer: a full store is a 507.
WRITE_ERRORS = (*STANDARD_ERRORS, "507")
NOT_MODIFIED = {
    "description": "Not modified: the If-None-Match header matched the current ETag.",
    "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
}


def parameter(name: str, where: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def operation(
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


def listing_operation(
    operation_id: str, summary: str, parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    return operation(
        operation_id,
        summary,
        parameters,
        {
            "200": {
                **json_response(ref("ArtifactPage"), "One page of artifacts."),
                "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
            },
            "304": NOT_MODIFIED,
            **error_responses(*STANDARD_ERRORS),
        },
    )
