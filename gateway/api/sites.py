"""Per-site endpoints: usage and quota, retention rules and their dry run, policy overrides.

Policies are the config file's ``[policy]`` defaults with the site's overrides (stored in
the catalog) laid over them; writes go through :class:`policy.policies.PolicyResolver`,
which validates them and drops this process's cached policy of the site.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import render
from gateway.api.errors import ApiError
from gateway.api.params import json_object, only_fields, site_of
from gateway.api.services import ApiServices
from policy.policies import validate_overrides

#: Retention body field -> SitePolicy field.
RETENTION_FIELDS = {"keep_last": "retention_keep_last", "days": "retention_days"}


class SiteHandlers:
    """The per-site endpoints over ``services`` (see the module docstring)."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services
        self._policies = services.policies

    async def _site(self, request: Request) -> str:
        return site_of(request)

    async def usage(self, request: Request) -> Response:
        """GET /sites/{site}/usage: exact usage, the quotas in force and what remains."""
        site = await self._site(request)
        current = await self._services.catalog.usage(site)
        policy = await self._policies.for_site(site)
        return render.json_response(request, render.usage(site, current, policy))

    # Retention

    async def get_retention(self, request: Request) -> Response:
        """GET /sites/{site}/retention: effective rules, the site's overrides, defaults."""
        site = await self._site(request)
        return render.json_response(request, await self._retention(site))

    async def put_retention(self, request: Request) -> Response:
        """PUT /sites/{site}/retention ``{"keep_last": n|null, "days": n|null}``.

        A field present sets the site's rule (null: no such rule for this site, whatever
        the default); a field absent drops the site's override, so the default applies.
        Other policy overrides are kept."""
        site = await self._site(request)
        document = await json_object(request)
        overrides = _with_retention(await self._policies.overrides(site), document)
        await self._policies.set_overrides(site, overrides)
        return render.json_response(request, await self._retention(site))

    async def _retention(self, site: str) -> dict[str, Any]:
        overrides = await self._policies.overrides(site)
        policy = self._policies.defaults.merged(overrides)
        return {
            "site": site,
            "effective": render.retention_rules(policy),
            "overrides": {
                name: overrides[field]
                for name, field in RETENTION_FIELDS.items()
                if field in overrides
            },
            "defaults": render.retention_rules(self._policies.defaults),
        }

    async def retention_dry_run(self, request: Request) -> Response:
        """POST /sites/{site}/retention:dry-run: what a retention pass would keep (and why)
        and delete now; deletes nothing and stores nothing.

        Without a body (or with ``{}``) the plan uses the site's rules. With
        ``{"proposed": {"keep_last": ..., "days": ...}}`` it uses the rules the site would
        have after a PutRetention of that object, without storing them."""
        site = await self._site(request)
        document = await _optional_json_object(request)
        only_fields(document, frozenset({"proposed"}))
        proposed = document.get("proposed")
        if proposed is None:
            policy = await self._policies.for_site(site)
        elif isinstance(proposed, dict):
            overrides = _with_retention(await self._policies.overrides(site), proposed)
            policy = self._policies.defaults.merged(validate_overrides(overrides))
        else:
            raise ApiError("InvalidArgument", "proposed must be a JSON object")
        plan = await self._services.retention.apply(site, dry_run=True, policy=policy)
        rendered = render.retention_plan(site, policy, plan)
        return render.json_response(request, {**rendered, "proposed": proposed is not None})

    # Policy

    async def get_policy(self, request: Request) -> Response:
        """GET /sites/{site}/policy: defaults, the site's overrides and the effective policy."""
        site = await self._site(request)
        return render.json_response(request, await self._policy(site))

    async def put_policy(self, request: Request) -> Response:
        """PUT /sites/{site}/policy ``{"overrides": {...}}``: replace every override of the
        site (``{}`` removes them); unknown fields or wrong types are 400 InvalidPolicy."""
        site = await self._site(request)
        document = await json_object(request)
        only_fields(document, frozenset({"overrides"}))
        overrides = document.get("overrides")
        if not isinstance(overrides, dict):
            raise ApiError("InvalidArgument", "overrides must be a JSON object")
        await self._policies.set_overrides(site, overrides)
        return render.json_response(request, await self._policy(site))

    async def _policy(self, site: str) -> dict[str, Any]:
        overrides = await self._policies.overrides(site)
        return {
            "site": site,
            "defaults": render.policy(self._policies.defaults),
            "overrides": overrides,
            "effective": render.policy(self._policies.defaults.merged(overrides)),
        }


def _with_retention(overrides: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the retention rules of a PutRetention body laid over them: a field
    present sets the rule, a field absent drops the override."""
    only_fields(document, frozenset(RETENTION_FIELDS))
    result = dict(overrides)
    for name, field in RETENTION_FIELDS.items():
        if name in document:
            result[field] = document[name]
        else:
            result.pop(field, None)
    return result


async def _optional_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or {} when the request has no body."""
    if request.headers.get("content-length", "0") == "0" and (
        "transfer-encoding" not in request.headers
    ):
        return {}
    return await json_object(request)
