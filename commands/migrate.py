"""``pagewright-gateway migrate``: the command line of :mod:`commands.migrate_run`.

Opens both backend URLs, runs the migration with a progress bar on terminals, and prints
its summary. Exit status: 0 done, 1 some object failed, 2 unusable options or stores,
130 interrupted (rerun with the same ``--state`` to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from commands.migrate_run import MigrateOptions, MigrationError, Progress, Summary, migrate
from commands.progress import MigrateBar
from commands.store import open_backend
from core.errors import S3Error
from translators.base import Backend
from translators.config import BackendConfigError, NoStoreError, parse_backend_url


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
        source = open_backend(source_spec, environ, must_exist=True)
        target = open_backend(target_spec, environ, must_exist=False)
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
    with MigrateBar(enabled=not args.no_progress) as progress:
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
