"""The artifact API application and its one route table.

Every route's ``name`` is its operation (``ListArtifacts``...), the ``operationId`` of the
same path and method in ``openapi.json``; ``tests/test_api.py`` checks the table and the
document describe exactly the same operations.

Middleware, outermost first (all pure ASGI): the access log (request id, one access line),
gzip for large responses (never for tars, which hold compressed artifacts and must keep
their Content-Length), the 500 renderer, the authentication-failure throttle, Bearer
authentication, the access decision (``gateway.api.authorization``), the rate limits
(``gateway.api.limits``). Then Starlette's
exception handlers render every known error as ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.api import render
from gateway.api.access import AccessLog
from gateway.api.artifacts import TAR, ArtifactHandlers
from gateway.api.auth import BearerAuth
from gateway.api.authorization import ApiAuthorization
from gateway.api.errors import EXCEPTION_HANDLERS, InternalErrors
from gateway.api.jobs import JobHandlers
from gateway.api.limits import RequestRateLimit, SourceThrottle
from gateway.api.openapi import OPENAPI
from gateway.api.services import ApiServices
from gateway.api.sites import SiteHandlers

API_PREFIX = "/_pagewright/v1"
OPENAPI_PATH = "/openapi.json"
GZIP_MINIMUM_BYTES = 1024


async def openapi_document(request: Request) -> Response:
    """GET /openapi.json: the OpenAPI 3.1 description of this API (public)."""
    return render.json_response(request, OPENAPI, etag=True)


def api_routes(services: ApiServices) -> list[BaseRoute]:
    """The route table: (path, method) -> handler, named by operation."""
    artifacts = ArtifactHandlers(services)
    sites = SiteHandlers(services)
    jobs = JobHandlers(services)
    one = "/sites/{site}/artifacts/{build_id}"
    return [
        Route(OPENAPI_PATH, openapi_document, methods=["GET"], name="GetOpenApi"),
        Route(
            "/artifacts/search", artifacts.search_artifacts, methods=["GET"], name="SearchArtifacts"
        ),
        Route(
            "/sites/{site}/artifacts",
            artifacts.list_artifacts,
            methods=["GET"],
            name="ListArtifacts",
        ),
        Route(
            "/sites/{site}/artifacts:delete",
            artifacts.delete_artifacts,
            methods=["POST"],
            name="DeleteArtifacts",
        ),
        Route(
            "/sites/{site}/artifacts:download",
            artifacts.download_artifacts,
            methods=["POST"],
            name="DownloadArtifacts",
        ),
        Route(one, artifacts.get_artifact, methods=["GET"], name="GetArtifact"),
        Route(one, artifacts.update_artifact, methods=["PATCH"], name="UpdateArtifact"),
        Route(
            one + "/versions",
            artifacts.list_versions,
            methods=["GET"],
            name="ListArtifactVersions",
        ),
        Route(one + "/pin", artifacts.pin, methods=["POST"], name="PinArtifact"),
        Route(one + "/unpin", artifacts.unpin, methods=["POST"], name="UnpinArtifact"),
        Route("/sites/{site}/usage", sites.usage, methods=["GET"], name="GetUsage"),
        Route("/sites/{site}/retention", sites.get_retention, methods=["GET"], name="GetRetention"),
        Route("/sites/{site}/retention", sites.put_retention, methods=["PUT"], name="PutRetention"),
        Route(
            "/sites/{site}/retention:dry-run",
            sites.retention_dry_run,
            methods=["POST"],
            name="DryRunRetention",
        ),
        Route("/sites/{site}/policy", sites.get_policy, methods=["GET"], name="GetPolicy"),
        Route("/sites/{site}/policy", sites.put_policy, methods=["PUT"], name="PutPolicy"),
        Route("/jobs", jobs.list_jobs, methods=["GET"], name="ListJobs"),
    ]


def allowed_methods(routes: list[BaseRoute], path: str) -> list[str]:
    """Every method some route of ``routes`` accepts for ``path`` (relative to the API
    root): a path served by two routes (GET and PATCH) allows both."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path_regex.fullmatch(path):
            methods |= route.methods
    return sorted(methods)


def _http_errors(routes: list[BaseRoute]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The HTTPException handler, with a 405's ``Allow`` naming every method of the path
    (Starlette's names only those of the first route it tried)."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            path = request.url.path.removeprefix(API_PREFIX)
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed_methods(routes, path))}
        handler: Callable[[Request, Exception], Awaitable[Response]] = EXCEPTION_HANDLERS[
            HTTPException
        ]
        return await handler(request, exc)

    return handle


def create_api_app(services: ApiServices) -> Starlette:
    """The API as an ASGI app serving full paths under :data:`API_PREFIX`.

    It has no lifespan of its own: ``services`` are started and closed by the gateway."""
    routes = api_routes(services)
    return Starlette(
        routes=[Mount(API_PREFIX, routes=routes)],
        middleware=[
            Middleware(
                AccessLog,
                prefix=API_PREFIX,
                routes=[r for r in routes if isinstance(r, Route)],
                metrics=services.metrics,
            ),
            Middleware(
                GZipMiddleware,
                minimum_size=GZIP_MINIMUM_BYTES,
                compresslevel=6,
                exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, TAR),
            ),
            Middleware(InternalErrors),
            Middleware(
                SourceThrottle,
                limiter=services.limiter,
                trusted_proxies=services.settings.trusted_proxies,
                metrics=services.metrics,
            ),
            Middleware(
                BearerAuth,
                api_keys=services.api_keys,
                public_paths=[API_PREFIX + OPENAPI_PATH],
                token_verifier=services.token_verifier,
            ),
            Middleware(
                ApiAuthorization,
                access=services.access,
                prefix=API_PREFIX,
                routes=[r for r in routes if isinstance(r, Route)],
                public_paths=[API_PREFIX + OPENAPI_PATH],
                region=services.settings.region,
                trusted_proxies=services.settings.trusted_proxies,
                metrics=services.metrics,
            ),
            Middleware(
                RequestRateLimit,
                limiter=services.limiter,
                prefix=API_PREFIX,
                trusted_proxies=services.settings.trusted_proxies,
                metrics=services.metrics,
            ),
        ],
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: _http_errors(routes)},
    )
