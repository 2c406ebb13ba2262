"""``pagewright-gateway migrate``: copy buckets from one backend to another, verified.

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

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from commands.progress import RichProgress
from core import checksums
from core.context import RequestContext
from core.digest import Digester, multipart_etag
from core.errors import S3Error
from core.streams import ObjectBody, PayloadDigest
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
    WriteConditions,
    WriteMetadata,
)
from translators.config import BackendConfigError, NoStoreError, parse_backend_url
from translators.registry import create_backend

PRINCIPAL: Final = "migrate"
STATE_VERSION: Final = 1
#: S3 error codes with which a target refuses a multipart layout: copy as one object instead.
_LAYOUT_REFUSED: Final = frozenset(
    {"NotImplemented", "EntityTooSmall", "InvalidPart", "InvalidRequest", "InvalidArgument"}
)


class ReadableStore(Protocol):
    """The part of :class:`Backend` a migration may use on its source: reads only."""

    name: str

    async def list_buckets(self, ctx: RequestContext) -> list[BucketInfo]: ...

    async def head_bucket(self, ctx: RequestContext, bucket: str) -> BucketInfo: ...

    async def head_object(self, ctx: RequestContext, bucket: str, key: str) -> ObjectInfo: ...

    async def list_objects(
        self, ctx: RequestContext, bucket: str, query: ListQuery
    ) -> ListPage: ...

    async def get_object(
        self, ctx: RequestContext, bucket: str, key: str, options: GetOptions
    ) -> GetResult: ...


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


# Streaming the source


class _SourceReader:
    """One object body read once, handed out as consecutive slices of exact sizes."""

    def __init__(self, body: ObjectBody) -> None:
        self._body = body
        self._chunks = aiter(body)
        self._pending = b""
        self._closed = False

    async def take(self, size: int) -> AsyncIterator[bytes]:
        remaining = size
        while remaining > 0:
            if not self._pending:
                try:
                    self._pending = await anext(self._chunks)
                except StopAsyncIteration:
                    raise S3Error(
                        "IncompleteBody", "the source object ended before its reported size"
                    ) from None
                continue
            chunk = self._pending[:remaining]
            self._pending = self._pending[len(chunk) :]
            remaining -= len(chunk)
            yield chunk

    async def finish(self) -> None:
        """Fail if the source has bytes beyond its reported size; close it."""
        try:
            extra = bool(self._pending)
            if not extra:
                async for chunk in self._chunks:
                    if chunk:
                        extra = True
                        break
            if extra:
                raise VerificationError("the source object is longer than its reported size")
        finally:
            await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._body.aclose()


class _CopyPayload:
    """A :class:`translators.base.PayloadStream` of consecutive slices of the source.

    Besides the whole payload's digest it keeps one digest per slice (``part_sizes``), so a
    multipart source's ETag and COMPOSITE checksums can be checked against the bytes read.
    With ``source``, the payload is the whole object: after its last byte it checks that
    the source has nothing more and that the bytes match ``source``'s size, ETag and
    checksums (SHA256 included), and raises :class:`VerificationError` from the iterator
    otherwise, so the target commits nothing (the Backend's atomic-write contract).
    """

    def __init__(
        self,
        reader: _SourceReader,
        part_sizes: list[int],
        algorithms: tuple[str, ...],
        on_bytes: Callable[[int], None],
        source: ObjectInfo | None = None,
    ) -> None:
        self._reader = reader
        self._part_sizes = part_sizes
        self._algorithms = algorithms
        self._on_bytes = on_bytes
        self._source = source
        self._whole = Digester(algorithms)
        self.parts: list[PayloadDigest] = []
        self._done = False
        self._started = False

    @property
    def declared_size(self) -> int | None:
        return sum(self._part_sizes)

    def digest(self) -> PayloadDigest:
        if not self._done:
            raise RuntimeError("digest() before the payload was fully read")
        return self._whole.result()

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a payload can be read only once")
        self._started = True
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        for size in self._part_sizes:
            part = Digester(self._algorithms)
            async for chunk in self._reader.take(size):
                part.update(chunk)
                self._whole.update(chunk)
                self._on_bytes(len(chunk))
                yield chunk
            self.parts.append(part.result())
        if self._source is not None:
            await self._reader.finish()
            verify_source_read(self._source, self._whole.result(), self.parts)
        self._done = True


# Verification


class VerificationError(S3Error):
    """A copy (or the source read) does not match what the source reports.

    An ``S3Error`` (``BadDigest``) so that, raised from a copy's payload stream, translators
    treat it as the failed verification it is and commit nothing."""

    def __init__(self, message: str) -> None:
        super().__init__("BadDigest", message)


def _is_md5(etag: str) -> bool:
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


def _is_composite(source: ObjectInfo, value: str) -> bool:
    return source.checksum_type == "COMPOSITE" or "-" in value


def verify_source_read(
    source: ObjectInfo, whole: PayloadDigest, parts: list[PayloadDigest]
) -> None:
    """The bytes read are the object the source describes: size, ETag, checksums."""
    if whole.size != source.size:
        raise VerificationError(f"read {whole.size} bytes, the source reports {source.size}")
    if "-" in source.etag and len(parts) > 1:
        if multipart_etag(part.md5_hex for part in parts) != source.etag:
            raise VerificationError(f"the bytes read do not match source ETag {source.etag}")
    elif _is_md5(source.etag) and whole.md5_hex != source.etag:
        raise VerificationError(
            f"MD5 of the bytes read {whole.md5_hex} differs from source ETag {source.etag}"
        )
    for algorithm, value in source.checksums.items():
        if _is_composite(source, value):
            if not value.endswith(f"-{len(parts)}"):
                continue  # the source does not tell its part layout: nothing to check with
            computed = checksums.composite(algorithm, [p.checksums[algorithm] for p in parts])
        else:
            computed = whole.checksums[algorithm]
        if computed != value:
            raise VerificationError(
                f"{algorithm} of the bytes read {computed} differs from the source's {value}"
            )


def verify_target(
    stored: ObjectInfo, size: int, etag: str, expected_checksums: Mapping[str, str]
) -> None:
    """The target object, as read back, has the size, ETag and checksums that were sent."""
    if stored.size != size:
        raise VerificationError(f"the target holds {stored.size} bytes, expected {size}")
    if stored.etag != etag:
        raise VerificationError(f"the target ETag is {stored.etag}, expected {etag}")
    for algorithm, value in expected_checksums.items():
        found = stored.checksums.get(algorithm)
        if found != value:
            raise VerificationError(
                f"the target {algorithm} checksum is {found}, expected {value} "
                "(the target did not keep the checksum)"
            )


def same_object(source: ObjectInfo, target: ObjectInfo) -> bool:
    """Whether ``target`` already is a copy of ``source`` (without reading any bytes)."""
    if source.size != target.size:
        return False
    if (source.headers, source.user_metadata) != (target.headers, target.user_metadata):
        return False
    if source.etag == target.etag:
        return all(target.checksums.get(a) == v for a, v in source.checksums.items())
    # A multipart source copied as one object: a full-object checksum still identifies it.
    shared = [
        algorithm
        for algorithm, value in source.checksums.items()
        if not _is_composite(source, value) and algorithm in target.checksums
    ]
    return bool(shared) and all(source.checksums[a] == target.checksums[a] for a in shared)


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
                await self._copy(bucket, listed)
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

    async def _copy(self, bucket: str, listed: ObjectInfo) -> None:
        key = listed.key
        result = await self.source.get_object(self.ctx, bucket, key, GetOptions())
        source = result.info
        reader = _SourceReader(result.body)
        if source.etag != listed.etag:
            await reader.close()
            raise VerificationError("the source object changed since it was listed; rerun")
        if len(source.parts) > 1 and not self.options.flatten_multipart:
            try:
                await self._copy_parts(bucket, source, reader)
                return
            except _LayoutRefused:
                pass  # copied as one object below, from a fresh read
            finally:
                await reader.close()
            result = await self.source.get_object(self.ctx, bucket, key, GetOptions())
            reader = _SourceReader(result.body)
            if result.info.etag != source.etag:
                await reader.close()
                raise VerificationError("the source object changed during the copy")
        try:
            await self._copy_whole(bucket, source, reader)
        finally:
            await reader.close()

    async def _copy_whole(self, bucket: str, source: ObjectInfo, reader: _SourceReader) -> None:
        """Stream the source into one ``put_object`` that commits only if the bytes read
        match the source (checked at the end of the stream), then verify the target."""
        part_sizes = [p.size for p in source.parts] if len(source.parts) > 1 else [source.size]
        payload = _CopyPayload(
            reader, part_sizes, _algorithms(source), self.progress.transferred, source
        )
        await self.target.put_object(
            self.ctx, bucket, source.key, payload, _metadata(source), WriteConditions()
        )
        whole = payload.digest()
        stored = await self.target.head_object(self.ctx, bucket, source.key)
        verify_target(stored, source.size, whole.md5_hex, whole.checksums)
        if whole.md5_hex != source.etag:
            self.summary.flattened.append((bucket, source.key))
        self.summary.bytes_copied += whole.size

    async def _copy_parts(self, bucket: str, source: ObjectInfo, reader: _SourceReader) -> None:
        """Copy a multipart source as a multipart upload with the same part sizes, so the
        ``-N`` ETag and the checksum (COMPOSITE or FULL_OBJECT) stay the same.

        Raises :class:`_LayoutRefused` (after aborting the upload) when the target cannot
        hold that layout; the caller then copies the object as one.
        """
        algorithms = _algorithms(source)
        algorithm = checksums.parse_algorithm(algorithms[0]) if algorithms else None
        try:
            upload = await self.target.create_multipart_upload(
                self.ctx,
                bucket,
                source.key,
                _metadata(source),
                algorithm,
                source.checksum_type if algorithm else None,
            )
        except S3Error as error:
            if error.code in _LAYOUT_REFUSED:
                raise _LayoutRefused from error
            raise
        completed: list[CompletedPart] = []
        read: list[PayloadDigest] = []
        try:
            for number, part in enumerate(source.parts, start=1):
                payload = _CopyPayload(reader, [part.size], algorithms, self.progress.transferred)
                stored_part = await self.target.upload_part(
                    self.ctx, bucket, source.key, upload.upload_id, number, payload
                )
                digest = payload.digest()
                _verify_part(number, part, digest, stored_part)
                read.append(digest)
                completed.append(CompletedPart(number, stored_part.etag, dict(digest.checksums)))
            await reader.finish()
            verify_source_read(source, _whole_from_parts(source, read), read)
            await self.target.complete_multipart_upload(
                self.ctx, bucket, source.key, upload.upload_id, completed, WriteConditions()
            )
        except BaseException as error:
            with contextlib.suppress(S3Error):
                await self.target.abort_multipart_upload(
                    self.ctx, bucket, source.key, upload.upload_id
                )
            if isinstance(error, S3Error) and error.code in _LAYOUT_REFUSED:
                raise _LayoutRefused from error
            raise
        stored = await self.target.head_object(self.ctx, bucket, source.key)
        verify_target(stored, source.size, source.etag, source.checksums)
        self.summary.bytes_copied += source.size


def _describe(error: Exception) -> str:
    if isinstance(error, S3Error):
        return f"{error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"


class _LayoutRefused(Exception):
    """The target cannot store a multipart source with its part layout."""


def _metadata(source: ObjectInfo) -> WriteMetadata:
    return WriteMetadata(dict(source.headers), dict(source.user_metadata))


def _algorithms(source: ObjectInfo) -> tuple[str, ...]:
    return tuple(sorted(source.checksums))


def _whole_from_parts(source: ObjectInfo, parts: list[PayloadDigest]) -> PayloadDigest:
    """The whole object's full-object CRCs, combined from the parts' (no MD5)."""
    combined = {
        algorithm: checksums.combine_full_object(
            algorithm, [(p.checksums[algorithm], p.size) for p in parts]
        )
        for algorithm, value in source.checksums.items()
        if not _is_composite(source, value) and algorithm in checksums.CRC_ALGORITHMS
    }
    return PayloadDigest(sum(p.size for p in parts), "", combined)


def _verify_part(number: int, source: PartInfo, read: PayloadDigest, stored: PartInfo) -> None:
    if stored.etag != read.md5_hex:
        raise VerificationError(f"part {number}: the target ETag {stored.etag} is not the MD5")
    if source.etag and source.etag != read.md5_hex:
        raise VerificationError(f"part {number}: the bytes read differ from the source part")
    for algorithm, value in source.checksums.items():
        if read.checksums.get(algorithm, value) != value:
            raise VerificationError(f"part {number}: {algorithm} differs from the source part")


async def migrate(
    source: ReadableStore,
    target: Backend,
    options: MigrateOptions,
    progress: Progress | None = None,
) -> Summary:
    """Copy ``source``'s buckets (or ``options.bucket``) to ``target``; see the module doc."""
    return await Migration(source, target, options, progress).run()


# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``migrate`` subcommand's options."""
    parser.add_argument("--from", dest="source", required=True, help="source backend URL")
    parser.add_argument("--to", dest="target", required=True, help="target backend URL")
    parser.add_argument("--bucket", help="migrate only this bucket")
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be copied, change nothing"
    )
    parser.add_argument(
        "--state", type=Path, help="state file: records copied keys so a rerun resumes"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="objects copied at once (default 4)"
    )
    parser.add_argument(
        "--limit", type=int, help="stop after copying this many objects (resume with --state)"
    )
    parser.add_argument(
        "--flatten-multipart",
        action="store_true",
        help="store multipart objects as single objects (their ETag becomes the MD5)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``migrate`` from parsed arguments; the exit status."""
    try:
        source_spec = parse_backend_url(args.source)
        target_spec = parse_backend_url(args.target)
        if source_spec.redacted() == target_spec.redacted():
            raise BackendConfigError("--from and --to are the same")
        source = create_backend(source_spec, environ, must_exist=True)
        target = create_backend(target_spec, environ)
    except NoStoreError as error:
        print(f"pagewright-gateway migrate: --from {error}", file=sys.stderr)
        return 2
    except (BackendConfigError, NotImplementedError) as error:
        print(f"pagewright-gateway migrate: {error}", file=sys.stderr)
        return 2
    options = MigrateOptions(
        bucket=args.bucket,
        dry_run=args.dry_run,
        state_file=args.state,
        concurrency=args.concurrency,
        limit=args.limit,
        flatten_multipart=args.flatten_multipart,
        source_label=source_spec.redacted(),
        target_label=target_spec.redacted(),
    )
    with RichProgress(enabled=not args.no_progress) as progress:
        try:
            summary = asyncio.run(_run_opened(source, target, options, progress))
        except (MigrationError, BackendConfigError) as error:
            print(f"pagewright-gateway migrate: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; rerun with the same --state to resume", file=sys.stderr)
            return 130
    print(format_summary(summary, options))
    return 1 if summary.failures else 0


async def _run_opened(
    source: Backend, target: Backend, options: MigrateOptions, progress: Progress
) -> Summary:
    await _start(source, f"the source {options.source_label}")
    try:
        await _start(target, f"the target {options.target_label}")
        try:
            return await migrate(source, target, options, progress)
        finally:
            await target.close()
    finally:
        await source.close()


async def _start(backend: Backend, role: str) -> None:
    """Start ``backend``; a store that cannot be opened is a MigrationError naming ``role``."""
    try:
        await backend.start()
    except S3Error as error:
        raise MigrationError(f"{role} cannot be opened: {error.message}") from error


def format_summary(summary: Summary, options: MigrateOptions) -> str:
    lines: list[str] = []
    if options.dry_run:
        lines.extend(f"would copy {b}/{k} ({size} bytes)" for b, k, size in summary.planned)
        total = sum(size for _, _, size in summary.planned)
        lines.append(
            f"dry run: {len(summary.planned)} objects ({total} bytes) would be copied, "
            f"{summary.skipped} already there; nothing was changed"
        )
    else:
        lines.append(
            f"buckets: {len(summary.buckets)}  copied: {summary.copied}  "
            f"skipped: {summary.skipped}  failed: {summary.failed}  "
            f"bytes: {summary.bytes_copied}  duration: {summary.duration:.1f}s"
        )
    if summary.flattened:
        lines.append(
            f"{len(summary.flattened)} multipart objects were stored as single objects "
            "(their ETag is now the MD5 of their bytes; COMPOSITE checksums became FULL_OBJECT)"
        )
    for failure in summary.failures[:50]:
        lines.append(f"FAILED {failure.bucket}/{failure.key}: {failure.reason}")
    if len(summary.failures) > 50:
        lines.append(f"... and {len(summary.failures) - 50} more failures")
    if summary.stopped_at_limit:
        lines.append(f"stopped after --limit {options.limit}; rerun to continue")
    return "\n".join(lines)
