"""Typed request input: path parameters, listing queries and JSON bodies.

Every parser raises :class:`ApiError` (400) naming the offending parameter, so handlers
see only valid values. Unknown query parameters are rejected rather than ignored: a typo
(``?staus=failed``) must not silently list everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast, get_args

from starlette.datastructures import QueryParams
from starlette.requests import Request

from gateway.api.errors import ApiError
from gateway.numbers import NumberError, decimal
from policy.model import ArtifactFilter, SortField, is_site_id

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_BUILD_IDS = 1000
MAX_JSON_BYTES = 1024 * 1024
META_PREFIX = "meta."
_SORTS: tuple[str, ...] = get_args(SortField)
_FILTERS = ("created_from", "created_to", "status", "action", "creator", "pinned")
_PAGING = ("sort", "order", "limit", "cursor")
LIST_PARAMS = frozenset((*_FILTERS, *_PAGING))
SEARCH_PARAMS = frozenset((*LIST_PARAMS, "site"))


@dataclass(frozen=True)
class Paging:
    """Sort field, direction, page size and the cursor of the page to read."""

    sort: SortField = "created_at"
    descending: bool = True
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def site_of(request: Request) -> str:
    """The ``{site}`` path parameter, checked to be a site id."""
    site = str(request.path_params["site"])
    if not is_site_id(site):
        raise ApiError("InvalidSiteName", f"{site!r} is not a site id")
    return site


def listing_query(query: QueryParams, site: str | None) -> tuple[ArtifactFilter, Paging]:
    """Filters and paging of a listing (``site`` given) or a search (``site`` None: it may
    come from the query, and ``meta.<field>=value`` parameters match user metadata)."""
    allowed = LIST_PARAMS if site is not None else SEARCH_PARAMS
    metadata: dict[str, str] = {}
    for name in query:
        if site is None and name.startswith(META_PREFIX) and len(name) > len(META_PREFIX):
            metadata[name[len(META_PREFIX) :].lower()] = _single(query, name)
        elif name not in allowed:
            raise ApiError("InvalidArgument", f"unknown query parameter {name!r}")
    if site is None and "site" in query:
        site = _single(query, "site")
        if not is_site_id(site):
            raise ApiError("InvalidSiteName", f"{site!r} is not a site id")
    created_from = _datetime(query, "created_from")
    created_to = _datetime(query, "created_to")
    if created_from and created_to and created_from >= created_to:
        raise ApiError("InvalidArgument", "created_from must be before created_to")
    pinned = _optional(query, "pinned")
    if pinned is not None and pinned not in ("true", "false"):
        raise ApiError("InvalidArgument", "pinned must be true or false")
    filters = ArtifactFilter(
        site=site,
        created_from=created_from,
        created_to=created_to,
        status=_optional(query, "status"),
        action=_optional(query, "action"),
        creator=_optional(query, "creator"),
        pinned=None if pinned is None else pinned == "true",
        metadata=metadata,
    )
    return filters, _paging(query)


def _paging(query: QueryParams) -> Paging:
    sort = _optional(query, "sort") or "created_at"
    if sort not in _SORTS:
        raise ApiError("InvalidArgument", f"sort must be one of {', '.join(_SORTS)}")
    order = _optional(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise ApiError("InvalidArgument", "order must be asc or desc")
    raw_limit = _optional(query, "limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = decimal(raw_limit, low=1, high=MAX_LIMIT)
        except NumberError:
            raise ApiError(
                "InvalidArgument", f"limit must be an integer in 1..{MAX_LIMIT}"
            ) from None
    return Paging(cast(SortField, sort), order == "desc", limit, _optional(query, "cursor"))


def _single(query: QueryParams, name: str) -> str:
    values = query.getlist(name)
    if len(values) != 1:
        raise ApiError("InvalidArgument", f"query parameter {name!r} is given more than once")
    return values[0]


def _optional(query: QueryParams, name: str) -> str | None:
    return _single(query, name) if name in query else None


def _datetime(query: QueryParams, name: str) -> datetime | None:
    """An ISO 8601 date or date-time; without an offset it is UTC."""
    raw = _optional(query, name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError("InvalidArgument", f"{name} is not an ISO 8601 date-time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (at most 1 MiB)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError("InvalidArgument", "the JSON body is larger than 1 MiB")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("MalformedJSON", "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise ApiError("MalformedJSON", "the body must be a JSON object")
    return document


def only_fields(document: dict[str, Any], allowed: frozenset[str]) -> None:
    """Reject fields outside ``allowed``."""
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise ApiError("InvalidArgument", f"unknown fields: {', '.join(unknown)}")


def build_ids(document: dict[str, Any]) -> list[str]:
    """``build_ids``: a non-empty list of at most 1000 strings; duplicates dropped, order kept."""
    value = document.get("build_ids")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise ApiError("InvalidArgument", "build_ids must be a non-empty list of build ids")
    if len(value) > MAX_BUILD_IDS:
        raise ApiError("InvalidArgument", f"at most {MAX_BUILD_IDS} build ids per request")
    return list(dict.fromkeys(cast(list[str], value)))


def optional_string(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ApiError("InvalidArgument", f"{name} must be a non-empty string")
    return value
