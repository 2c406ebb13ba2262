"""``pagewright-gateway``: the command line. The only place that reads the environment."""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import uvicorn

from commands import api_key, artifacts, backup, migrate, reindex, verify
from commands.parser import CommandParser, add_command, add_commands
from gateway import logs
from gateway.app import Gateway
from gateway.http_protocol import bounded_protocol
from gateway.settings import Settings, SettingsError, load_settings
from policy.credentials import CredentialStore, load_root_credentials
from policy.stack import build_stack
from translators.config import BackendConfigError, parse_backend_url
from translators.registry import create_backend

DESCRIPTION = (
    "PageWright Gateway: an S3-compatible gateway for static-site build artifacts. "
    "'pagewright-gateway serve' starts it; each command's --help lists its options. "
    "Settings come from --config FILE, PWG_* environment variables and these flags."
)


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="pagewright-gateway", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {metadata.version('pagewright-gateway')}",
        help="print the version and exit",
    )
    commands = add_commands(parser, "command")
    serve = add_command(commands, "serve", "run the S3 endpoint")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--data-dir", help="where objects are stored (default ./data)")
    serve.add_argument(
        "--backend",
        help="storage URL: file:///path, s3://bucket[/prefix], azure://container[/prefix], "
        "gcs://bucket[/prefix] (default: file://<data-dir>/storage)",
    )
    serve.add_argument(
        "--catalog-url",
        help="catalog database URL, e.g. postgresql://user@host/db "
        "(default: sqlite:///<data-dir>/catalog.sqlite3)",
    )
    serve.add_argument("--address", help="HOST:PORT to listen on (default 127.0.0.1:9000)")
    serve.add_argument("--region", help="the region clients sign for (default us-east-1)")
    serve.add_argument(
        "--domain",
        action="append",
        dest="domains",
        help="enable virtual-hosted-style requests under this domain (repeatable)",
    )
    serve.add_argument("--log-level", help="debug, info, warning or error (default info)")
    serve.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    serve.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    migrate.add_arguments(
        add_command(commands, "migrate", "copy buckets from one backend URL to another")
    )
    reindex.add_arguments(add_command(commands, "reindex", "rebuild the catalog from the backend"))
    verify.add_arguments(
        add_command(commands, "verify", "re-hash stored artifacts against their SHA256")
    )
    api_key.add_arguments(
        add_command(commands, "api-key", "create, list or revoke artifact API keys")
    )
    artifacts.add_arguments(
        add_command(commands, "artifacts", "the artifact API of a running gateway")
    )
    backup.add_backup_arguments(
        add_command(commands, "backup", "save the catalog's own state to a file")
    )
    backup.add_restore_arguments(
        add_command(commands, "restore", "load a catalog backup into an empty catalog")
    )
    return parser


def build_app(settings: Settings, environ: Mapping[str, str]) -> Gateway:
    """The gateway over the configured translator, with the root credentials loaded.

    ``environ`` carries the storage SDKs' standard variables (endpoints, credentials).
    """
    root = load_root_credentials(
        settings.data_dir, settings.root_access_key, settings.root_secret_key
    )
    if root.generated:
        # Printed once, to the terminal, on the start that created the pair; never logged.
        print(
            "Generated root credentials (saved in "
            f"{settings.data_dir / 'root-credentials.json'}):\n"
            f"  AWS_ACCESS_KEY_ID={root.credential.access_key}\n"
            f"  AWS_SECRET_ACCESS_KEY={root.credential.secret_key}",
            flush=True,
        )
    translator = create_backend(parse_backend_url(settings.backend_url), environ)
    stack = build_stack(
        translator,
        settings.catalog,
        settings.policy,
        settings.max_object_size,
        scrub_interval_s=settings.scrub_interval_seconds,
        scrub_rate_bytes=settings.scrub_rate_bytes,
        lease_s=settings.reservation_lease_seconds,
        min_free_bytes=settings.min_free_bytes,
    )
    return Gateway(settings, stack, CredentialStore([root.credential]))


def serve(settings: Settings, environ: Mapping[str, str]) -> int:
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = build_app(settings, environ)
    except BackendConfigError as error:
        print(f"pagewright-gateway: {error}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        http=bounded_protocol(settings.max_header_bytes, settings.header_timeout_seconds),
        loop="uvloop",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=30,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    server = uvicorn.Server(config)
    server.run()  # applies config.loop (uvloop); asyncio.run(server.serve()) would not
    return 0 if server.started else 1


def check_tls_files(settings: Settings) -> None:
    """SettingsError unless the configured TLS certificate and key load (when TLS is on)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return
    files = f"TLS certificate {settings.tls_cert_file} with key {settings.tls_key_file}"
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except ssl.SSLError as error:
        raise SettingsError(f"{files}: not a PEM certificate (chain) and its key") from error
    except OSError as error:
        raise SettingsError(f"{files}: {error.strerror or error}") from error


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status. A reader that closes stdout early (``... |
    head``) ends the command quietly with status 1 (as ``rich`` output does)."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # Anything still buffered goes nowhere, so the interpreter's exit flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def _run(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        return migrate.run(args, os.environ)
    if args.command == "reindex":
        return reindex.run(args, os.environ)
    if args.command == "verify":
        return verify.run(args, os.environ)
    if args.command == "api-key":
        return api_key.run(args, os.environ)
    if args.command == "artifacts":
        return artifacts.run(args, os.environ)
    if args.command == "backup":
        return backup.run_backup(args, os.environ)
    if args.command == "restore":
        return backup.run_restore(args, os.environ)
    try:
        settings = load_settings(
            config_file=args.config,
            environ=os.environ,
            overrides={
                "data_dir": args.data_dir,
                "backend": args.backend,
                "address": args.address,
                "region": args.region,
                "domains": args.domains,
                "catalog_url": args.catalog_url,
                "log_level": args.log_level,
                "tls_cert_file": args.tls_cert,
                "tls_key_file": args.tls_key,
            },
        )
        check_tls_files(settings)
    except SettingsError as error:
        print(f"pagewright-gateway: {error}", file=sys.stderr)
        return 2
    return serve(settings, os.environ)


if __name__ == "__main__":
    sys.exit(main())
