"""How every command opens the gateway's store: the storage options, the settings read from
them (the same settings ``serve`` reads), the backend built through the translator registry,
and the catalog.

The offline commands (reindex, verify, api-key, backup, restore, users, keys, sites) work
on an existing store and catalog, never on new empty ones; ``migrate`` opens its two backend
URLs here too, and ``serve`` builds its backend here. A function that returns ``None`` has
printed why the store is unusable: the caller exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from core.errors import S3Error
from gateway.settings import Settings, SettingsError, load_settings
from policy.catalog import SqlCatalog
from policy.catalog_probe import CatalogUnreachable, catalog_exists, describe
from policy.encryption import EncryptingBackend
from policy.identities import IdentityStore
from policy.secret_box import MASTER_KEY_FILE, SecretBox, load_master_key
from policy.sse_crypto import SSE_PURPOSE, Keyring
from translators.base import Backend
from translators.config import BackendConfigError, BackendSpec, NoStoreError, parse_backend_url
from translators.registry import create_backend

#: What to do when the store a command names does not exist.
NO_STORE_HINT = "point --data-dir, --backend or --config at the gateway's data"


def add_catalog_arguments(parser: argparse.ArgumentParser, *, backend: bool = False) -> None:
    """``--config``, ``--data-dir``, (with ``backend``: ``--backend``) and ``--catalog-url``."""
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", help="the gateway's data directory (default ./data)")
    if backend:
        parser.add_argument("--backend", help="storage URL (default: file://<data-dir>/storage)")
    parser.add_argument(
        "--catalog-url",
        help="catalog database URL (default: sqlite:///<data-dir>/catalog.sqlite3)",
    )


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--data-dir``, ``--backend`` and ``--catalog-url``."""
    add_catalog_arguments(parser, backend=True)


def open_backend(spec: BackendSpec, environ: Mapping[str, str], *, must_exist: bool) -> Backend:
    """The (unstarted) backend ``spec`` names, built by the translator registry with the
    storage SDKs' standard variables from ``environ``.

    With ``must_exist`` a missing store is a NoStoreError, raised before anything is created
    (remote translators refuse a missing bucket or container when they start). Unusable
    options are a BackendConfigError (or NotImplementedError for an unsupported one).
    """
    return create_backend(spec, environ, must_exist=must_exist)


def open_storage(
    command: str,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    need_catalog: bool = False,
) -> tuple[Settings, Backend] | None:
    """Settings and the (unstarted) backend of an existing store, from the storage options
    (:func:`add_storage_arguments`); None after printing why they are unusable.

    The store must exist (:func:`open_backend`). With ``need_catalog`` the catalog database
    must exist too.
    """
    try:
        settings = _settings(args, environ)
        backend = open_backend(parse_backend_url(settings.backend_url), environ, must_exist=True)
        if need_catalog:
            require_catalog(settings)
        return settings, backend
    except NoStoreError as error:
        print(f"pagewright-gateway {command}: {error}; {NO_STORE_HINT}", file=sys.stderr)
        return None
    except (SettingsError, BackendConfigError, NotImplementedError) as error:
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return None


def plaintext_view(settings: Settings, backend: Backend) -> Backend:
    """``backend`` read as the gateway reads it: encrypted objects decrypted, with their
    plaintext sizes and hashes (``policy.encryption``), under the gateway's master key and
    key ring; ``backend`` itself when there is no master key (nothing could be encrypted)."""
    if not settings.master_key and not (settings.data_dir / MASTER_KEY_FILE).is_file():
        return backend
    box = master_key(settings)
    return EncryptingBackend(backend, Keyring(box.subkeys(SSE_PURPOSE), settings.kms_key_ids))


def run_on_store(
    command: str,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    work: Callable[[Settings, Backend], int],
    *,
    need_catalog: bool = False,
) -> int:
    """Open the store (:func:`open_storage`) and run ``work`` on its settings and
    :func:`plaintext_view`; the exit status: ``work``'s, 2 when the store is unusable, or
    :func:`failed`'s when the backend refuses its options or the storage fails."""
    storage = open_storage(command, args, environ, need_catalog=need_catalog)
    if storage is None:
        return 2
    settings, stored = storage
    try:
        return work(settings, plaintext_view(settings, stored))
    except (BackendConfigError, S3Error) as error:
        return failed(command, error)


@asynccontextmanager
async def started_backend(backend: Backend) -> AsyncIterator[Backend]:
    """``backend``, started for the block and closed after it."""
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


def open_catalog_settings(
    command: str, args: argparse.Namespace, environ: Mapping[str, str], *, need_catalog: bool
) -> Settings | None:
    """Settings from the catalog options (:func:`add_catalog_arguments`); None after printing
    why they are unusable. With ``need_catalog`` the catalog database must exist."""
    try:
        settings = _settings(args, environ)
        if need_catalog:
            require_catalog(settings)
    except SettingsError as error:
        print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
        return None
    return settings


def failed(command: str, error: BackendConfigError | S3Error) -> int:
    """Print why ``command`` failed on its store; the exit status: 2 for options the backend
    refused when it started (``BackendConfigError``), 1 for a storage failure."""
    print(f"pagewright-gateway {command}: {error}", file=sys.stderr)
    return 2 if isinstance(error, BackendConfigError) else 1


@asynccontextmanager
async def started_catalog(settings: Settings) -> AsyncIterator[SqlCatalog]:
    """The configured catalog, started for the block and closed after it."""
    catalog = SqlCatalog(settings.catalog)
    await catalog.start()
    try:
        yield catalog
    finally:
        await catalog.close()


@asynccontextmanager
async def started_identities(settings: Settings) -> AsyncIterator[IdentityStore]:
    """The identity store over the configured catalog (started for the block), sealing
    with the gateway's master key (:func:`master_key`)."""
    box = master_key(settings)
    async with started_catalog(settings) as catalog:
        yield IdentityStore(catalog, box)


def master_key(settings: Settings) -> SecretBox:
    """The master key the gateway seals secrets with: configured, or kept in the data dir.
    SettingsError when there is none: a command never makes one, since secrets sealed under
    a key the gateway does not hold could not be opened by it."""
    if not settings.master_key and not (settings.data_dir / MASTER_KEY_FILE).is_file():
        raise SettingsError(
            f"no master key: neither master_key (PWG_MASTER_KEY) nor "
            f"{settings.data_dir / MASTER_KEY_FILE} (the gateway's first start makes it); "
            "point --data-dir or --config at the gateway's"
        )
    try:
        return load_master_key(settings.data_dir, settings.master_key, settings.retired_master_keys)
    except ValueError as error:
        raise SettingsError(f"master key: {error}") from error


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


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings ``serve`` would read, with the storage options ``args`` holds."""
    return load_settings(
        config_file=args.config,
        environ=environ,
        overrides={
            "data_dir": args.data_dir,
            "backend": getattr(args, "backend", None),
            "catalog_url": args.catalog_url,
        },
    )
