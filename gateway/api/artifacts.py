"""Artifact endpoints: list, search, show, list versions, pin/unpin, set status/action,
bulk delete and bulk download.

Reads come from the catalog; deletes and downloads go through the wrapped Backend, so the
catalog, quotas and read verification follow exactly as for S3 requests. A build id names
``builds/<build_id>.<ext>`` whatever its extension; if a site holds several extensions of
one build, show/pin/download act on the newest and delete removes them all.

Pins and the status/action set here live in the catalog (the Backend cannot rewrite an
object's metadata in place); the catalog tells :mod:`policy.site_state`, which keeps a copy
in the site's bucket, so ``reindex`` restores them. On a site with object lock a pin is the
latest version's legal hold, set through ``policy.object_lock`` so its lock record follows.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.context import RequestContext
from core.errors import S3Error
from core.streams import ObjectBody
from gateway.access_log import new_request_id, request_id_of
from gateway.api import render
from gateway.api.auth import principal_of
from gateway.api.errors import ApiError
from gateway.api.params import (
    build_ids,
    is_build_id,
    json_object,
    listing_query,
    only_fields,
    optional_string,
    query_of,
    site_of,
    version_paging,
)
from gateway.api.services import ApiServices
from gateway.api.tarstream import TarEntry, TarSizeMismatch, archive_size, stream_tar
from policy.catalog_version_pages import decode_cursor
from policy.model import ObjectRecord
from translators.base import GetOptions

#: Artifact key extensions, in the order lookups try them.
EXTENSIONS = ("tar.gz", "tgz", "tar.zst", "tar")
TAR = "application/x-tar"


def context(request: Request) -> RequestContext:
    """The Backend request context of an authenticated API request (its request id is the
    one in the reply's header and the access line)."""
    return RequestContext(request_id_of(request.scope) or new_request_id(), principal_of(request))


def build_id_of(request: Request) -> str:
    build_id = str(request.path_params["build_id"])
    check_build_id(build_id)
    return build_id


def check_build_id(build_id: str) -> None:
    """``InvalidArgument`` unless ``builds/<build_id>.<ext>`` is an artifact key."""
    if not is_build_id(build_id):
        raise ApiError("InvalidArgument", f"{build_id!r} is not a valid build id")


class ArtifactHandlers:
    """The artifact endpoints over ``services`` (see the module docstring)."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services
        self._catalog = services.catalog

    async def _records(self, site: str, build_id: str) -> list[ObjectRecord]:
        """Every artifact of ``build_id`` in ``site``, newest first."""
        records = []
        for extension in EXTENSIONS:
            record = await self._catalog.get(site, f"builds/{build_id}.{extension}")
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: (r.created_at, r.key), reverse=True)

    async def _newest(self, site: str, build_id: str) -> ObjectRecord:
        records = await self._records(site, build_id)
        if not records:
            raise ApiError("NoSuchArtifact", f"site {site!r} has no build {build_id!r}")
        return records[0]

    # Listings

    async def list_artifacts(self, request: Request) -> Response:
        """GET /sites/{site}/artifacts: one page of a site's artifacts (ETag'd)."""
        site = site_of(request)
        return await self._listing(request, site)

    async def search_artifacts(self, request: Request) -> Response:
        """GET /artifacts/search: artifacts across sites matching metadata, tags and
        filters."""
        return await self._listing(request, None)

    async def _listing(self, request: Request, site: str | None) -> Response:
        filters, paging = listing_query(query_of(request), site)
        result = await self._catalog.list(
            filters,
            artifacts_only=True,
            sort=paging.sort,
            descending=paging.descending,
            cursor=paging.cursor,
            limit=paging.limit,
        )
        return render.json_response(request, render.page(result), etag=True)

    # One artifact

    async def get_artifact(self, request: Request) -> Response:
        """GET /sites/{site}/artifacts/{build_id}: metadata only, no download."""
        site, build_id = site_of(request), build_id_of(request)
        record = await self._newest(site, build_id)
        return render.json_response(request, render.artifact(record), etag=True)

    async def list_versions(self, request: Request) -> Response:
        """GET /sites/{site}/artifacts/{build_id}/versions: one page of the artifact's
        versions, newest first (the current one first; ETag'd).

        The artifact's key is the newest current artifact of the build; when the build reads
        as deleted (a delete marker on a versioned site), the first extension (in
        :data:`EXTENSIONS` order) whose key still has versions. A site never versioned lists
        the one current version, ``null``."""
        site, build_id = site_of(request), build_id_of(request)
        limit, cursor = version_paging(query_of(request))
        if cursor is not None:
            decode_cursor(cursor)  # a malformed cursor is 400 whether or not the build exists
        key = await self._versioned_key(site, build_id)
        result = await self._catalog.key_versions(site, key, cursor=cursor, limit=limit)
        return render.json_response(request, render.version_page(site, key, result), etag=True)

    async def _versioned_key(self, site: str, build_id: str) -> str:
        records = await self._records(site, build_id)
        if records:
            return records[0].key
        for extension in EXTENSIONS:
            key = f"builds/{build_id}.{extension}"
            if (await self._catalog.key_versions(site, key, limit=1)).items:
                return key
        raise ApiError("NoSuchArtifact", f"site {site!r} has no build {build_id!r}")

    async def update_artifact(self, request: Request) -> Response:
        """PATCH /sites/{site}/artifacts/{build_id}: set ``status`` and/or ``action``."""
        site, build_id = site_of(request), build_id_of(request)
        document = await json_object(request)
        only_fields(document, frozenset({"status", "action"}))
        status = optional_string(document, "status")
        action = optional_string(document, "action")
        if status is None and action is None:
            raise ApiError("InvalidArgument", "give status, action or both")
        record = await self._newest(site, build_id)
        updated = await self._update(record, status=status, action=action)
        return render.json_response(request, render.artifact(updated))

    async def pin(self, request: Request) -> Response:
        """POST /sites/{site}/artifacts/{build_id}/pin: retention never deletes it."""
        return await self._set_pinned(request, True)

    async def unpin(self, request: Request) -> Response:
        """POST /sites/{site}/artifacts/{build_id}/unpin."""
        return await self._set_pinned(request, False)

    async def _set_pinned(self, request: Request, pinned: bool) -> Response:
        site, build_id = site_of(request), build_id_of(request)
        record = await self._newest(site, build_id)
        locks = self._services.locks
        if locks is not None and await locks.pin_latest(
            self._services.backend, context(request), site, record.key, pinned
        ):
            found = await self._catalog.get(site, record.key)
            if found is None:
                raise ApiError("NoSuchArtifact", f"build {build_id!r} was deleted meanwhile")
            return render.json_response(request, render.artifact(found))
        updated = await self._update(record, pinned=pinned)
        return render.json_response(request, render.artifact(updated))

    async def _update(self, record: ObjectRecord, **changes: Any) -> ObjectRecord:
        try:
            return await self._catalog.update(record.site, record.key, **changes)
        except KeyError:
            raise ApiError(
                "NoSuchArtifact", f"build {record.build_id!r} was deleted meanwhile"
            ) from None

    # Bulk

    async def delete_artifacts(self, request: Request) -> Response:
        """POST /sites/{site}/artifacts:delete ``{"build_ids": [...], "force": false}``.

        Deletes through the Backend, one build at a time; pinned builds are skipped unless
        ``force``. Always 200 with what happened to each id (deleted, not_found, pinned,
        failed); a failure of one build does not stop the others.
        """
        site = site_of(request)
        document = await json_object(request)
        only_fields(document, frozenset({"build_ids", "force"}))
        ids = build_ids(document)
        for build_id in ids:
            check_build_id(build_id)
        force = document.get("force", False)
        if not isinstance(force, bool):
            raise ApiError("InvalidArgument", "force must be a boolean")
        ctx = context(request)
        outcome: dict[str, list[Any]] = {"deleted": [], "not_found": [], "pinned": [], "failed": []}
        for build_id in ids:
            records = await self._records(site, build_id)
            if not records:
                outcome["not_found"].append(build_id)
            elif any(r.pinned for r in records) and not force:
                outcome["pinned"].append(build_id)
            else:
                try:
                    for record in records:
                        await self._services.backend.delete_object(ctx, site, record.key)
                except S3Error as error:
                    failure = {"code": error.code, "message": error.message}
                    outcome["failed"].append({"build_id": build_id, "error": failure})
                else:
                    outcome["deleted"].append(build_id)
        return render.json_response(request, outcome)

    async def download_artifacts(self, request: Request) -> Response:
        """POST /sites/{site}/artifacts:download ``{"build_ids": [...]}``: one tar streamed
        from the Backend, members ``builds/<build_id>.<ext>`` in the order asked.

        Every id must exist (404 naming the missing ones) before anything is sent. An
        object that changes or fails verification mid-stream aborts the connection."""
        site = site_of(request)
        document = await json_object(request)
        only_fields(document, frozenset({"build_ids"}))
        ids = build_ids(document)
        for build_id in ids:
            check_build_id(build_id)
        records: list[ObjectRecord] = []
        missing: list[str] = []
        for build_id in ids:
            found = await self._records(site, build_id)
            if found:
                records.append(found[0])
            else:
                missing.append(build_id)
        if missing:
            raise ApiError("NoSuchArtifact", f"site {site!r} has no build {', '.join(missing)}")
        entries = [TarEntry(r.key, r.size, r.created_at.timestamp()) for r in records]
        ctx = context(request)
        backend = self._services.backend

        async def open_body(entry: TarEntry) -> ObjectBody:
            result = await backend.get_object(ctx, site, entry.name, GetOptions())
            if result.info.size != entry.size:
                await result.body.aclose()
                raise TarSizeMismatch(f"{entry.name} changed while the archive was streamed")
            return result.body

        headers = {
            "Content-Length": str(archive_size(entries)),
            "Content-Disposition": f'attachment; filename="{site}-artifacts.tar"',
        }
        return StreamingResponse(stream_tar(entries, open_body), headers=headers, media_type=TAR)
