"""What the offline subcommands (reindex, verify) share: the storage options and how the
backend is built from them — the same settings and registry ``serve`` uses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from gateway.settings import Settings, SettingsError, load_settings
from translators.base import Backend
from translators.config import BackendConfigError, parse_backend_url
from translators.registry import create_backend


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--data-dir``, ``--backend`` and ``--catalog-url``."""
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", help="the gateway's data directory (default ./data)")
    parser.add_argument("--backend", help="storage URL (default: file://<data-dir>/storage)")
    parser.add_argument(
        "--catalog-url",
        help="catalog database URL (default: sqlite:///<data-dir>/catalog.sqlite3)",
    )


def open_storage(
    command: str, args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Settings, Backend] | None:
    """Settings and the (unstarted) backend from the storage options; None after printing
    why they are unusable (the caller exits with status 2)."""
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
        return settings, create_backend(parse_backend_url(settings.backend_url), environ)
    except (SettingsError, BackendConfigError, NotImplementedError) as error:
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return None
