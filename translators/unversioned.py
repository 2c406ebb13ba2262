"""The versioning methods of a translator that keeps no versions (S3, Azure, GCS today).

Its buckets are never versioned: each key has one entry, its object, whose version id is
``null``, so the versioned reads S3 clients send for it (``versionId=null``) and
ListObjectVersions answer from the plain methods. Enabling versioning is ``NotImplemented``
(501) naming the backend; nothing is accepted and then ignored.
"""

from __future__ import annotations

from dataclasses import replace

from core.context import RequestContext
from core.errors import S3Error
from translators.base import Backend, GetOptions, GetResult, ListQuery
from translators.versioning import (
    NULL_VERSION,
    DeleteOutcome,
    Version,
    VersioningStatus,
    VersionsPage,
    VersionsQuery,
)


def _null_only(key: str, version_id: str) -> None:
    if version_id != NULL_VERSION:
        raise S3Error("NoSuchVersion", Key=key, VersionId=version_id)


class Unversioned:
    """Base of a translator's backend class without versions: the Backend's versioning
    methods over its plain ones (see the module docstring)."""

    name: str

    def _plain(self) -> Backend:
        return self  # type: ignore[return-value]

    async def get_bucket_versioning(
        self, ctx: RequestContext, bucket: str
    ) -> VersioningStatus | None:
        await self._plain().head_bucket(ctx, bucket)
        return None

    async def put_bucket_versioning(
        self, ctx: RequestContext, bucket: str, status: VersioningStatus
    ) -> None:
        raise S3Error(
            "NotImplemented",
            f"Bucket versioning is not supported by the {self.name} backend.",
        )

    async def head_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str
    ) -> Version:
        _null_only(key, version_id)
        info = await self._plain().head_object(ctx, bucket, key)
        return Version(key, NULL_VERSION, info.last_modified, info)

    async def get_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str, options: GetOptions
    ) -> GetResult:
        _null_only(key, version_id)
        return await self._plain().get_object(ctx, bucket, key, options)

    async def delete_version(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> DeleteOutcome:
        if version_id not in (None, NULL_VERSION):
            await self._plain().head_bucket(ctx, bucket)
            return DeleteOutcome(version_id, False)
        await self._plain().delete_object(ctx, bucket, key)
        return DeleteOutcome(version_id, False)

    async def list_versions(
        self, ctx: RequestContext, bucket: str, query: VersionsQuery
    ) -> VersionsPage:
        """The objects as ``null`` versions: after ``key_marker`` (a version id marker, which
        can only be ``null``, resumes after that key too)."""
        if query.version_id_marker not in ("", NULL_VERSION):
            raise S3Error(
                "InvalidArgument",
                "Invalid version id specified",
                ArgumentName="version-id-marker",
                ArgumentValue=query.version_id_marker,
            )
        page = await self._plain().list_objects(
            ctx,
            bucket,
            ListQuery(query.prefix, query.delimiter, query.key_marker, query.max_keys),
        )
        versions = [
            Version(o.key, NULL_VERSION, o.last_modified, replace(o, version_id=NULL_VERSION))
            for o in page.objects
        ]
        marker = page.next_start_after
        last_is_object = bool(versions) and marker == versions[-1].key
        return VersionsPage(
            versions,
            page.common_prefixes,
            marker,
            NULL_VERSION if marker is not None and last_is_object else None,
        )
