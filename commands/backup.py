"""``pagewright-gateway backup FILE`` and ``restore FILE``: the catalog's own state, saved
and loaded (:mod:`policy.backup`).

Both work on the catalog database directly (the same settings as ``serve``: ``--config``,
``PWG_*``, ``--data-dir``, ``--catalog-url``), so they need no running gateway; restore
into a catalog no gateway is using. ``restore`` refuses a file of another format or
version, a damaged or truncated one, and a catalog that is not empty unless ``--replace``.
Exit status: 0 done, 1 the file or the catalog (database, URL) refused, 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from commands.store import add_catalog_arguments, open_catalog_settings, started_catalog
from gateway.settings import Settings
from policy.backup import backup_to_file, restore_backup


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
    add_catalog_arguments(parser)


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
        summary = asyncio.run(_work(command, settings, args))
    except (ValueError, OSError, SQLAlchemyError) as error:  # BackupError is a ValueError
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


async def _work(command: str, settings: Settings, args: argparse.Namespace) -> str:
    async with started_catalog(settings) as catalog:
        if command == "backup":
            counts = await backup_to_file(catalog, args.file)
            return f"backed up {counts.text()} to {args.file}"
        counts = await restore_backup(catalog, args.file, replace=args.replace)
        return f"restored {counts.text()} from {args.file}"
