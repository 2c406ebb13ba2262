"""``pagewright-gateway reindex``: rebuild the catalog from the configured backend.

Reads the same settings as ``serve`` (``--config``, ``PWG_*``, flags) and builds the backend
the same way, then runs :func:`policy.reindex.reindex` and prints its summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from gateway.errors import S3Error
from gateway.settings import Settings, SettingsError, load_settings
from policy.catalog import SqlCatalog
from policy.reindex import ReindexReport, reindex
from translators.base import Backend
from translators.config import BackendConfigError, parse_backend_url
from translators.registry import create_backend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``reindex`` subcommand's options."""
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", help="the gateway's data directory (default ./data)")
    parser.add_argument("--backend", help="storage URL (default: file://<data-dir>/storage)")
    parser.add_argument(
        "--catalog-url",
        help="catalog database URL (default: sqlite:///<data-dir>/catalog.sqlite3)",
    )
    parser.add_argument("--bucket", help="reindex only this bucket")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``reindex`` from parsed arguments; the exit status."""
    try:
        settings = load_settings(
            config_file=args.config,
            environ=environ,
            overrides={
                "data_dir": args.data_dir,
                "backend": args.backend,
                "catalog_url": args.catalog_url,
            },
        )
        backend = create_backend(parse_backend_url(settings.backend_url), environ)
    except (SettingsError, BackendConfigError, NotImplementedError) as error:
        print(f"pagewright-gateway reindex: {error}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_reindex(settings, backend, args.bucket))
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
