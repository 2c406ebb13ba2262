"""``pagewright-gateway``: the command line. The only place that reads the environment."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import uvicorn

from gateway import logs
from gateway.app import Gateway
from gateway.settings import Settings, SettingsError, load_settings
from policy.credentials import CredentialStore, load_root_credentials
from translators.filesystem import FilesystemBackend


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagewright-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the S3 endpoint")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--data-dir", help="where objects are stored (default ./data)")
    serve.add_argument("--address", help="HOST:PORT to listen on (default 127.0.0.1:9000)")
    serve.add_argument("--region", help="the region clients sign for (default us-east-1)")
    serve.add_argument(
        "--domain",
        action="append",
        dest="domains",
        help="enable virtual-hosted-style requests under this domain (repeatable)",
    )
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    serve.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    return parser


def build_app(settings: Settings) -> Gateway:
    """The gateway over the filesystem translator, with the root credentials loaded."""
    root = load_root_credentials(settings)
    if root.generated:
        # Printed once, to the terminal, on the start that created the pair; never logged.
        print(
            "Generated root credentials (saved in "
            f"{settings.data_dir / 'root-credentials.json'}):\n"
            f"  AWS_ACCESS_KEY_ID={root.credential.access_key}\n"
            f"  AWS_SECRET_ACCESS_KEY={root.credential.secret_key}",
            flush=True,
        )
    backend = FilesystemBackend(settings.data_dir / "storage")
    return Gateway(settings, backend, CredentialStore([root.credential]))


def serve(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        http="httptools",
        loop="uvloop",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=30,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    asyncio.run(uvicorn.Server(config).serve())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            config_file=args.config,
            environ=os.environ,
            overrides={
                "data_dir": args.data_dir,
                "address": args.address,
                "region": args.region,
                "domains": args.domains,
                "log_level": args.log_level,
                "tls_cert_file": args.tls_cert,
                "tls_key_file": args.tls_key,
            },
        )
    except SettingsError as error:
        print(f"pagewright-gateway: {error}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
