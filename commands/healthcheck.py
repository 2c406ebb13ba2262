"""``python -m commands.healthcheck``: is the gateway of this host or container alive?

The Dockerfile's HEALTHCHECK. It reads the settings ``serve`` reads from the environment
(``PWG_ADDRESS``, ``PWG_TLS_*`` ...) through :func:`gateway.settings.load_settings`, like
``commands.cli``, and asks ``GET /_pagewright/healthz`` where the gateway listens. A wildcard
listen address (``0.0.0.0``, ``[::]``) is probed on the loopback address of its family;
with TLS configured the probe speaks HTTPS without verifying the certificate, since it
talks to its own host.

Exit status: 0 healthy (200), 1 not answering or not healthy, 2 unusable settings. It
imports no more than the settings, so it starts well within a HEALTHCHECK timeout.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Final

from gateway.settings import Settings, SettingsError, load_settings

PATH: Final = "/_pagewright/healthz"
TIMEOUT_SECONDS: Final = 2.0
#: Wildcard listen addresses -> the loopback address a probe reaches them on.
_LOOPBACK: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def probe_url(settings: Settings) -> str:
    """The healthz URL of a gateway listening on ``settings``' address."""
    host = _LOOPBACK.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.tls_cert_file is not None else "http"
    return f"{scheme}://{host}:{settings.port}{PATH}"


def is_healthy(settings: Settings) -> tuple[bool, str]:
    """Whether the gateway answers 200 on its healthz path, and what was seen."""
    url = probe_url(settings)
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        return False, f"{url} answered {error.code}"
    except (OSError, ValueError) as error:
        return False, f"{url}: {error}"
    return status == 200, f"{url} answered {status}"


def main() -> int:
    """Probe the gateway configured by the environment; the exit status."""
    try:
        settings = load_settings(environ=os.environ)
    except SettingsError as error:
        print(f"pagewright-gateway healthcheck: {error}", file=sys.stderr)
        return 2
    healthy, seen = is_healthy(settings)
    if not healthy:
        print(f"pagewright-gateway healthcheck: unhealthy: {seen}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
