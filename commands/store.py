"""What the offline subcommands (reindex, verify, api-key) share: the storage options and
how the backend is built from them — the same settings and registry ``serve`` uses — and
the rule that they work on an existing store and catalog, never on new empty ones."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from gateway.settings import Settings, SettingsError, load_settings
from policy.catalog_probe import CatalogUnreachable, catalog_exists, describe
from translators.base import Backend
from translators.config import BackendConfigError, NoStoreError, parse_backend_url
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
    command: str,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    need_catalog: bool = False,
) -> tuple[Settings, Backend] | None:
    """Settings and the (unstarted) backend of an existing store, from the storage options;
    None after printing why they are unusable (the caller exits with status 2).

    The store must exist: a filesystem directory without one is refused before anything is
    created there (remote translators refuse a missing bucket or container when they
    start). With ``need_catalog`` the catalog database must exist too.
    """
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
        spec = parse_backend_url(settings.backend_url)
        backend = create_backend(spec, environ, must_exist=True)
        if need_catalog:
            require_catalog(settings)
        return settings, backend
    except NoStoreError as error:
        hint = "point --data-dir, --backend or --config at the gateway's data"
        print(f"pagewright-gateway {command}: {error}; {hint}", file=sys.stderr)
        return None
    except (SettingsError, BackendConfigError, NotImplementedError) as error:
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return None


def require_catalog(settings: Settings) -> None:
    """SettingsError unless the configured catalog database holds a catalog."""
    try:
        exists = catalog_exists(settings.catalog)
    except CatalogUnreachable as error:
        raise SettingsError(
            f"cannot open the catalog {describe(settings.catalog)}: {error}"
        ) from error
    if not exists:
        raise SettingsError(
            f"no catalog at {describe(settings.catalog)}; point --data-dir, --catalog-url "
            "or --config at the gateway's (its first start creates it)"
        )
