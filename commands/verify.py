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

from commands.store import add_storage_arguments, run_on_store, started_backend, started_catalog
from gateway.settings import Settings
from policy.verify import VerifySummary, verify_artifacts
from translators.base import Backend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``verify`` subcommand's options."""
    add_storage_arguments(parser)
    parser.add_argument("--no-catalog", action="store_true", help="do not mark corrupt rows")
    parser.add_argument("--bucket", help="verify only this bucket")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``verify`` from parsed arguments; the exit status."""

    def work(settings: Settings, backend: Backend) -> int:
        summary = asyncio.run(_verify(settings, backend, args.bucket, not args.no_catalog))
        print(summary.text())
        return 1 if summary.corrupt else 0

    return run_on_store("verify", args, environ, work, need_catalog=not args.no_catalog)


async def _verify(
    settings: Settings, backend: Backend, bucket: str | None, use_catalog: bool
) -> VerifySummary:
    summary = VerifySummary()
    async with contextlib.AsyncExitStack() as opened:
        catalog = (
            await opened.enter_async_context(started_catalog(settings)) if use_catalog else None
        )
        await opened.enter_async_context(started_backend(backend))
        async for result in verify_artifacts(backend, bucket=bucket, catalog=catalog):
            summary.add(result)
            print(result.line(), flush=True)
    return summary
