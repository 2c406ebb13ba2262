"""A backend that could not start does not stop the gateway: it starts again in the background.

:class:`StartingBackend` wraps the translator. :meth:`StartingBackend.start` tries once;
when that fails the gateway serves anyway, not ready: every call (and the readiness check)
is refused at once with 503 ``ServiceUnavailable`` naming the backend, while
:meth:`StartingBackend.keep_starting` retries ``start()`` with a doubling delay (from
``first_delay_s`` up to ``max_delay_s``) until it succeeds. From then on it forwards
everything. :attr:`state` is ``starting`` or ``started``, for the readiness report.
"""

from __future__ import annotations

import logging
from typing import Final

import anyio

from core.checksums import ChecksumAlgorithm, ChecksumType
from core.context import RequestContext
from core.errors import S3Error
from core.streams import PayloadStream
from policy.forwarding import ForwardingBackend
from translators.base import (
    Backend,
    BucketInfo,
    CompletedPart,
    GetOptions,
    GetResult,
    ListPage,
    ListQuery,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    UploadsQuery,
    WriteConditions,
    WriteMetadata,
)

log = logging.getLogger("pagewright.backend_start")

FIRST_DELAY_S: Final = 0.5
MAX_DELAY_S: Final = 5.0


class StartingBackend(ForwardingBackend, passes_through={"close"}):
    """Refuses every call with 503 until the wrapped backend has started."""

    def __init__(
        self,
        inner: Backend,
        *,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        super().__init__(inner)
        self.started = False
        self.last_error = ""
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s

    @property
    def state(self) -> str:
        return "started" if self.started else "starting"

    async def start(self) -> None:
        """Try to start the backend once; a failure is kept in :attr:`last_error`."""
        await self.try_start()

    async def try_start(self) -> bool:
        """Start the backend; whether it started."""
        try:
            await self.inner.start()
        except Exception as error:
            self.last_error = error.message if isinstance(error, S3Error) else str(error)
            return False
        self.started = True
        self.last_error = ""
        return True

    async def keep_starting(self) -> None:
        """Retry :meth:`try_start` with a doubling delay until it succeeds."""
        delay = self._first_delay_s
        while not self.started:
            await anyio.sleep(delay)
            if await self.try_start():
                log.warning("the %s backend started: the gateway is ready", self.name)
                return
            delay = min(delay * 2, self._max_delay_s)

    def _require_started(self) -> None:
        if not self.started:
            raise S3Error(
                "ServiceUnavailable",
                f"The {self.name} backend has not started yet; retry later.",
                headers={"Retry-After": "1"},
            )

    async def check_ready(self) -> None:
        self._require_started()
        await self.inner.check_ready()

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]:
        self._require_started()
        return await self.inner.list_buckets(ctx)

    async def create_bucket(self, ctx: RequestContext, bucket: str) -> None:
        self._require_started()
        await self.inner.create_bucket(ctx, bucket)

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo:
        self._require_started()
        return await self.inner.head_bucket(ctx, bucket)

    async def delete_bucket(self, ctx: RequestContext, bucket: str) -> None:
        self._require_started()
        await self.inner.delete_bucket(ctx, bucket)

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo:
        self._require_started()
        return await self.inner.head_object(ctx, bucket, key)

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult:
        self._require_started()
        return await self.inner.get_object(ctx, bucket, key, options)

    async def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: PayloadStream,
        metadata: WriteMetadata,
        conditions: WriteConditions,
    ) -> ObjectInfo:
        self._require_started()
        return await self.inner.put_object(ctx, bucket, key, body, metadata, conditions)

    async def delete_object(self, ctx: RequestContext, bucket: str, key: str) -> None:
        self._require_started()
        await self.inner.delete_object(ctx, bucket, key)

    async def list_objects(self, ctx: RequestContext, bucket: str, query: ListQuery) -> ListPage:
        self._require_started()
        return await self.inner.list_objects(ctx, bucket, query)

    async def create_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        metadata: WriteMetadata,
        checksum_algorithm: ChecksumAlgorithm | None,
        checksum_type: ChecksumType | None,
    ) -> UploadInfo:
        self._require_started()
        return await self.inner.create_multipart_upload(
            ctx, bucket, key, metadata, checksum_algorithm, checksum_type
        )

    async def upload_part(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: PayloadStream,
    ) -> PartInfo:
        self._require_started()
        return await self.inner.upload_part(ctx, bucket, key, upload_id, part_number, body)

    async def list_parts(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        part_number_marker: int,
        max_parts: int,
    ) -> tuple[UploadInfo, PartsPage]:
        self._require_started()
        return await self.inner.list_parts(
            ctx, bucket, key, upload_id, part_number_marker, max_parts
        )

    async def list_multipart_uploads(
        self, ctx: RequestContext, bucket: str, query: UploadsQuery
    ) -> UploadsPage:
        self._require_started()
        return await self.inner.list_multipart_uploads(ctx, bucket, query)

    async def complete_multipart_upload(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPart],
        conditions: WriteConditions,
    ) -> ObjectInfo:
        self._require_started()
        return await self.inner.complete_multipart_upload(
            ctx, bucket, key, upload_id, parts, conditions
        )

    async def abort_multipart_upload(
        self, ctx: RequestContext, bucket: str, key: str, upload_id: str
    ) -> None:
        self._require_started()
        await self.inner.abort_multipart_upload(ctx, bucket, key, upload_id)
