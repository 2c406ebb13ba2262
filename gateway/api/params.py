"""Typed request input: path parameters, listing queries and JSON bodies.

Every parser raises :class:`ApiError` (400) naming the offending parameter, so handlers
see only valid values. Unknown query parameters are rejected rather than ignored: a typo
(``?staus=failed``) must not silently list everything.

This module is the one place the API's input rules live; ``openapi.py`` states each of
them from the constants below (patterns, bounds), so the document and the server cannot
disagree. Text is UTF-8 with no control characters (a NUL reaches PostgreSQL as an error);
JSON bodies are I-JSON (RFC 7493): no lone surrogates, no NaN or Infinity, at most
:data:`MAX_JSON_DEPTH` levels deep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast, get_args
from urllib.parse import unquote_to_bytes

from starlette.datastructures import QueryParams
from starlette.requests import Request

from core.numbers import NumberError, decimal
from gateway.api.errors import ApiError
from policy.catalog_records import MAX_CURSOR_LENGTH
from policy.model import SITE_ID, ArtifactFilter, SortField, is_site_id
from policy.tags import MAX_KEY_LENGTH, MAX_VALUE_LENGTH, allowed_text

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_BUILD_IDS = 1000
MAX_JSON_BYTES = 1024 * 1024
#: The deepest a JSON body may nest (the API's own documents nest 2 levels).
MAX_JSON_DEPTH: Final = 16
#: The longest filter value, status or action (S3 user metadata holds at most 2 KB).
MAX_TEXT_LENGTH: Final = 1024
META_PREFIX = "meta."
TAG_PREFIX = "tag."
#: Patterns the document states (JSON Schema / ECMA-262 syntax, also valid for ``re``).
SITE_PATTERN: Final = SITE_ID.pattern
BUILD_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
#: Text without control characters (U+0000-U+001F, U+007F).
TEXT_PATTERN: Final = r"^[^\u0000-\u001f\u007f]*$"
#: A user-metadata field name is an HTTP header token (x-amz-meta-<token>).
META_FIELD_PATTERN: Final = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
#: An ISO 8601 date (midnight) or date-time from year 1970, with ``Z``, an offset or none
#: (UTC). It must also be a real calendar date, and lie within EARLIEST..LATEST once in UTC.
DATE_PATTERN: Final = (
    r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
#: created_from/created_to, in UTC: no artifact is older, and later is not a date.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
CURSOR_PATTERN: Final = r"^[A-Za-z0-9_-]*={0,2}$"
_SORTS: tuple[str, ...] = get_args(SortField)
_FILTERS = ("created_from", "created_to", "status", "action", "creator", "pinned")
_PAGING = ("sort", "order", "limit", "cursor")
LIST_PARAMS = frozenset((*_FILTERS, *_PAGING))
SEARCH_PARAMS = frozenset((*LIST_PARAMS, "site"))
_BUILD_ID = re.compile(BUILD_ID_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)
_META_FIELD = re.compile(META_FIELD_PATTERN)
_DATE = re.compile(DATE_PATTERN)
_CURSOR = re.compile(CURSOR_PATTERN)
#: What I-JSON strings may not hold here: lone surrogates, and NUL (no database stores it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Paging:
    """Sort field, direction, page size and the cursor of the page to read."""

    sort: SortField = "created_at"
    descending: bool = True
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def is_build_id(value: str) -> bool:
    """``builds/<value>.<ext>`` is an artifact key."""
    return _BUILD_ID.fullmatch(value) is not None


def site_of(request: Request) -> str:
    """The ``{site}`` path parameter, checked to be a site id."""
    site = str(request.path_params["site"])
    if not is_site_id(site):
        raise ApiError("InvalidSiteName", f"{site!r} is not a site id")
    return site


def query_of(request: Request) -> QueryParams:
    """The query parameters, each name and value UTF-8 once percent-decoded (Starlette
    would decode others lossily to U+FFFD): ``InvalidArgument`` otherwise."""
    pairs: list[tuple[str, str]] = []
    for pair in request.scope["query_string"].split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            shown = raw_name.decode("latin-1")
            raise ApiError(
                "InvalidArgument", f"query parameter {shown!r} is not UTF-8 once decoded"
            ) from None
        pairs.append((name, value))
    return QueryParams(pairs)


def listing_query(query: QueryParams, site: str | None) -> tuple[ArtifactFilter, Paging]:
    """Filters and paging of a listing (``site`` given) or a search (``site`` None: it may
    come from the query, ``meta.<field>=value`` parameters match user metadata and
    ``tag.<key>=value`` parameters S3 tags)."""
    allowed = LIST_PARAMS if site is not None else SEARCH_PARAMS
    metadata: dict[str, str] = {}
    tags: dict[str, str] = {}
    for name in query:
        if site is None and name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX):
            key = name[len(TAG_PREFIX) :]
            tags[key] = _tag_value(query, name, key)
        elif site is None and name.startswith(META_PREFIX) and len(name) > len(META_PREFIX):
            field = name[len(META_PREFIX) :]
            if not _META_FIELD.fullmatch(field):
                raise ApiError(
                    "InvalidArgument",
                    f"{name!r}: a metadata field name is an HTTP header token "
                    "(letters, digits and !#$%&'*+.^_`|~-)",
                )
            metadata[field.lower()] = _text(query, name)
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
        status=_optional_text(query, "status"),
        action=_optional_text(query, "action"),
        creator=_optional_text(query, "creator"),
        pinned=None if pinned is None else pinned == "true",
        metadata=metadata,
        tags=tuple(sorted(tags.items())),
    )
    return filters, _paging(query)


def _tag_value(query: QueryParams, name: str, key: str) -> str:
    """The value of a ``tag.<key>`` filter; ``InvalidArgument`` unless key and value are
    ones an S3 tag can hold (policy.tags), so a filter no tag could match is an error."""
    value = _single(query, name)
    if len(key) > MAX_KEY_LENGTH or not allowed_text(key):
        raise ApiError(
            "InvalidArgument",
            f"{name!r}: a tag key is 1 to {MAX_KEY_LENGTH} letters, digits, spaces and "
            "_ . : / = + - @",
        )
    if len(value) > MAX_VALUE_LENGTH or not allowed_text(value):
        raise ApiError(
            "InvalidArgument",
            f"{name}: a tag value is at most {MAX_VALUE_LENGTH} letters, digits, spaces and "
            "_ . : / = + - @",
        )
    return value


def version_paging(query: QueryParams) -> tuple[int, str | None]:
    """The page size and cursor of a version listing (its only parameters)."""
    for name in query:
        if name not in ("limit", "cursor"):
            raise ApiError("InvalidArgument", f"unknown query parameter {name!r}")
    paging = _paging(query)
    return paging.limit, paging.cursor


def _paging(query: QueryParams) -> Paging:
    sort = _optional(query, "sort")
    sort = "created_at" if sort is None else sort
    if sort not in _SORTS:
        raise ApiError("InvalidArgument", f"sort must be one of {', '.join(_SORTS)}")
    order = _optional(query, "order")
    order = "desc" if order is None else order
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
    cursor = _optional(query, "cursor")
    if cursor is not None and (len(cursor) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(cursor)):
        raise ApiError("InvalidCursor", "malformed cursor")
    return Paging(cast(SortField, sort), order == "desc", limit, cursor)


def _single(query: QueryParams, name: str) -> str:
    values = query.getlist(name)
    if len(values) != 1:
        raise ApiError("InvalidArgument", f"query parameter {name!r} is given more than once")
    return values[0]


def _optional(query: QueryParams, name: str) -> str | None:
    return _single(query, name) if name in query else None


def _text(query: QueryParams, name: str) -> str:
    """A filter value: at most :data:`MAX_TEXT_LENGTH` characters, no control characters."""
    value = _single(query, name)
    check_text(name, value)
    return value


def _optional_text(query: QueryParams, name: str) -> str | None:
    return _text(query, name) if name in query else None


def check_text(name: str, value: str) -> None:
    """``InvalidArgument`` unless ``value`` is text the API stores and matches: no control
    characters, no lone surrogates, at most :data:`MAX_TEXT_LENGTH` characters."""
    if not _TEXT.fullmatch(value) or _UNSTORABLE.search(value):
        raise ApiError("InvalidArgument", f"{name} must not contain control characters")
    if len(value) > MAX_TEXT_LENGTH:
        raise ApiError("InvalidArgument", f"{name} is longer than {MAX_TEXT_LENGTH} characters")


def _datetime(query: QueryParams, name: str) -> datetime | None:
    """An ISO 8601 date or date-time (:data:`DATE_PATTERN`); without an offset it is UTC.
    It must fall within :data:`EARLIEST` and :data:`LATEST` once in UTC."""
    raw = _optional(query, name)
    if raw is None:
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            "InvalidArgument",
            f"{name} is not an ISO 8601 date or date-time (YYYY-MM-DD[THH:MM[:SS[.ffffff]]]"
            "[Z|+HH:MM])",
        ) from None
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # an offset took it past year 1 or 9999
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ApiError(
            "InvalidArgument",
            f"{name} must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        )
    return utc


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (at most 1 MiB, I-JSON: see the module)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError("InvalidArgument", "the JSON body is larger than 1 MiB")
    document = parse_json(bytes(body))
    if not isinstance(document, dict):
        raise ApiError("MalformedJSON", "the body must be a JSON object")
    return document


def parse_json(body: bytes) -> Any:
    """``body`` as I-JSON; ``MalformedJSON`` for anything else, naming what is wrong."""
    try:
        document = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            "MalformedJSON", "the body is not valid JSON (NaN and Infinity are not JSON)"
        ) from None
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:  # iterative: a deep document must not exhaust the stack here either
        value, depth = pending.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise ApiError(
                    "MalformedJSON", "JSON strings must not hold lone surrogates or U+0000"
                )
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise _too_deep()
            items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
            for key, item in items:
                if key is not None:
                    pending.append((key, depth))
                pending.append((item, depth + 1))
    return document


def _too_deep() -> ApiError:
    return ApiError("MalformedJSON", f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is not a finite number")
    return value


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
    """A non-empty string field (see :func:`check_text`), or None when absent."""
    value = document.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ApiError("InvalidArgument", f"{name} must be a non-empty string")
    if value is not None:
        check_text(name, value)
    return value
