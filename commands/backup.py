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

from gateway.settings import Settings, SettingsError, load_settings
from policy.backup import backup_to_file, restore_backup
from policy.catalog import SqlCatalog


def _catalog_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", help="the gateway's data directory (default ./data)")
    parser.add_argument(
        "--catalog-url",
        help="catalog database URL (default: sqlite:///<data-dir>/catalog.sqlite3)",
    )


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backup`` subcommand's options."""
    parser.add_argument("file", type=Path, help="the backup file to write (mode 0600)")
    _catalog_arguments(parser)


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``restore`` subcommand's options."""
    parser.add_argument("file", type=Path, help="a file written by `backup`")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="delete what the catalog holds first (otherwise it must be empty)",
    )
    _catalog_arguments(parser)


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    return load_settings(
        config_file=args.config,
        environ=environ,
        overrides={"data_dir": args.data_dir, "catalog_url": args.catalog_url},
    )


def run_backup(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``backup``; the exit status."""
    return _run("backup", args, environ)


def run_restore(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``restore``; the exit status."""
    return _run("restore", args, environ)


def _run(command: str, args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        settings = _settings(args, environ)
    except SettingsError as error:
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(_work(command, SqlCatalog(settings.catalog), args))
    except (ValueError, OSError, SQLAlchemyError) as error:  # BackupError is a ValueError
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


async def _work(command: str, catalog: SqlCatalog, args: argparse.Namespace) -> str:
    await catalog.start()
    try:
        if command == "backup":
            counts = await backup_to_file(catalog, args.file)
            return f"backed up {counts.text()} to {args.file}"
        counts = await restore_backup(catalog, args.file, replace=args.replace)
        return f"restored {counts.text()} from {args.file}"
    finally:
        await catalog.close()
