"""``pagewright-gateway reindex``: rebuild the catalog from the configured backend.

Reads the same settings as ``serve`` (``--config``, ``PWG_*``, flags) and builds the backend
the same way, then runs :func:`policy.reindex.reindex` and prints its summary. On a
terminal a progress bar on stderr follows the sites and objects (``--no-progress``: none).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

from commands.progress import ReindexBar
from commands.store import add_storage_arguments, run_on_store, started_backend, started_catalog
from gateway.settings import Settings
from policy.reindex import ReindexProgress, ReindexReport, reindex
from translators.base import Backend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``reindex`` subcommand's options."""
    add_storage_arguments(parser)
    parser.add_argument("--bucket", help="reindex only this bucket")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (it shows on terminals only)"
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``reindex`` from parsed arguments; the exit status."""

    def work(settings: Settings, backend: Backend) -> int:
        with ReindexBar(enabled=not args.no_progress) as progress:
            report = asyncio.run(_reindex(settings, backend, args.bucket, progress))
        print(report.summary())
        return 0

    return run_on_store("reindex", args, environ, work)


async def _reindex(
    settings: Settings, backend: Backend, bucket: str | None, progress: ReindexProgress
) -> ReindexReport:
    async with started_catalog(settings) as catalog, started_backend(backend):
        return await reindex(backend, catalog, bucket=bucket, progress=progress)
