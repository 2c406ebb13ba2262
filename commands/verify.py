"""``pagewright-gateway verify``: re-hash stored artifacts against their stored SHA256.

Reads the same settings as ``serve`` (``--config``, ``PWG_*``, flags) and builds the backend
the same way, then runs :func:`policy.verify.verify_artifacts`, printing one line per
artifact and a summary. Corrupt artifacts are marked in the catalog unless ``--no-catalog``.
Exit status: 0 all verified, 1 some artifact is corrupt (or the storage failed), 2 bad
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Mapping

from commands.store import (
    add_storage_arguments,
    failed,
    open_storage,
    plaintext_view,
    started_catalog,
)
from core.errors import S3Error
from gateway.settings import Settings
from policy.verify import VerifySummary, verify_artifacts
from translators.base import Backend
from translators.config import BackendConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``verify`` subcommand's options."""
    add_storage_arguments(parser)
    parser.add_argument("--no-catalog", action="store_true", help="do not mark corrupt rows")
    parser.add_argument("--bucket", help="verify only this bucket")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``verify`` from parsed arguments; the exit status."""
    storage = open_storage("verify", args, environ, need_catalog=not args.no_catalog)
    if storage is None:
        return 2
    settings, stored = storage
    try:
        backend = plaintext_view(settings, stored)
        summary = asyncio.run(_verify(settings, backend, args.bucket, not args.no_catalog))
    except (BackendConfigError, S3Error) as error:
        return failed("verify", error)
    print(summary.text())
    return 1 if summary.corrupt else 0


async def _verify(
    settings: Settings, backend: Backend, bucket: str | None, use_catalog: bool
) -> VerifySummary:
    summary = VerifySummary()
    async with contextlib.AsyncExitStack() as opened:
        catalog = (
            await opened.enter_async_context(started_catalog(settings)) if use_catalog else None
        )
        await backend.start()
        try:
            async for result in verify_artifacts(backend, bucket=bucket, catalog=catalog):
                summary.add(result)
                print(result.line(), flush=True)
        finally:
            await backend.close()
    return summary
