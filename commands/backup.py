"""``pagewright-gateway backup FILE`` and ``restore FILE``: the catalog's own state, saved
and loaded (:mod:`policy.backup`).

Both work on the catalog database directly (the same settings as ``serve``: ``--config``,
``PWG_*``, ``--data-dir``, ``--catalog-url``), so they need no running gateway; restore
into a catalog no gateway is using. ``restore`` refuses a file of another format or
version, a damaged or truncated one, and a catalog that is not empty unless ``--replace``.
When the restored catalog holds object lock state, ``restore`` also writes the versions'
lock records into the store (``--backend``, as ``serve`` names it), so that a later
``reindex`` keeps those locks; without a store at hand it says so and the catalog is
restored all the same. Exit status: 0 done, 1 the file or the catalog (database, URL)
refused, 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from commands.store import (
    add_catalog_arguments,
    open_backend,
    open_catalog_settings,
    started_backend,
    started_catalog,
)
from core.errors import S3Error
from gateway.settings import Settings
from policy.backup import backup_to_file, record_locks, restore_backup
from policy.catalog import SqlCatalog
from policy.object_lock import ObjectLocks
from translators.config import BackendConfigError, NoStoreError, parse_backend_url


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backup`` subcommand's options."""
    parser.add_argument("file", type=Path, help="the backup file to write (mode 0600)")
    add_catalog_arguments(parser)


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``restore`` subcommand's options."""
    parser.add_argument("file", type=Path, help="a file written by `backup`")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="delete what the catalog holds first (otherwise it must be empty)",
    )
    add_catalog_arguments(parser, backend=True)


def run_backup(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``backup``; the exit status."""
    return _run("backup", args, environ)


def run_restore(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``restore``; the exit status."""
    return _run("restore", args, environ)


def _run(command: str, args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = open_catalog_settings(command, args, environ, need_catalog=False)
    if settings is None:
        return 2
    try:
        summary = asyncio.run(_work(command, settings, args, environ))
    except (ValueError, OSError, SQLAlchemyError) as error:  # BackupError is a ValueError
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


async def _work(
    command: str, settings: Settings, args: argparse.Namespace, environ: Mapping[str, str]
) -> str:
    async with started_catalog(settings) as catalog:
        if command == "backup":
            counts = await backup_to_file(catalog, args.file)
            return f"backed up {counts.text()} to {args.file}"
        counts = await restore_backup(catalog, args.file, replace=args.replace)
        summary = f"restored {counts.text()} from {args.file}"
        if await ObjectLocks(catalog).all_buckets():
            summary += "\n" + await _record_locks(catalog, settings, environ)
        return summary


async def _record_locks(catalog: SqlCatalog, settings: Settings, environ: Mapping[str, str]) -> str:
    """Write the restored versions' lock records into the store; what was done."""
    try:
        backend = open_backend(parse_backend_url(settings.backend_url), environ, must_exist=True)
    except (NoStoreError, BackendConfigError, NotImplementedError) as error:
        return (
            f"lock records not written ({error}): restore again with the store at hand, "
            "or a later reindex will not keep the versions' locks"
        )
    try:
        async with started_backend(backend):
            written = await record_locks(catalog, backend)
    except S3Error as error:
        return f"lock records not written ({error.message}): restore again"
    return f"wrote {written} object lock record(s) into the store"
