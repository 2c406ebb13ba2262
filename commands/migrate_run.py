"""A migration (``pagewright-gateway migrate``): copy buckets from one backend to another,
verified.

Both ends are backend URLs (``translators.config``) opened through the translator registry;
only the :class:`translators.base.Backend` interface is used. For each object of each bucket:

1. **skip** it when the state file records it as copied with the same source ETag, or when
   the target already holds an object of the same size, ETag (or full-object checksum) and
   metadata;
2. **copy** it by streaming one ``get_object`` into ``put_object`` with the same headers and
   user metadata while MD5 and the source's checksum algorithms are computed, so checksums
   carry over. A multipart source keeps its part layout (same ``-N`` ETag, same COMPOSITE or
   FULL_OBJECT checksum) through create/upload_part/complete on the target; when the target
   refuses that layout (or ``flatten_multipart`` is set) it becomes a single object whose
   ETag is the MD5 of its bytes;
3. **verify** it: the bytes read must match the source's size, ETag (per-part MD5s for a
   multipart ETag) and checksums (per-part digests for a COMPOSITE one; an artifact's
   SHA256), checked *before* the target commits: a mismatch is raised from the upload's
   body stream at its end (or stops a multipart copy before its completion), so bytes
   that failed verification (a corrupted source) never become a readable object at the
   target and a previous copy there stays intact. The object is reported as failed and
   the run exits 1. The target, read back with ``head_object``, must then report the same
   size and the ETag and checksums of what was sent.

Nothing on the source is ever written or deleted: the source is typed as
:class:`ReadableStore`, which has no mutating method. Progress is kept in a JSON state file
(bucket -> key -> source ETag), replaced atomically every few seconds and at the end, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from commands.migrate_copy import ObjectCopier
from commands.migrate_source import ReadableStore
from commands.migrate_verify import same_object
from core.context import RequestContext
from core.errors import S3Error
from translators.base import Backend, ListQuery, ObjectInfo

PRINCIPAL: Final = "migrate"
STATE_VERSION: Final = 1


@dataclass(frozen=True)
class MigrateOptions:
    """How to migrate. ``limit`` stops after that many objects were copied (a batch; the
    state file lets the next run continue). ``source_label``/``target_label`` identify the
    two ends in the state file, which refuses to resume a different migration."""

    bucket: str | None = None
    dry_run: bool = False
    state_file: Path | None = None
    concurrency: int = 4
    limit: int | None = None
    flatten_multipart: bool = False
    save_interval: float = 5.0
    source_label: str = ""
    target_label: str = ""


@dataclass(frozen=True)
class Failure:
    bucket: str
    key: str
    reason: str


@dataclass
class Summary:
    """What a run did. ``planned`` lists (bucket, key, size) a dry run would copy."""

    buckets: list[str] = field(default_factory=list)
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    flattened: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    planned: list[tuple[str, str, int]] = field(default_factory=list)
    stopped_at_limit: bool = False
    duration: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)


class Progress(Protocol):
    """Where a run reports as it goes (a terminal progress bar, or nothing)."""

    def listed(self, objects: int, size: int) -> None: ...

    def transferred(self, size: int) -> None: ...

    def finished_object(self) -> None: ...


class NoProgress:
    def listed(self, objects: int, size: int) -> None:
        pass

    def transferred(self, size: int) -> None:
        pass

    def finished_object(self) -> None:
        pass


class MigrationError(Exception):
    """The migration cannot run at all (unusable state file, missing source bucket...)."""


# State file


class StateFile:
    """Keys already copied, bucket -> key -> source ETag, saved atomically as JSON."""

    def __init__(self, path: Path | None, source: str, target: str) -> None:
        self.path = path
        self.source = source
        self.target = target
        self.done: dict[str, dict[str, str]] = {}
        self._dirty = False
        self._saved_at = time.monotonic()
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise MigrationError(f"cannot read state file {path}: {error}") from error
        if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
            raise MigrationError(f"{path} is not a migrate state file (version {STATE_VERSION})")
        for end in ("source", "target"):
            recorded, current = document.get(end, ""), getattr(self, end)
            if recorded and current and recorded != current:
                raise MigrationError(
                    f"state file {path} belongs to a migration with {end} {recorded!r}, "
                    f"not {current!r}; use another --state file"
                )
        buckets = document.get("buckets", {})
        self.done = {bucket: dict(keys) for bucket, keys in buckets.items()}

    def is_done(self, bucket: str, info: ObjectInfo) -> bool:
        return self.done.get(bucket, {}).get(info.key) == info.etag

    def mark(self, bucket: str, info: ObjectInfo) -> None:
        self.done.setdefault(bucket, {})[info.key] = info.etag
        self._dirty = True

    def save_if_due(self, interval: float) -> None:
        if self._dirty and time.monotonic() - self._saved_at >= interval:
            self.save()

    def save(self) -> None:
        """Replace the file atomically (write a temp file beside it, fsync, rename)."""
        self._saved_at = time.monotonic()
        if self.path is None or not self._dirty:
            return
        document = {
            "version": STATE_VERSION,
            "source": self.source,
            "target": self.target,
            "buckets": self.done,
        }
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(document, out, separators=(",", ":"), sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._dirty = False


# The migration


class Migration:
    """One run: copy every object of the selected buckets from ``source`` to ``target``."""

    def __init__(
        self,
        source: ReadableStore,
        target: Backend,
        options: MigrateOptions,
        progress: Progress | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.options = options
        self.progress = progress or NoProgress()
        self.ctx = RequestContext(
            request_id=f"migrate-{uuid.uuid4().hex[:16]}", principal=PRINCIPAL
        )
        self.state = StateFile(options.state_file, options.source_label, options.target_label)
        self.summary = Summary()
        self.copier = ObjectCopier(
            source,
            target,
            self.ctx,
            flatten_multipart=options.flatten_multipart,
            on_bytes=self.progress.transferred,
        )
        self._stop = asyncio.Event()

    async def run(self) -> Summary:
        started = time.monotonic()
        try:
            for bucket in await self._buckets():
                if self._stop.is_set():
                    break
                self.summary.buckets.append(bucket)
                await self._migrate_bucket(bucket)
        finally:
            if not self.options.dry_run:
                self.state.save()
            self.summary.duration = time.monotonic() - started
        return self.summary

    async def _buckets(self) -> list[str]:
        if self.options.bucket is not None:
            try:
                await self.source.head_bucket(self.ctx, self.options.bucket)
            except S3Error as error:
                raise MigrationError(
                    f"source bucket {self.options.bucket!r}: {error.message}"
                ) from error
            return [self.options.bucket]
        return sorted(b.name for b in await self.source.list_buckets(self.ctx))

    async def _migrate_bucket(self, bucket: str) -> None:
        try:
            target_exists = await self._prepare_target_bucket(bucket)
        except S3Error as error:
            reason = f"cannot create the target bucket: {_describe(error)}"
            self.summary.failures.append(Failure(bucket, "", reason))
            return
        limit = asyncio.Semaphore(max(1, self.options.concurrency))
        async with asyncio.TaskGroup() as tasks:
            start_after = ""
            while not self._stop.is_set():
                page = await self.source.list_objects(
                    self.ctx, bucket, ListQuery(start_after=start_after)
                )
                self.progress.listed(len(page.objects), sum(o.size for o in page.objects))
                for info in page.objects:
                    await limit.acquire()
                    if self._stop.is_set():
                        limit.release()
                        break
                    task = tasks.create_task(self._one(bucket, info, target_exists))
                    task.add_done_callback(lambda _: limit.release())
                if page.next_start_after is None:
                    break
                start_after = page.next_start_after

    async def _prepare_target_bucket(self, bucket: str) -> bool:
        """Create the target bucket unless this is a dry run; whether it exists now."""
        if self.options.dry_run:
            try:
                await self.target.head_bucket(self.ctx, bucket)
            except S3Error as error:
                if error.code == "NoSuchBucket":
                    return False
                raise
            return True
        try:
            await self.target.create_bucket(self.ctx, bucket)
        except S3Error as error:
            if error.code != "BucketAlreadyOwnedByYou":
                raise
        return True

    async def _one(self, bucket: str, listed: ObjectInfo, target_exists: bool) -> None:
        try:
            if self.state.is_done(bucket, listed) or (
                target_exists and await self._already_copied(bucket, listed)
            ):
                self.summary.skipped += 1
                if not self.options.dry_run:
                    self.state.mark(bucket, listed)
            elif self.options.dry_run:
                self.summary.planned.append((bucket, listed.key, listed.size))
            else:
                copied = await self.copier.copy(bucket, listed)
                if copied.flattened:
                    self.summary.flattened.append((bucket, listed.key))
                self.summary.bytes_copied += copied.size
                self.summary.copied += 1
                self.state.mark(bucket, listed)
                limit = self.options.limit
                if limit is not None and self.summary.copied >= limit:
                    self.summary.stopped_at_limit = True
                    self._stop.set()
        except Exception as error:  # one object's failure must not stop the others
            self.summary.failures.append(Failure(bucket, listed.key, _describe(error)))
        finally:
            self.progress.finished_object()
            if not self.options.dry_run:
                self.state.save_if_due(self.options.save_interval)

    async def _already_copied(self, bucket: str, listed: ObjectInfo) -> bool:
        try:
            existing = await self.target.head_object(self.ctx, bucket, listed.key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return False
            raise
        if existing.size != listed.size:
            return False
        # The listing carries no metadata or checksums: compare with the full source record.
        return same_object(await self.source.head_object(self.ctx, bucket, listed.key), existing)


def _describe(error: Exception) -> str:
    if isinstance(error, S3Error):
        return f"{error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"


async def migrate(
    source: ReadableStore,
    target: Backend,
    options: MigrateOptions,
    progress: Progress | None = None,
) -> Summary:
    """Copy ``source``'s buckets (or ``options.bucket``) to ``target``; see the module doc."""
    return await Migration(source, target, options, progress).run()
