"""``pagewright-gateway serve``: run the S3 endpoint.

Reads the settings (``--config``, ``PWG_*``, flags), builds the gateway over the configured
translator and its policy stack (:mod:`policy.stack`), and serves it with uvicorn until
stopped. With ``metrics_address`` set, a second uvicorn server in the same process and event
loop serves only the metrics there (:class:`gateway.metrics_endpoint.MetricsApp`); it
leaves signals to the main server and stops when it stops. Exit status: 0 after a clean
stop, 1 the server (or the metrics listener) did not start, 2 unusable settings or backend
URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import uvicorn

from commands.store import open_backend
from commands.tracing import start_tracing, tracing_config
from gateway import logs
from gateway.app import Gateway
from gateway.http_protocol import bounded_protocol
from gateway.metrics_endpoint import MetricsApp
from gateway.settings import Settings, SettingsError, load_settings
from policy.credentials import CredentialStore, load_root_credentials
from policy.identities import IdentityStore
from policy.secret_box import load_master_key
from policy.sse_crypto import SSE_PURPOSE, Keyring
from policy.stack import build_stack
from translators.config import BackendConfigError, parse_backend_url

#: Each ``serve`` flag and the setting it overrides (also its argparse ``dest``); a value the
#: setting refuses is reported under the flag's name.
FLAG_SETTINGS: Final = {
    "--data-dir": "data_dir",
    "--backend": "backend",
    "--catalog-url": "catalog_url",
    "--address": "address",
    "--region": "region",
    "--domain": "domains",
    "--log-level": "log_level",
    "--tls-cert": "tls_cert_file",
    "--tls-key": "tls_key_file",
    "--metrics-address": "metrics_address",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` subcommand's options."""
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", help="where objects are stored (default ./data)")
    parser.add_argument(
        "--backend",
        help="storage URL: file:///path, s3://bucket[/prefix], azure://container[/prefix], "
        "gcs://bucket[/prefix] (default: file://<data-dir>/storage)",
    )
    parser.add_argument(
        "--catalog-url",
        help="catalog database URL, e.g. postgresql://user@host/db "
        "(default: sqlite:///<data-dir>/catalog.sqlite3)",
    )
    parser.add_argument("--address", help="HOST:PORT to listen on (default 127.0.0.1:9000)")
    parser.add_argument("--region", help="the region clients sign for (default us-east-1)")
    parser.add_argument(
        "--domain",
        action="append",
        dest="domains",
        help="enable virtual-hosted-style requests under this domain (repeatable)",
    )
    parser.add_argument("--log-level", help="debug, info, warning or error (default info)")
    parser.add_argument(
        "--tls-cert", dest="tls_cert_file", help="serve HTTPS with this PEM certificate (chain)"
    )
    parser.add_argument("--tls-key", dest="tls_key_file", help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--metrics-address",
        help="HOST:PORT of a separate listener serving only the Prometheus metrics "
        "(default: /_pagewright/metrics on the main address)",
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``serve`` from parsed arguments; the exit status."""
    try:
        settings = load_settings(
            config_file=args.config,
            environ=environ,
            overrides={setting: getattr(args, setting) for setting in FLAG_SETTINGS.values()},
            override_sources={setting: flag for flag, setting in FLAG_SETTINGS.items()},
        )
        check_tls_files(settings)
    except SettingsError as error:
        print(f"pagewright-gateway: {error}", file=sys.stderr)
        return 2
    return serve(settings, environ)


def build_app(settings: Settings, environ: Mapping[str, str]) -> Gateway:
    """The gateway over the configured translator, with the root credentials loaded and
    the identity store (users' keys, sealed under the master key) over its catalog.

    ``environ`` carries the storage SDKs' standard variables (endpoints, credentials) and
    OpenTelemetry's ``OTEL_*`` (commands.tracing; tracing is off unless they turn it on).
    """
    tracing_settings = tracing_config(environ)
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
    translator = open_backend(parse_backend_url(settings.backend_url), environ, must_exist=False)
    master_key = load_master_key(
        settings.data_dir, settings.master_key, settings.retired_master_keys
    )
    keyring = Keyring(master_key.subkeys(SSE_PURPOSE), settings.kms_key_ids)
    stack = build_stack(
        translator,
        settings.catalog,
        settings.policy,
        settings.max_object_size,
        scrub_interval_s=settings.scrub_interval_seconds,
        scrub_rate_bytes=settings.scrub_rate_bytes,
        lease_s=settings.reservation_lease_seconds,
        min_free_bytes=settings.min_free_bytes,
        rate_limits=settings.rate_limits,
        breaker_failures=settings.breaker_failures,
        breaker_reset_s=settings.breaker_reset_seconds,
        jobs=settings.jobs,
        job_lease_s=settings.job_lease_seconds,
        traced=tracing_settings is not None,
        keyring=keyring,
    )
    # Users' secret keys are sealed with the master key (kept in the data dir unless
    # configured); session tokens too, when temporary credentials are on.
    identities = IdentityStore(stack.catalog, master_key)
    box = master_key if settings.master_key or settings.oidc_issuers else None
    return Gateway(
        settings,
        stack,
        CredentialStore([root.credential]),
        identities=identities,
        box=box,
        tracing=None if tracing_settings is None else start_tracing(tracing_settings),
    )


def serve(settings: Settings, environ: Mapping[str, str]) -> int:
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = build_app(settings, environ)
    except (BackendConfigError, SettingsError) as error:
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
    listener = settings.metrics_listener
    if listener is None:
        server.run()  # applies config.loop (uvloop); asyncio.run(server.serve()) would not
        return 0 if server.started else 1
    try:
        metrics_socket = bind_listener(*listener)
    except OSError as error:
        reason = error.strerror or error
        print(
            f"pagewright-gateway: metrics_address {settings.metrics_address}: {reason}",
            file=sys.stderr,
        )
        return 1
    metrics_server = MetricsServer(metrics_config(app, settings))
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve_with_metrics(server, metrics_server, metrics_socket))
    return 0 if server.started else 1


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (OSError when it cannot be bound)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def metrics_config(app: Gateway, settings: Settings) -> uvicorn.Config:
    """The metrics listener's server: plain HTTP, no lifespan (the gateway's starts the
    stack), small limits (a scrape is one short GET)."""
    return uvicorn.Config(
        MetricsApp(app.metrics, settings.metrics_token),
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        http=bounded_protocol(settings.max_header_bytes, settings.header_timeout_seconds),
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )


class MetricsServer(uvicorn.Server):
    """The metrics listener: signals are the main server's, which stops this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_with_metrics(
    server: uvicorn.Server, metrics_server: uvicorn.Server, metrics_socket: socket.socket
) -> None:
    """Serve the gateway and, beside it, the metrics listener on ``metrics_socket`` until
    the gateway stops (a signal, or a failed start)."""
    metrics_task = asyncio.ensure_future(metrics_server.serve(sockets=[metrics_socket]))
    try:
        await server.serve()
    finally:
        metrics_server.should_exit = True
        await metrics_task


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
