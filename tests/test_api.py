"""The artifact API against a real gateway process, every exchange checked against
``openapi.json`` (tests.support.artifact_api.ApiClient), plus the route-table/document contract."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Mount, Route

from gateway.api import API_PREFIX, ApiServices, create_api_app
from gateway.api.openapi import OPENAPI
from gateway.settings import Settings
from policy.access_control import AccessControl
from policy.access_store import AccessStore
from policy.api_keys import ApiKeyStore
from policy.stack import build_stack
from tests.support.artifact_api import ApiClient, create_api_key, tar_members, upload
from tests.support.gateway import InProcessGateway
from translators.config import parse_backend_url
from translators.registry import create_backend


@pytest.fixture(scope="module")
def api_key(gateway: InProcessGateway) -> str:
    return create_api_key(gateway)


@pytest.fixture
def api(gateway: InProcessGateway, api_key: str) -> Iterator[ApiClient]:
    with ApiClient(gateway, api_key) as client:
        yield client


@pytest.fixture
def artifacts(s3: Any, bucket: str) -> dict[str, bytes]:
    """Six builds in ``bucket`` with varied status/action/sizes; b1 is oldest. Each sends an
    ``x-amz-meta-creator``, which the gateway replaces with the uploading principal."""
    specs = [
        ("b1", "success", "deploy", "alice", 10),
        ("b2", "failed", "deploy", "bob", 900),
        ("b3", "success", "preview", "alice", 300),
        ("b4", "success", "deploy", "carol", 50),
        ("b5", "running", "preview", "bob", 2000),
        ("b6", "success", "deploy", "alice", 600),
    ]
    return {
        build: upload(s3, bucket, build, padding=pad, status=st, action=ac, creator=who)
        for build, st, ac, who, pad in specs
    }


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["build_id"] for item in page["items"]]


# The contract between the route table and the document


def _route_table(tmp_path: Path) -> list[Route]:
    settings = Settings(data_dir=tmp_path)
    translator = create_backend(parse_backend_url(settings.backend_url), {})
    stack = build_stack(translator, settings.catalog, settings.policy, settings.max_object_size)
    app = create_api_app(
        ApiServices(
            stack.catalog,
            stack.backend,
            stack.policies,
            stack.retention,
            settings,
            AccessControl(AccessStore(stack.catalog), None),
            ApiKeyStore(stack.catalog),
        )
    )
    (mount,) = app.routes
    assert isinstance(mount, Mount)
    assert mount.path == API_PREFIX
    routes = [r for r in mount.routes if isinstance(r, Route)]
    assert len(routes) == len(mount.routes)
    return routes


def test_every_route_is_documented_and_every_operation_routed(tmp_path: Path) -> None:
    routed = {
        (route.path, method.lower(), route.name)
        for route in _route_table(tmp_path)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (path, method, operation["operationId"])
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
    }
    assert routed == documented


def test_the_document_is_openapi_31_with_valid_schemas_and_refs() -> None:
    assert OPENAPI["openapi"].startswith("3.1")
    assert OPENAPI["servers"] == [{"url": API_PREFIX}]
    assert OPENAPI["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for schema in OPENAPI["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(OPENAPI):
        target: Any = OPENAPI
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    for template, item in OPENAPI["paths"].items():
        in_template = set(re.findall(r"\{([^}]+)\}", template))
        for operation in item.values():
            params = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert params == in_template, (template, operation["operationId"])


def test_openapi_json_is_served_without_a_key(gateway: InProcessGateway) -> None:
    with ApiClient(gateway, None) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == OPENAPI


# Authentication


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer pwg_nope_nope", "Basic cm9vdDpyb290", "pwg_0_0"],
)
def test_requests_without_a_valid_key_are_401(
    gateway: InProcessGateway, bucket: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with ApiClient(gateway, None, headers=headers) as client:
        response = client.get(f"/sites/{bucket}/artifacts")
        delete = client.post(f"/sites/{bucket}/artifacts:delete", json={"build_ids": ["x"]})
    for answer in (response, delete):
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "Unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_key_of_another_principal_is_forbidden(gateway: InProcessGateway, bucket: str) -> None:
    with ApiClient(gateway, create_api_key(gateway, principal="ci-bot")) as client:
        response = client.get(f"/sites/{bucket}/artifacts")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "AccessDenied"


def test_unknown_paths_and_methods_answer_json_errors(api: ApiClient, bucket: str) -> None:
    # Plain httpx: these exchanges are deliberately outside the document.
    root, headers = str(api.base_url).rstrip("/"), dict(api.headers)
    missing = httpx.get(f"{root}/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    wrong = httpx.delete(f"{root}/sites/{bucket}/usage", headers=headers)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "MethodNotAllowed"


def test_s3_and_probes_still_work_beside_the_api(
    gateway: InProcessGateway, s3: Any, bucket: str, artifacts: dict[str, bytes]
) -> None:
    assert httpx.get(f"{gateway.endpoint}/healthz").text == "ok\n"
    assert httpx.get(f"{gateway.endpoint}/_pagewright/readyz").json()["ready"] is True
    body = s3.get_object(Bucket=bucket, Key="builds/b1.tar.gz")["Body"].read()
    assert body == artifacts["b1"]


# Listing


def test_list_returns_artifacts_newest_first_with_metadata(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    page = api.get(f"/sites/{bucket}/artifacts").json()
    assert _ids(page) == ["b6", "b5", "b4", "b3", "b2", "b1"]
    assert page["next_cursor"] is None
    first = page["items"][-1]
    assert first["key"] == "builds/b1.tar.gz"
    assert first["size"] == len(artifacts["b1"])
    assert (first["status"], first["action"], first["creator"]) == ("success", "deploy", "root")
    assert first["metadata"]["creator"] == "root"
    assert first["compression"] == "gzip"
    assert first["pinned"] is False


@pytest.mark.parametrize("sort", ["created_at", "size", "build_id", "key"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_paging_visits_every_artifact_once_in_order(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes], sort: str, order: str
) -> None:
    seen: list[dict[str, Any]] = []
    params: dict[str, str] = {"sort": sort, "order": order, "limit": "2"}
    for _ in range(10):
        page = api.get(f"/sites/{bucket}/artifacts", params=params).json()
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    ids = [item["build_id"] for item in seen]
    assert sorted(ids) == sorted(artifacts)
    assert len(set(ids)) == len(ids)
    keys = [(item[sort], item["key"]) for item in seen]
    assert keys == sorted(keys, reverse=order == "desc")


def test_filters(api: ApiClient, bucket: str, artifacts: dict[str, bytes]) -> None:
    def ids(**params: str) -> set[str]:
        return set(_ids(api.get(f"/sites/{bucket}/artifacts", params=params).json()))

    assert ids(status="success") == {"b1", "b3", "b4", "b6"}
    assert ids(action="preview") == {"b3", "b5"}
    # The creator is the uploading principal; the x-amz-meta-creator sent was not taken.
    assert ids(creator="bob") == set()
    assert ids(creator="root") == set(artifacts)
    assert ids(status="success", action="deploy", creator="root") == {"b1", "b4", "b6"}
    assert ids(pinned="true") == set()
    assert ids(pinned="false") == set(artifacts)
    items = api.get(f"/sites/{bucket}/artifacts", params={"order": "asc"}).json()["items"]
    third = items[2]["created_at"]
    assert ids(created_from=third) == {i["build_id"] for i in items[2:]}
    assert ids(created_to=third) == {i["build_id"] for i in items[:2]}
    assert ids(created_from="2000-01-01", created_to="2000-01-02") == set()


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "InvalidArgument"),
        ({"limit": "1001"}, "InvalidArgument"),
        ({"sort": "colour"}, "InvalidArgument"),
        ({"order": "up"}, "InvalidArgument"),
        ({"pinned": "yes"}, "InvalidArgument"),
        ({"created_from": "yesterday"}, "InvalidArgument"),
        ({"staus": "failed"}, "InvalidArgument"),
        ({"cursor": "not-a-cursor"}, "InvalidCursor"),
    ],
)
def test_invalid_listing_parameters_are_400(
    api: ApiClient, bucket: str, params: dict[str, str], code: str
) -> None:
    response = api.get(f"/sites/{bucket}/artifacts", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_a_cursor_of_another_sort_is_rejected(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    cursor = api.get(f"/sites/{bucket}/artifacts", params={"limit": "1"}).json()["next_cursor"]
    response = api.get(f"/sites/{bucket}/artifacts", params={"sort": "size", "cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidCursor"


def test_an_invalid_site_name_is_400(api: ApiClient) -> None:
    response = api.get("/sites/Not_A_Site/artifacts")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidSiteName"


def test_if_none_match_answers_304_until_the_listing_changes(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    first = api.get(f"/sites/{bucket}/artifacts")
    etag = first.headers["etag"]
    again = api.get(f"/sites/{bucket}/artifacts", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    weak = api.get(f"/sites/{bucket}/artifacts", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    api.post(f"/sites/{bucket}/artifacts/b3/pin")
    changed = api.get(f"/sites/{bucket}/artifacts", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    one = api.get(f"/sites/{bucket}/artifacts/b3")
    assert (
        api.get(
            f"/sites/{bucket}/artifacts/b3", headers={"If-None-Match": one.headers["etag"]}
        ).status_code
        == 304
    )


def test_large_listings_are_gzipped(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    response = api.get(f"/sites/{bucket}/artifacts", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["items"]) == len(artifacts)
    plain = api.get(f"/sites/{bucket}/artifacts", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def test_search_across_sites_by_metadata(
    api: ApiClient, s3: Any, bucket_name: Callable[[], str]
) -> None:
    team = bucket_name()  # a unique value, so other tests' artifacts never match
    one, two = bucket_name(), bucket_name()
    for site in (one, two):
        s3.create_bucket(Bucket=site)
        upload(s3, site, "x1", team=team, env="prod", status="success")
        upload(s3, site, "x2", team=team, env="staging")
        upload(s3, site, "x3", team="other")
    found = api.get("/artifacts/search", params={"meta.team": team}).json()
    assert {(i["site"], i["build_id"]) for i in found["items"]} == {
        (site, build) for site in (one, two) for build in ("x1", "x2")
    }
    both = api.get("/artifacts/search", params={"meta.team": team, "meta.env": "prod"}).json()
    assert {(i["site"], i["build_id"]) for i in both["items"]} == {(one, "x1"), (two, "x1")}
    scoped = api.get(
        "/artifacts/search", params={"meta.team": team, "site": two, "status": "success"}
    ).json()
    assert [(i["site"], i["build_id"]) for i in scoped["items"]] == [(two, "x1")]
    assert scoped["items"][0]["metadata"]["env"] == "prod"
    paged = api.get("/artifacts/search", params={"meta.team": team, "limit": "3"}).json()
    assert len(paged["items"]) == 3
    assert paged["next_cursor"] is not None


# One artifact


def test_show_set_status_and_action_pin_and_unpin(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    shown = api.get(f"/sites/{bucket}/artifacts/b2").json()
    assert shown["build_id"] == "b2"
    assert shown["size"] == len(artifacts["b2"])
    assert shown["status"] == "failed"
    patched = api.patch(f"/sites/{bucket}/artifacts/b2", json={"status": "success"}).json()
    assert (patched["status"], patched["action"]) == ("success", "deploy")
    patched = api.patch(f"/sites/{bucket}/artifacts/b2", json={"action": "promote"}).json()
    assert (patched["status"], patched["action"]) == ("success", "promote")
    assert api.post(f"/sites/{bucket}/artifacts/b2/pin").json()["pinned"] is True
    listed = api.get(f"/sites/{bucket}/artifacts", params={"pinned": "true"}).json()
    assert _ids(listed) == ["b2"]
    assert api.post(f"/sites/{bucket}/artifacts/b2/unpin").json()["pinned"] is False
    assert api.get(f"/sites/{bucket}/artifacts/b2").json()["pinned"] is False


@pytest.mark.parametrize(
    ("method", "suffix", "body", "status", "code"),
    [
        ("GET", "/nope", None, 404, "NoSuchArtifact"),
        ("POST", "/nope/pin", None, 404, "NoSuchArtifact"),
        ("POST", "/nope/unpin", None, 404, "NoSuchArtifact"),
        ("PATCH", "/nope", {"status": "ok"}, 404, "NoSuchArtifact"),
        ("PATCH", "/b1", {}, 400, "InvalidArgument"),
        ("PATCH", "/b1", {"status": 3}, 400, "InvalidArgument"),
        ("PATCH", "/b1", {"pinned": True}, 400, "InvalidArgument"),
        ("GET", "/..bad", None, 400, "InvalidArgument"),
    ],
)
def test_artifact_errors(
    api: ApiClient,
    bucket: str,
    artifacts: dict[str, bytes],
    method: str,
    suffix: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    response = api.request(method, f"/sites/{bucket}/artifacts{suffix}", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_malformed_json_is_400(api: ApiClient, bucket: str) -> None:
    response = api.patch(
        f"/sites/{bucket}/artifacts/b1",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MalformedJSON"


# Bulk operations


def test_bulk_delete_goes_through_the_backend(
    api: ApiClient, s3: Any, bucket: str, artifacts: dict[str, bytes]
) -> None:
    before = api.get(f"/sites/{bucket}/usage").json()["usage"]
    api.post(f"/sites/{bucket}/artifacts/b2/pin")
    result = api.post(
        f"/sites/{bucket}/artifacts:delete", json={"build_ids": ["b1", "b2", "b3", "zz"]}
    ).json()
    assert result == {"deleted": ["b1", "b3"], "not_found": ["zz"], "pinned": ["b2"], "failed": []}
    assert set(_ids(api.get(f"/sites/{bucket}/artifacts").json())) == {"b2", "b4", "b5", "b6"}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert "builds/b1.tar.gz" not in keys
    assert "builds/b3.tar.gz" not in keys
    after = api.get(f"/sites/{bucket}/usage").json()["usage"]
    assert after["artifacts"] == before["artifacts"] - 2
    assert after["bytes"] == before["bytes"] - len(artifacts["b1"]) - len(artifacts["b3"])
    forced = api.post(
        f"/sites/{bucket}/artifacts:delete", json={"build_ids": ["b2"], "force": True}
    ).json()
    assert forced["deleted"] == ["b2"]


@pytest.mark.parametrize(
    "body",
    [{}, {"build_ids": []}, {"build_ids": "b1"}, {"build_ids": [1]}, {"build_ids": ["../x"]}],
)
def test_bulk_requests_are_validated(api: ApiClient, bucket: str, body: dict[str, Any]) -> None:
    for action in ("delete", "download"):
        response = api.post(f"/sites/{bucket}/artifacts:{action}", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "InvalidArgument"


def test_bulk_download_streams_exactly_the_selected_artifacts(
    api: ApiClient, s3: Any, bucket: str, artifacts: dict[str, bytes]
) -> None:
    long_id = "L" * 120  # past the 100-byte ustar name field: a PAX header carries it
    artifacts[long_id] = upload(s3, bucket, long_id, padding=3000)
    artifacts["z7"] = upload(s3, bucket, "z7", ext="tar", padding=5)
    wanted = ["b5", long_id, "b1", "z7"]
    with api.stream(
        "POST", f"/sites/{bucket}/artifacts:download", json={"build_ids": wanted}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-tar"
        assert "content-encoding" not in response.headers
        data = response.read()
    assert int(response.headers["content-length"]) == len(data)
    members = tar_members(data)
    keys = [f"builds/{b}.tar.gz" for b in wanted[:3]] + ["builds/z7.tar"]
    assert list(members) == keys
    for build, key in zip(wanted, keys, strict=True):
        assert members[key] == artifacts[build]


def test_bulk_download_of_a_missing_build_is_404(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    response = api.post(f"/sites/{bucket}/artifacts:download", json={"build_ids": ["b1", "no"]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NoSuchArtifact"
    assert "no" in response.json()["error"]["message"]


# Sites: usage, retention, policy


def test_usage_and_quota(api: ApiClient, bucket: str, artifacts: dict[str, bytes]) -> None:
    total = sum(len(d) for d in artifacts.values())
    usage = api.get(f"/sites/{bucket}/usage").json()
    assert usage["usage"]["bytes"] == total
    assert usage["usage"]["artifacts"] == usage["usage"]["objects"] == len(artifacts)
    assert usage["quota"] == {"bytes": None, "artifacts": None, "max_object_size": None}
    assert usage["remaining"] == {"bytes": None, "artifacts": None}
    overrides = {"quota_bytes": total + 1000, "quota_artifacts": 10}
    api.put(f"/sites/{bucket}/policy", json={"overrides": overrides})
    usage = api.get(f"/sites/{bucket}/usage").json()
    assert usage["quota"]["bytes"] == total + 1000
    assert usage["remaining"] == {"bytes": 1000, "artifacts": 10 - len(artifacts)}


def test_retention_get_set_and_dry_run(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    initial = api.get(f"/sites/{bucket}/retention").json()
    assert initial["effective"] == {"keep_last": None, "days": None}
    assert initial["overrides"] == {}
    api.post(f"/sites/{bucket}/artifacts/b1/pin")
    api.put(f"/sites/{bucket}/policy", json={"overrides": {"quota_artifacts": 50}})
    updated = api.put(f"/sites/{bucket}/retention", json={"keep_last": 2}).json()
    assert updated["effective"] == {"keep_last": 2, "days": None}
    assert updated["overrides"] == {"keep_last": 2}
    plan = api.post(f"/sites/{bucket}/retention:dry-run").json()
    kept = {k["artifact"]["build_id"]: k["reasons"] for k in plan["keep"]}
    # b6 and b5 are the newest (b6 also the newest successful); b1 is pinned.
    assert set(kept) == {"b6", "b5", "b1"}
    assert kept["b1"] == ["pinned"]
    assert "newest successful artifact" in kept["b6"]
    assert {a["build_id"] for a in plan["delete"]} == {"b2", "b3", "b4"}
    # A dry run deletes nothing.
    assert len(api.get(f"/sites/{bucket}/artifacts").json()["items"]) == len(artifacts)
    # Other overrides survive retention updates; an absent field falls back to the default.
    policy = api.get(f"/sites/{bucket}/policy").json()
    assert policy["overrides"] == {"quota_artifacts": 50, "retention_keep_last": 2}
    cleared = api.put(f"/sites/{bucket}/retention", json={"days": None}).json()
    assert cleared["overrides"] == {"days": None}
    assert cleared["effective"] == {"keep_last": None, "days": None}
    bad = api.put(f"/sites/{bucket}/retention", json={"keep_last": -1})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "InvalidPolicy"


def test_a_dry_run_previews_proposed_rules_without_storing_them(
    api: ApiClient, bucket: str, artifacts: dict[str, bytes]
) -> None:
    api.put(f"/sites/{bucket}/policy", json={"overrides": {"quota_artifacts": 50}})
    current = api.post(f"/sites/{bucket}/retention:dry-run")
    assert current.json()["proposed"] is False
    assert current.json()["delete"] == []
    plan = api.post(
        f"/sites/{bucket}/retention:dry-run", json={"proposed": {"keep_last": 2}}
    ).json()
    assert plan["proposed"] is True
    assert plan["effective"] == {"keep_last": 2, "days": None}
    assert {a["build_id"] for a in plan["delete"]} == {"b1", "b2", "b3", "b4"}
    policy = api.get(f"/sites/{bucket}/policy").json()
    assert policy["overrides"] == {"quota_artifacts": 50}
    assert len(api.get(f"/sites/{bucket}/artifacts").json()["items"]) == len(artifacts)
    for body, code in (
        ({"proposed": {"keep_last": -1}}, "InvalidPolicy"),
        ({"proposed": {"colour": 1}}, "InvalidArgument"),
        ({"proposed": 3}, "InvalidArgument"),
        ({"rules": {}}, "InvalidArgument"),
    ):
        bad = api.post(f"/sites/{bucket}/retention:dry-run", json=body)
        assert bad.status_code == 400, body
        assert bad.json()["error"]["code"] == code, body


def test_policy_overrides_over_defaults(api: ApiClient, bucket: str) -> None:
    policy = api.get(f"/sites/{bucket}/policy").json()
    assert policy["overrides"] == {}
    assert policy["effective"] == policy["defaults"]
    updated = api.put(
        f"/sites/{bucket}/policy",
        json={"overrides": {"max_members": 10, "validate_archives": False}},
    ).json()
    assert updated["overrides"] == {"max_members": 10, "validate_archives": False}
    assert updated["effective"]["max_members"] == 10
    assert updated["effective"]["validate_archives"] is False
    assert updated["defaults"] == policy["defaults"]
    for overrides in ({"max_members": "ten"}, {"colour": 1}):
        bad = api.put(f"/sites/{bucket}/policy", json={"overrides": overrides})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "InvalidPolicy"
    assert api.put(f"/sites/{bucket}/policy", json={"overrides": {}}).json()["overrides"] == {}


def test_a_policy_override_applies_to_s3_uploads(
    api: ApiClient, s3: Any, bucket: str, artifacts: dict[str, bytes]
) -> None:
    api.put(f"/sites/{bucket}/policy", json={"overrides": {"quota_artifacts": len(artifacts)}})
    with pytest.raises(Exception, match="QuotaExceeded"):
        upload(s3, bucket, "over")
