"""``pagewright-gateway reindex``: rebuild the catalog from the configured backend.

Reads the same settings as ``serve`` (``--config``, ``PWG_*``, flags) and builds the backend
the same way, then runs :func:`policy.reindex.reindex` and prints its summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping

from gateway.errors import S3Error
from gateway.settings import Settings
from gateway.storage_command import add_storage_arguments, open_storage
from policy.catalog import SqlCatalog
from policy.reindex import ReindexReport, reindex
from translators.base import Backend
from translators.config import BackendConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``reindex`` subcommand's options."""
    add_storage_arguments(parser)
    parser.add_argument("--bucket", help="reindex only this bucket")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``reindex`` from parsed arguments; the exit status."""
    storage = open_storage("reindex", args, environ)
    if storage is None:
        return 2
    settings, backend = storage
    try:
        report = asyncio.run(_reindex(settings, backend, args.bucket))
    except BackendConfigError as error:
        print(f"pagewright-gateway reindex: {error}", file=sys.stderr)
        return 2
    except S3Error as error:
        print(f"pagewright-gateway reindex: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


async def _reindex(settings: Settings, backend: Backend, bucket: str | None) -> ReindexReport:
    catalog = SqlCatalog(settings.catalog)
    await catalog.start()
    try:
        await backend.start()
        try:
            return await reindex(backend, catalog, bucket=bucket)
        finally:
            await backend.close()
    finally:
        await catalog.close()
