"""Bad input to the artifact API is a 400 with a clear message, never a 500, on a SQLite and
on a PostgreSQL catalog; and ``openapi.json`` states every constraint the server enforces:
each request refused here violates the document, each one at a documented bound passes."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest
from jsonschema import Draft202012Validator

from core.numbers import is_decimal, saturating_decimal
from gateway.api.openapi import OPENAPI
from gateway.settings import Settings
from tests.support.artifact_api import API, ApiClient, create_api_key, operation_for, upload
from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway, in_process_gateway
from tests.support.postgres import catalog_url

HUGE = "9" * 5000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    directory = tmp_path_factory.mktemp(f"api-input-{request.param}")
    with (
        catalog_url(request.param, directory) as url,
        in_process_gateway(
            directory / "data", Settings(log_level="warning", catalog_url=url)
        ) as gateway,
    ):
        gateway.env["PWG_CATALOG_URL"] = url
        yield gateway


@pytest.fixture(scope="module")
def site(server: InProcessGateway) -> str:
    s3 = make_s3_client(server)
    s3.create_bucket(Bucket="input-site")
    for build in ("b1", "b2", "b3"):
        upload(s3, "input-site", build, status="success", env="prod")
    return "input-site"


@pytest.fixture(scope="module")
def api(server: InProcessGateway) -> Iterator[ApiClient]:
    with ApiClient(server, create_api_key(server)) as client:
        yield client


# What the document says of a request


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": OPENAPI["components"]})


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query/path string as the OpenAPI style reads it for ``schema``."""
    if schema.get("type") == "integer":
        return saturating_decimal(value) if is_decimal(value) else value
    return value


def violations(method: str, path: str, query: str = "", body: Any = None) -> list[str]:
    """Every way the request breaks ``openapi.json`` (path, query, JSON body)."""
    template, operation = operation_for(method, path)
    found: list[str] = []
    parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
    names = re.findall(r"\{([^}]+)\}", template)
    pattern = re.escape(template)
    for name in names:
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
    match = re.fullmatch(pattern, path)
    assert match is not None
    values = [("path", name, match.group(name)) for name in names]
    values += [("query", name, value) for name, value in parse_qsl(query, keep_blank_values=True)]
    meta: dict[str, str] = {}
    for where, name, value in values:
        if where == "query" and name.startswith("meta."):
            meta[name[len("meta.") :]] = value
            continue
        spec = parameters.get((where, name))
        if spec is None:
            found.append(f"{where} {name} is not documented")
            continue
        schema = spec["schema"]
        found += [
            f"{name}: {e.message}" for e in _validator(schema).iter_errors(_coerce(value, schema))
        ]
    if meta:
        schema = parameters[("query", "meta")]["schema"]
        found += [f"meta: {e.message}" for e in _validator(schema).iter_errors(meta)]
    if body is not None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        found += [f"body: {e.message}" for e in _validator(schema).iter_errors(body)]
    return found


def _expect_400(response: httpx.Response, code: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return str(error["message"])


# Query parameters and path parameters

QUERY_CASES = [
    ("order=", "InvalidArgument"),
    ("sort=", "InvalidArgument"),
    ("limit=%C2%B2", "InvalidArgument"),
    (f"limit={HUGE}", "InvalidArgument"),
    ("limit=0", "InvalidArgument"),
    ("limit=1001", "InvalidArgument"),
    ("limit=%2B5", "InvalidArgument"),
    ("created_from=1969-12-31T23:59:59Z", "InvalidArgument"),
    ("created_from=0001-01-01T00:00:00%2B01:00", "InvalidArgument"),
    ("created_from=2026-W01-1", "InvalidArgument"),
    ("created_from=20260101", "InvalidArgument"),
    ("created_from=2026-01-01T00:00:00%2B99:00", "InvalidArgument"),
    ("status=%00", "InvalidArgument"),
    ("action=a%0Ab", "InvalidArgument"),
    ("creator=" + "x" * 1025, "InvalidArgument"),
    ("cursor=%21%21", "InvalidCursor"),
    ("cursor=" + "A" * 5000, "InvalidCursor"),
]


#: Refused, and said in the parameter's description only (no schema keyword can say it).
DESCRIBED_ONLY = [
    ("created_to=9999-12-31T23:00:00-05:00", "InvalidArgument"),  # year 10000 in UTC
    ("created_from=1970-01-01T00:30:00%2B01:00", "InvalidArgument"),  # 1969 in UTC
    ("created_from=2026-02-31", "InvalidArgument"),
]


@pytest.mark.parametrize(("query", "code"), QUERY_CASES)
def test_listing_parameters(api: ApiClient, site: str, query: str, code: str) -> None:
    path = f"/sites/{site}/artifacts"
    _expect_400(api.get(f"{path}?{query}"), code)
    assert violations("GET", path, query), f"openapi.json allows {query}"


@pytest.mark.parametrize(("query", "code"), DESCRIBED_ONLY)
def test_listing_dates_beyond_the_range(api: ApiClient, site: str, query: str, code: str) -> None:
    path = f"/sites/{site}/artifacts"
    _expect_400(api.get(f"{path}?{query}"), code)
    name = query.partition("=")[0]
    (documented,) = [p for p in operation_for("GET", path)[1]["parameters"] if p["name"] == name]
    assert (
        "calendar date between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        in (documented["description"])
    )


SEARCH_CASES = [
    ("site=Bad_Site", "InvalidSiteName"),
    ("meta.%00=x", "InvalidArgument"),
    ("meta.a%22b=x", "InvalidArgument"),
    ("meta.env=%00", "InvalidArgument"),
    ("meta.env=" + quote("\ud800".encode("utf-8", "surrogatepass")), "InvalidArgument"),
]


@pytest.mark.parametrize(("query", "code"), SEARCH_CASES)
def test_search_parameters(api: ApiClient, site: str, query: str, code: str) -> None:
    _expect_400(api.get(f"/artifacts/search?{query}"), code)
    if "%ED" not in query:  # not UTF-8: no schema can say so
        assert violations("GET", "/artifacts/search", query), f"openapi.json allows {query}"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/sites/Bad_Site/artifacts", "InvalidSiteName"),
        ("/sites/a/artifacts", "InvalidSiteName"),
        ("/sites/input-site/artifacts/..bad", "InvalidArgument"),
        ("/sites/input-site/artifacts/" + "b" * 129, "InvalidArgument"),
        ("/sites/input-site/artifacts/b%00", "InvalidArgument"),
    ],
)
def test_path_parameters(api: ApiClient, site: str, path: str, code: str) -> None:
    _expect_400(api.get(path), code)
    assert violations("GET", path.replace("%00", "\x00")), f"openapi.json allows {path}"


@pytest.mark.parametrize(
    "query",
    [
        "limit=1000",
        "limit=1",
        "order=asc&sort=size",
        "created_from=1970-01-01&created_to=9999-12-31T23:59:59Z",
        "created_from=2026-01-01T10:00%2B02:00",
        "status=success&creator=" + "x" * 1024,
    ],
)
def test_documented_bounds_are_accepted(api: ApiClient, site: str, query: str) -> None:
    path = f"/sites/{site}/artifacts"
    assert api.get(f"{path}?{query}").status_code == 200
    assert violations("GET", path, query) == []


def test_search_by_metadata_still_works(api: ApiClient, site: str) -> None:
    found = api.get("/artifacts/search?" + urlencode({"meta.ENV": "prod", "site": site}))
    assert found.status_code == 200
    assert len(found.json()["items"]) == 3


# Cursors: opaque; anything but one the server issued for this sort is 400


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    ("sort", "payload"),
    [
        ("size", {"s": "size", "d": True, "v": [10**30, "input-site", "k"]}),
        ("size", {"s": "size", "d": True, "v": [True, "input-site", "k"]}),
        ("size", {"s": "size", "d": 1, "v": [1, "input-site", "k"]}),
        ("key", {"s": "key", "d": True, "v": [5, "input-site"]}),
        ("key", {"s": "key", "d": True, "v": ["k\ud800", "input-site"]}),
        ("key", {"s": "key", "d": True, "v": ["k\x00", "input-site"]}),
        ("key", {"s": "key", "d": True, "v": ["k", "input-site"], "x": 1}),
        ("build_id", {"s": "build_id", "d": True, "v": ["b", ["nested"], "k"]}),
        (
            "created_at",
            {"s": "created_at", "d": True, "v": ["0001-01-01T00:00:00+01:00", "s", "k"]},
        ),
        ("created_at", {"s": "created_at", "d": True, "v": ["2026-01-01T00:00:00", "s", "k"]}),
        ("created_at", {"s": "created_at", "d": True, "v": [17, "s", "k"]}),
        ("created_at", ["not", "an", "object"]),
        ("created_at", "text"),
    ],
)
def test_tampered_cursors(api: ApiClient, site: str, sort: str, payload: Any) -> None:
    query = urlencode({"sort": sort, "cursor": _cursor(payload)})
    _expect_400(api.get(f"/sites/{site}/artifacts?{query}"), "InvalidCursor")


def test_a_deeply_nested_cursor(api: ApiClient, site: str) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 3000).decode()
    _expect_400(api.get(f"/sites/{site}/artifacts", params={"cursor": cursor}), "InvalidCursor")


def test_a_cursor_still_pages(api: ApiClient, site: str) -> None:
    first = api.get(f"/sites/{site}/artifacts", params={"limit": 2, "sort": "size"}).json()
    rest = api.get(
        f"/sites/{site}/artifacts",
        params={"limit": 2, "sort": "size", "cursor": first["next_cursor"]},
    ).json()
    assert len(first["items"]) + len(rest["items"]) == 3


# JSON bodies


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"status": "\\ud800"}', "surrogate"),
        ('{"status": "ok", "action": "\\udfff x"}', "surrogate"),
        ('{"status": "a\\u0000b"}', "U+0000"),
        ('{"status": ' + "[" * 100_000 + "]" * 100_000 + "}", "deeper"),
        ('{"status": ' + "[" * 20 + "]" * 20 + "}", "deeper"),
        ('{"status": NaN}', "NaN"),
    ],
)
def test_json_bodies_are_i_json(api: ApiClient, site: str, body: str, says: str) -> None:
    response = api.patch(
        f"/sites/{site}/artifacts/b1", content=body, headers={"Content-Type": "application/json"}
    )
    assert says in _expect_400(response, "MalformedJSON")


@pytest.mark.parametrize(
    "body",
    [
        '{"overrides": {"max_compression_ratio": NaN}}',
        '{"overrides": {"max_compression_ratio": Infinity}}',
        '{"overrides": {"max_compression_ratio": -Infinity}}',
        '{"overrides": {"max_compression_ratio": 1e400}}',
        '{"overrides": {"quota_bytes": 1' + "0" * 5000 + "}}",
    ],
)
def test_non_finite_numbers(api: ApiClient, site: str, body: str) -> None:
    response = api.put(
        f"/sites/{site}/policy", content=body, headers={"Content-Type": "application/json"}
    )
    _expect_400(response, "MalformedJSON")
    assert api.get(f"/sites/{site}/policy").json()["overrides"] == {}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("retention", {"days": 1_000_000}),
        ("retention", {"days": 36_501}),
        ("retention", {"keep_last": 2**63}),
        ("policy", {"overrides": {"retention_days": 10**6}}),
        ("policy", {"overrides": {"quota_bytes": 2**63}}),
        ("policy", {"overrides": {"max_compression_ratio": 1e7}}),
        ("policy", {"overrides": {"max_members": -1}}),
    ],
)
def test_out_of_range_numbers(api: ApiClient, site: str, path: str, body: Any) -> None:
    _expect_400(api.put(f"/sites/{site}/{path}", json=body), "InvalidPolicy")
    assert violations("PUT", f"/sites/{site}/{path}", body=body)
    # The site's retention still works (a stored 10^6 days used to break it).
    assert api.post(f"/sites/{site}/retention:dry-run").status_code == 200


def test_numbers_at_their_bounds_are_stored(api: ApiClient, site: str) -> None:
    body = {"days": 36_500, "keep_last": 2**63 - 1}
    assert violations("PUT", f"/sites/{site}/retention", body=body) == []
    stored = api.put(f"/sites/{site}/retention", json=body)
    assert stored.status_code == 200
    assert stored.json()["effective"] == {"keep_last": 2**63 - 1, "days": 36_500}
    assert api.post(f"/sites/{site}/retention:dry-run").status_code == 200
    assert api.put(f"/sites/{site}/retention", json={}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("PATCH", "/artifacts/b1", {"status": "a\nb"}, "InvalidArgument"),
        ("PATCH", "/artifacts/b1", {"action": "x" * 1025}, "InvalidArgument"),
        ("POST", "/artifacts:delete", {"build_ids": ["..bad"]}, "InvalidArgument"),
        ("POST", "/artifacts:download", {"build_ids": ["b1", "a/b"]}, "InvalidArgument"),
    ],
)
def test_body_fields(
    api: ApiClient, site: str, method: str, path: str, body: Any, code: str
) -> None:
    full = f"/sites/{site}{path}"
    _expect_400(api.request(method, full, json=body), code)
    assert violations(method, full, body=body), f"openapi.json allows {body}"


# 405


def test_method_not_allowed_names_every_method_of_the_path(
    server: InProcessGateway, api: ApiClient, site: str
) -> None:
    headers = {"Authorization": api.headers["Authorization"]}
    for path, allowed in [
        (f"/sites/{site}/artifacts/b1", {"GET", "HEAD", "PATCH"}),
        (f"/sites/{site}/retention", {"GET", "HEAD", "PUT"}),
        (f"/sites/{site}/policy", {"GET", "HEAD", "PUT"}),
        (f"/sites/{site}/artifacts:delete", {"POST"}),
    ]:
        response = httpx.request("DELETE", f"{server.endpoint}{API}{path}", headers=headers)
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "MethodNotAllowed"
        assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
        documented = {m.upper() for m in OPENAPI["paths"][_template(path, site)]}
        assert documented | ({"HEAD"} if "GET" in documented else set()) == allowed


def _template(path: str, site: str) -> str:
    return path.replace(site, "{site}").replace("/b1", "/{build_id}")
